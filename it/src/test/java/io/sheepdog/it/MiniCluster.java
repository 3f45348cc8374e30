package io.sheepdog.it;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A cluster of real sheep processes on this machine, for integration tests (in the spirit of Ratis' MiniRaftCluster).
 * Each node is {@code bin/sheep -f -n -p PORT -z ZONE -c DRIVER [--nbd NBDPORT] STORE} with free ports and its own
 * store directory under one temp directory; {@link #dog} runs the real {@code bin/dog}.
 *
 * <pre>{@code
 * try (MiniCluster c = MiniCluster.builder().nodes(3).copies(3).build().start()) {
 *     c.dog("vdi", "create", "Alice", "1G").assertOk();
 *     c.node(1).kill9();
 *     c.waitForNodes(2);
 * }
 * }</pre>
 *
 * Every process is stopped by pid in {@link #close()}, which also runs from a JVM shutdown hook so an aborted test
 * run leaves nothing behind. The directory is kept (and the log tails printed) when a test fails, see
 * {@link MiniClusterExtension}.
 */
public final class MiniCluster implements AutoCloseable {
    static final List<MiniCluster> CREATED = new CopyOnWriteArrayList<>();
    private static final Duration WAIT_TIMEOUT = Duration.ofSeconds(60);

    private final Builder cfg;
    private final Path root;
    private final Path dir;
    private final String driver;
    private final List<SheepNode> nodes = new CopyOnWriteArrayList<>();
    private final Thread shutdownHook;
    private volatile boolean closed;

    public static Builder builder() { return new Builder(); }

    public static final class Builder {
        private int nodes = 1;
        private long[] zones;
        private String driver;
        private int copies = 1;
        private boolean format = true;
        private boolean nbd = true;
        private boolean sync = false;
        private boolean shortPorts;
        private String name = "cluster";
        private String sheepJavaOpts = "-Xms32m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1";
        private final List<String> extraSheepArgs = new ArrayList<>();
        private java.util.function.IntFunction<List<Path>> disks = i -> List.of();

        /** Number of nodes started by {@link MiniCluster#start()} (default 1). */
        public Builder nodes(int n) { this.nodes = n; return this; }
        /** Zone of each node by index (default: node i is in zone i). */
        public Builder zones(long... z) { this.zones = z.clone(); return this; }
        /** Cluster driver spec passed as {@code -c} (default {@code local:<cluster dir>/local}). */
        public Builder driver(String spec) { this.driver = spec; return this; }
        /** Copies for the format done by {@code start()} (default 1). */
        public Builder copies(int c) { this.copies = c; return this; }
        /** Whether {@code start()} formats the cluster (default true). */
        public Builder format(boolean f) { this.format = f; return this; }
        /** Whether nodes get {@code --nbd PORT} (default true). */
        public Builder nbd(boolean b) { this.nbd = b; return this; }
        /**
         * Whether the daemons make writes durable (default false: they run with {@code -n}, which is faster but may
         * lose acknowledged writes on kill -9; tests of crash durability need true).
         */
        public Builder sync(boolean s) { this.sync = s; return this; }
        /** Sheep ports below 10000, for tgtd's sheepdog backing store (it truncates longer port numbers). */
        public Builder portsBelow10000() { this.shortPorts = true; return this; }
        /** Prefix of the temp directory name, e.g. the test's name. */
        public Builder name(String n) { this.name = n.replaceAll("[^A-Za-z0-9_.-]", "_"); return this; }
        /** JVM options of the daemons (SHEEP_JAVA_OPTS of bin/sheep). */
        public Builder sheepJavaOpts(String opts) { this.sheepJavaOpts = opts; return this; }
        /** Adds {@code -Dname=value} to the daemons' JVM options (after the defaults, which it keeps). */
        public Builder sheepProperty(String name, Object value) { this.sheepJavaOpts += " -D" + name + "=" + value; return this; }
        /** Extra daemon options placed before the store directory (e.g. "-V", "64"). */
        public Builder sheepArgs(String... args) { this.extraSheepArgs.addAll(Arrays.asList(args)); return this; }

        /** The object disks of node {@code i} ({@code sheep STORE,DISK1,...}); none: the store's own {@code obj/}. */
        public Builder disks(java.util.function.IntFunction<List<Path>> perNode) { this.disks = perNode; return this; }

        /** Creates the directories and picks the ports; no process runs until {@link MiniCluster#start()}. */
        public MiniCluster build() { return new MiniCluster(this); }
    }

    private MiniCluster(Builder cfg) {
        requireCleanupExtension();
        this.cfg = cfg;
        this.root = repoRoot();
        try {
            // Short paths under /tmp: the store holds a Unix socket, and sun_path is limited to 108 bytes.
            this.dir = Files.createTempDirectory("sdit-" + cfg.name + "-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the cluster directory", e);
        }
        this.driver = cfg.driver != null ? cfg.driver : "local:" + dir.resolve("local");
        for (int i = 0; i < cfg.nodes; i++) nodes.add(newNode(i));
        this.shutdownHook = new Thread(this::killAll, "minicluster-shutdown-" + dir.getFileName());
        Runtime.getRuntime().addShutdownHook(shutdownHook);
        CREATED.add(this);
    }

    /**
     * An IT class that builds clusters must carry {@code @ExtendWith(MiniClusterExtension.class)}: without it nothing
     * deletes their directories (one test left 2.3 GB per run) and a failure prints no logs.
     */
    private static void requireCleanupExtension() {
        StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE).walk(frames -> frames
                .map(StackWalker.StackFrame::getDeclaringClass)
                .filter(c -> c.getSimpleName().endsWith("IT"))
                .findFirst()).ifPresent(test -> {
                    ExtendWith ext = test.getAnnotation(ExtendWith.class);
                    if (ext == null || !List.of(ext.value()).contains(MiniClusterExtension.class)) {
                        throw new IllegalStateException(test.getSimpleName()
                                + " builds a MiniCluster: annotate it with @ExtendWith(MiniClusterExtension.class)");
                    }
                });
    }

    private SheepNode newNode(int i) {
        long zone = cfg.zones != null && i < cfg.zones.length ? cfg.zones[i] : i;
        return new SheepNode(this, i, sheepPort(), cfg.nbd ? Ports.free() : 0, zone, dir.resolve("n" + i));
    }

    private int sheepPort() {
        return cfg.shortPorts ? Ports.freeIn(2000, 9999) : Ports.free();
    }

    /** The repository root (system property {@code sheepdog.root}, set in it/pom.xml; else found from the cwd). */
    public static Path repoRoot() {
        String prop = System.getProperty("sheepdog.root");
        if (prop != null && !prop.isBlank()) return Path.of(prop).toAbsolutePath().normalize();
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isExecutable(p.resolve("bin/dog")) && Files.isRegularFile(p.resolve("pom.xml"))) return p;
        }
        throw new IllegalStateException("cannot find the repository root: set -Dsheepdog.root");
    }

    public Path root() { return root; }
    public Path dir() { return dir; }
    public String driver() { return driver; }
    String sheepJavaOpts() { return cfg.sheepJavaOpts; }
    boolean sync() { return cfg.sync; }
    List<String> extraSheepArgs() { return cfg.extraSheepArgs; }

    /** The object disks node {@code i} is started with (empty: its store's {@code obj/}). */
    List<Path> disksOf(int i) { return cfg.disks.apply(i); }

    public SheepNode node(int i) { return nodes.get(i); }
    public List<SheepNode> nodes() { return Collections.unmodifiableList(nodes); }
    /** The nodes whose process runs and is not paused (SIGSTOP). */
    public List<SheepNode> liveNodes() { return nodes.stream().filter(n -> n.isAlive() && !n.isPaused()).toList(); }

    /** The NBD ports of the nodes that run, node {@code first}'s first: where a writer that fails over connects. */
    public List<Integer> liveNbdPorts(int first) {
        List<SheepNode> live = liveNodes();
        List<Integer> out = new ArrayList<>();
        for (SheepNode n : live) if (n.index() == first) out.add(n.nbdPort());
        for (SheepNode n : live) if (n.index() != first) out.add(n.nbdPort());
        return out;
    }

    /** Starts every node, waits until all of them see each other, and formats with the builder's copies. */
    public MiniCluster start() {
        // one after the other: each start() returns once that daemon listens
        for (SheepNode n : nodes) n.start();
        waitForNodes(nodes.size());
        if (cfg.format) format(cfg.copies);
        return this;
    }

    /** Adds a node (next index, zone = index unless {@code zone} is given) and starts it. Does not wait for the join. */
    public SheepNode addNode() { return addNode(-1); }

    public SheepNode addNode(long zone) {
        int i = nodes.size();
        SheepNode n = new SheepNode(this, i, sheepPort(), cfg.nbd ? Ports.free() : 0, zone >= 0 ? zone : i,
                dir.resolve("n" + i));
        nodes.add(n);
        return n.start();
    }

    /**
     * Formats the cluster with {@code copies} replicas and the plain store: MAKE_FS through the client library to the
     * first live node (what {@code dog cluster format -c N} sends), so the harness does not depend on dog's prompts
     * or output; tests of dog itself run {@code dog cluster format}. Waits until every live node reports running.
     */
    public void format(int copies) {
        SheepNode n = firstLive();
        if (n == null) throw new IllegalStateException("no live node to format through");
        java.time.Instant now = java.time.Instant.now();
        long ctime = (now.getEpochSecond() << 32) | (now.getNano() / 1000 * 1000L);
        byte[] store = "plain\0".getBytes(StandardCharsets.US_ASCII);
        SdRequest req = SdRequest.of(Opcodes.MAKE_FS).flags(SdFlags.CMD_WRITE).dataLength(store.length)
                .clusterCopies(copies).clusterCopyPolicy(0).clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES)
                .clusterCtime(ctime);
        int result;
        try (SheepConnection c = SheepConnection.open(n.host(), n.port(), 5000)) {
            result = c.call(req, store).result();
        } catch (IOException e) {
            throw new AssertionError("format through " + n + " failed: " + e.getMessage() + "\n" + logTails(30), e);
        }
        if (result != SdResult.SUCCESS) {
            throw new AssertionError("format through " + n + " failed: " + SdResult.name(result) + "\n" + logTails(30));
        }
        waitUntilRunning();
    }

    /** Waits until every live node reports the cluster running (after a format through dog, say). */
    public void waitUntilRunning() {
        waitUntil("every live node reports the cluster running", () -> {
            for (SheepNode node : liveNodes()) {
                if (clusterStatus(node) != SdResult.SUCCESS) return false;
            }
            return true;
        });
    }

    /** Waits until every live node is at {@code epoch}. */
    public void waitForEpoch(int epoch) {
        waitUntil("epoch " + epoch + " on every live node", () -> {
            for (SheepNode node : liveNodes()) {
                if (epoch(node) != epoch) return false;
            }
            return true;
        });
    }

    /**
     * {@code dog node stat -r} at {@code node}: [0] the numbers of its Client line, [1] those of its Peer line, in
     * the order of the header (Active, Total, Write, Read, Remove, Flush, All WR, All RD).
     */
    public long[][] nodeStat(SheepNode node) {
        String[] lines = dogAt(node, null, "node", "stat", "-r").assertOk().stdout().split("\n");
        if (lines.length != 2) throw new AssertionError("node stat of " + node + ": " + String.join("\n", lines));
        long[][] out = new long[2][];
        for (int k = 0; k < 2; k++) {
            String[] f = lines[k].split("\t");
            if (!f[0].equals(k == 0 ? "Client" : "Peer")) throw new AssertionError("node stat of " + node + ": " + lines[k]);
            out[k] = new long[f.length - 1];
            for (int j = 1; j < f.length; j++) out[k][j - 1] = Long.parseLong(f[j]);
        }
        return out;
    }

    /**
     * The write stages of {@code dog node stat -v -r} at {@code node}: [stage] = {count, total ns},
     * stages in the order client write, peer write, local copy, remote copies.
     */
    public long[][] writeStages(SheepNode node) {
        String[] lines = dogAt(node, null, "node", "stat", "-v", "-r").assertOk().stdout().split("\n");
        if (lines.length != 6) throw new AssertionError("node stat -v of " + node + ": " + String.join("\n", lines));
        String[] names = {"Client-write", "Peer-write", "local-copy", "remote-copies"};
        long[][] out = new long[4][];
        for (int k = 0; k < 4; k++) {
            String[] f = lines[2 + k].split(" ");
            if (f.length != 4 || !f[0].equals(names[k])) throw new AssertionError("node stat -v of " + node + ": " + lines[2 + k]);
            long n = Long.parseLong(f[1]), total = Long.parseLong(f[3]);
            if (n == 0 ? !f[2].equals("-") : Math.abs(Double.parseDouble(f[2]) * 1000 * n - total) > n) {
                throw new AssertionError("node stat -v of " + node + ": the mean is not the total over the count: " + lines[2 + k]);
            }
            out[k] = new long[] {n, total};
        }
        return out;
    }

    /** The vnodes of {@code node} in the ring, as {@code dog node list -r} shows them. */
    public int vnodesOf(SheepNode node) {
        for (String line : dog("node", "list", "-r").assertOk().stdout().split("\n")) {
            String[] f = line.split(" "); // id host:port vnodes zone
            if (f.length == 4 && f[1].equals(node.address())) return Integer.parseInt(f[2]);
        }
        throw new AssertionError(node + " is not in the node list");
    }

    /** Waits until every live node's GET_NODE_LIST reports exactly {@code n} members. */
    public void waitForNodes(int n) {
        waitUntil("every live node sees " + n + " nodes", () -> {
            List<SheepNode> live = liveNodes();
            if (live.isEmpty()) return n == 0;
            for (SheepNode node : live) {
                if (nodeList(node).size() != n) return false;
            }
            return true;
        });
    }

    /** The members the given node reports (GET_NODE_LIST over the client library); empty if it cannot answer. */
    public List<SdNode> nodeList(SheepNode node) {
        int buf = SdNode.SIZE * 6144;
        try (SheepConnection c = SheepConnection.open(node.host(), node.port(), 1000)) {
            Reply r = c.call(SdRequest.of(Opcodes.GET_NODE_LIST).dataLength(buf));
            if (!r.ok()) return List.of();
            int nr = Math.min(r.header().nodeNrNodes(), r.data().length / SdNode.SIZE);
            return SdNode.decodeAll(ByteBuffer.wrap(r.data()), nr);
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }

    /** The result code of STAT_CLUSTER at the given node (SUCCESS = running, WAIT_FOR_FORMAT, ...), or -1. */
    public int clusterStatus(SheepNode node) {
        try (SheepConnection c = SheepConnection.open(node.host(), node.port(), 1000)) {
            // a buffer for a few epochs of the cluster's size; BUFFER_SMALL would still tell us it answers
            int nr = Math.max(1, nodes.size());
            Reply r = c.call(SdRequest.of(Opcodes.STAT_CLUSTER).clusterNodesNr(nr).dataLength(64L * (48 + 80L * nr)));
            return r.result();
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** A connection to the node through the client library (the caller closes it). */
    public SheepConnection connect(SheepNode node) throws IOException {
        return SheepConnection.open(node.host(), node.port(), 2000);
    }

    /** The node's current epoch (CLUSTER_INFO), or -1 if it does not answer. */
    public int epoch(SheepNode node) {
        try (SheepConnection c = connect(node)) {
            return new io.sheepdog.client.SheepClient(c).clusterInfo().epoch;
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** STAT_RECOVERY at the node: {done, total} while it recovers, null when it does not (or cannot answer). */
    public long[] recoveryProgress(SheepNode node) {
        try (SheepConnection c = connect(node)) {
            var st = new io.sheepdog.client.SheepClient(c).statRecovery();
            return st.inRecovery() ? new long[] {st.nrFinished(), st.nrTotal()} : null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /**
     * Waits until every live node runs at the same epoch with all live nodes as members and none of them is
     * recovering any more.
     */
    public void waitForRecovery() {
        waitUntil("every live node finished recovery", () -> {
            List<SheepNode> live = liveNodes();
            int epoch = -2;
            for (SheepNode n : live) {
                if (nodeList(n).size() != live.size() || clusterStatus(n) != SdResult.SUCCESS) return false;
                int e = epoch(n);
                if (epoch != -2 && e != epoch) return false;
                epoch = e;
            }
            try {
                for (SheepNode n : live) {
                    try (SheepConnection c = connect(n)) {
                        if (new io.sheepdog.client.SheepClient(c).statRecovery().inRecovery()) return false;
                    }
                }
            } catch (IOException e) {
                return false;
            }
            return true;
        });
    }

    /** Runs bin/dog against the first live node (see {@link #dogAt}). */
    public CommandResult dog(String... args) { return dogAt(firstLive(), null, args); }

    /** Runs bin/dog against the first live node with {@code stdin} as its standard input. */
    public CommandResult dogWithInput(byte[] stdin, String... args) { return dogAt(firstLive(), stdin, args); }

    /**
     * Runs bin/dog with {@code -p <node port>} added after the command words (unless -p/--port is already given or
     * the first argument is an option such as --help), and returns exit code, stdout and stderr.
     */
    public CommandResult dogAt(SheepNode node, byte[] stdin, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(root.resolve("bin/dog").toString());
        List<String> a = new ArrayList<>(Arrays.asList(args));
        boolean hasPort = a.stream().anyMatch(s -> s.equals("-p") || s.equals("--port") || s.startsWith("--port="));
        if (node != null && !hasPort && a.size() >= 2 && !a.get(0).startsWith("-") && !a.get(1).startsWith("-")) {
            a.addAll(2, List.of("-p", Integer.toString(node.port())));
            if (!node.host().equals("127.0.0.1")) a.addAll(2, List.of("-a", node.host()));
        }
        cmd.addAll(a);
        try {
            return Commands.run(cmd, stdin, Map.of("JAVA_HOME", System.getProperty("java.home")), Commands.DEFAULT_TIMEOUT);
        } catch (AssertionError e) {
            if (String.valueOf(e.getMessage()).startsWith("command timed out")) dumpThreads("dog " + String.join(" ", args) + " timed out");
            throw e;
        }
    }

    /**
     * A thread dump of every running node (not the paused ones) into its store directory ({@code threads-MILLIS.txt}),
     * for the report of a hang.
     */
    public void dumpThreads(String why) {
        Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        for (SheepNode n : nodes) {
            if (!n.isAlive() || n.isPaused()) continue;
            CommandResult r = Commands.run(List.of(jcmd.toString(), Long.toString(n.pid()), "Thread.print"), null, Map.of(),
                    java.time.Duration.ofSeconds(30));
            try {
                Path f = n.storeDir().resolve("threads-" + System.currentTimeMillis() + ".txt");
                Files.writeString(f, why + "\n" + r.stdout() + r.stderr());
                System.err.println("thread dump of " + n + ": " + f);
            } catch (IOException ignored) {
                // a report only
            }
        }
    }

    private SheepNode firstLive() {
        return nodes.stream().filter(n -> n.isAlive() && !n.isPaused()).findFirst().orElse(null);
    }

    /** Polls {@code cond} every 100 ms for up to a minute; fails with the log tails of every node otherwise. */
    public void waitUntil(String what, java.util.function.BooleanSupplier cond) {
        long deadline = System.nanoTime() + WAIT_TIMEOUT.toNanos();
        while (!cond.getAsBoolean()) {
            for (SheepNode n : nodes) {
                // a node that died on its own is a failure worth reporting at once
                if (n.exitCode().isPresent() && n.exitCode().getAsInt() != 0 && !expectedDead(n)) {
                    throw new AssertionError("while waiting until " + what + ": node " + n.index()
                            + " exited with code " + n.exitCode().getAsInt() + "\n" + logTails(40));
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + WAIT_TIMEOUT.toSeconds() + " s waiting until " + what
                        + "\n" + describe() + "\n" + logTails(40));
            }
            SheepNode.sleep(100);
        }
    }

    // A node killed with SIGKILL/SIGTERM by the test exits with 137/143 or 0: those are expected deaths.
    private static boolean expectedDead(SheepNode n) {
        int code = n.exitCode().orElse(0);
        return code == 137 || code == 143 || code == 128 + 9 || code == 128 + 15;
    }

    /** One line per node: index, address, zone, pid or exit code, and what it reports as members. */
    public String describe() {
        StringBuilder sb = new StringBuilder("cluster " + dir + " driver " + driver + "\n");
        for (SheepNode n : nodes) {
            sb.append("  ").append(n).append(n.isAlive() ? " members=" + nodeList(n).size()
                    : " exited " + n.exitCode().orElse(-1)).append('\n');
        }
        return sb.toString();
    }

    /** The tails of every node's output and log. */
    public String logTails(int lines) {
        StringBuilder sb = new StringBuilder();
        for (SheepNode n : nodes) sb.append(n.logTail(lines));
        return sb.toString();
    }

    /** Stops every process: SIGTERM, a short grace period, then SIGKILL, all by pid. Keeps the directory. */
    @Override public void close() {
        if (closed) return;
        closed = true;
        for (SheepNode n : nodes) {
            if (n.isPaused()) n.resume(); // a stopped process would not act on SIGTERM
        }
        for (SheepNode n : nodes) {
            long pid = n.pid();
            if (pid > 0) ProcessHandle.of(pid).ifPresent(ProcessHandle::destroy);
        }
        for (SheepNode n : nodes) {
            long pid = n.pid();
            if (pid > 0) ProcessHandle.of(pid).ifPresent(h -> {
                if (!Processes.awaitExit(h, 5000)) Processes.killTree(h);
            });
        }
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException ignored) {
            // the JVM is already shutting down: the hook is running or ran
        }
    }

    /** Shutdown hook: no grace, kill everything by pid. */
    private void killAll() {
        for (SheepNode n : nodes) {
            long pid = n.pid();
            if (pid > 0) ProcessHandle.of(pid).ifPresent(Processes::killTree);
        }
    }

    boolean isClosed() { return closed; }

    /** Deletes the cluster directory (after {@link #close()}). */
    void deleteDir() {
        if (!closed) throw new IllegalStateException("close() first");
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort: it is a temp directory
        }
    }
}
