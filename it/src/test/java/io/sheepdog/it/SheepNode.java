package io.sheepdog.it;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One sheep daemon of a {@link MiniCluster}: a real {@code bin/sheep -f} process (the launcher execs the JVM, so the
 * process we hold is the daemon itself). Port, NBD port, zone and store directory stay the same across restarts,
 * like a real node that comes back. stdout/stderr are appended to {@code sheep.stdout}/{@code sheep.stderr} in the
 * store directory.
 */
public final class SheepNode {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(20);

    private final MiniCluster cluster;
    private final int index;
    private final int port;
    private final int nbdPort;
    private final long zone;
    private final Path storeDir;
    private Process process;
    private int starts;
    private boolean paused;

    SheepNode(MiniCluster cluster, int index, int port, int nbdPort, long zone, Path storeDir) {
        this.cluster = cluster;
        this.index = index;
        this.port = port;
        this.nbdPort = nbdPort;
        this.zone = zone;
        this.storeDir = storeDir;
    }

    public int index() { return index; }
    public int port() { return port; }
    /** The NBD export port of this node, or 0 when the cluster runs without NBD. */
    public int nbdPort() { return nbdPort; }
    public long zone() { return zone; }
    public Path storeDir() { return storeDir; }
    public Path stdoutFile() { return storeDir.resolve("sheep.stdout"); }
    public Path stderrFile() { return storeDir.resolve("sheep.stderr"); }
    public String address() { return host + ":" + port; }

    /** Where the node is reached and what it advertises: 127.0.0.1, or its address in a network namespace. */
    private volatile String host = "127.0.0.1";
    /** The network namespace the node runs in (ip netns exec), or null. */
    private volatile String netns;

    /**
     * Runs the node (from its next start on) in network namespace {@code ns} as {@code host}, or, with {@code ns}
     * null, in this one advertising {@code host} to its peers.
     */
    public SheepNode placeAt(String ns, String host) {
        this.netns = ns;
        this.host = host;
        return this;
    }

    public String host() { return host; }

    public synchronized boolean isAlive() { return process != null && process.isAlive(); }

    /** The daemon's pid, or -1 when it is not running. */
    public synchronized long pid() { return isAlive() ? process.pid() : -1; }

    /** The command line used to start this node (bin/sheep plus the daemon's options). */
    public List<String> command() {
        List<String> cmd = new ArrayList<>();
        if (netns != null) cmd.addAll(List.of("ip", "netns", "exec", netns)); // execs bin/sheep: the pid stays the same
        cmd.add(cluster.root().resolve("bin/sheep").toString());
        cmd.add("-f");
        if (!host.equals("127.0.0.1")) {
            cmd.add("-y");
            cmd.add(host);
        }
        if (!cluster.sync()) cmd.add("-n");
        cmd.add("-p");
        cmd.add(Integer.toString(port));
        cmd.add("-z");
        cmd.add(Long.toString(zone));
        cmd.add("-c");
        cmd.add(cluster.driver());
        if (nbdPort > 0) {
            cmd.add("--nbd");
            cmd.add(Integer.toString(nbdPort));
        }
        cmd.addAll(cluster.extraSheepArgs());
        StringBuilder store = new StringBuilder(storeDir.toString());
        for (Path d : cluster.disksOf(index)) store.append(',').append(d);
        cmd.add(store.toString());
        return cmd;
    }

    /** Starts the daemon and waits until it accepts connections on its port. */
    public synchronized SheepNode start() {
        launch();
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (!Ports.accepting(host, port)) {
            if (!process.isAlive()) {
                throw new AssertionError("node " + index + " exited with code " + process.exitValue()
                        + " before listening on port " + port + "\n" + logTail(40));
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("node " + index + " (pid " + process.pid() + ") does not listen on port " + port
                        + " after " + START_TIMEOUT.toSeconds() + " s\n" + logTail(40));
            }
            sleep(50);
        }
        return this;
    }

    /**
     * Starts the node and kills it (SIGKILL) {@code afterMs} later, wherever its start-up is then (the JVM starting,
     * the store's journal being replayed, the join); true if it was still starting (not yet listening).
     */
    public synchronized boolean startAndKill(long afterMs) {
        launch();
        sleep(afterMs);
        boolean starting = !Ports.accepting(host, port);
        kill9();
        process.onExit().join();
        return starting;
    }

    private void launch() {
        if (isAlive()) throw new IllegalStateException("node " + index + " is already running (pid " + process.pid() + ")");
        try {
            Files.createDirectories(storeDir);
            String banner = "==== start #" + (++starts) + " of node " + index + ": " + String.join(" ", command()) + "\n";
            Files.writeString(stdoutFile(), banner, StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
            Files.writeString(stderrFile(), banner, StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
            ProcessBuilder pb = new ProcessBuilder(command())
                    .redirectInput(new File("/dev/null"))
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(stdoutFile().toFile()))
                    .redirectError(ProcessBuilder.Redirect.appendTo(stderrFile().toFile()));
            Map<String, String> env = pb.environment();
            env.put("JAVA_HOME", System.getProperty("java.home"));
            env.put("SHEEP_JAVA_OPTS", cluster.sheepJavaOpts());
            process = pb.start();
            paused = false;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start node " + index, e);
        }
    }

    /** SIGKILL: the node dies without leaving the cluster, as on a crash or power loss. */
    public synchronized void kill9() {
        if (process == null) return;
        Processes.killTree(process.toHandle());
    }

    /**
     * SIGSTOP: the process stays alive (its sockets open, its cluster membership held) but answers nothing, like a
     * hung host. Undo with {@link #resume()}; {@link MiniCluster#close()} resumes paused nodes before stopping them.
     */
    public synchronized void pause() {
        signal("STOP");
        paused = true;
    }

    /** SIGCONT after {@link #pause()}. */
    public synchronized void resume() {
        if (!paused) return;
        signal("CONT");
        paused = false;
    }

    public synchronized boolean isPaused() { return paused && isAlive(); }

    private void signal(String sig) {
        if (!isAlive()) throw new IllegalStateException("node " + index + " is not running");
        // by pid, through kill(1): ProcessHandle only knows SIGTERM and SIGKILL
        CommandResult r = Commands.run(List.of("kill", "-" + sig, Long.toString(process.pid())));
        if (!r.ok()) throw new AssertionError("kill -" + sig + " " + process.pid() + " failed: " + r);
    }

    /** SIGTERM, then waits for a graceful exit (SIGKILL and an error if it does not come). Returns the exit code. */
    public synchronized int stop() {
        if (process == null || !process.isAlive()) return process == null ? 0 : process.exitValue();
        process.destroy();
        if (!Processes.awaitExit(process.toHandle(), STOP_TIMEOUT.toMillis())) {
            Processes.killTree(process.toHandle());
            throw new AssertionError("node " + index + " did not stop within " + STOP_TIMEOUT.toSeconds()
                    + " s of SIGTERM; killed\n" + logTail(40));
        }
        return process.exitValue();
    }

    /** Stops (SIGTERM) if running, then starts again with the same port, zone and store. */
    public SheepNode restart() {
        stop();
        return start();
    }

    /** The exit code of a process that has ended, or empty while it runs. */
    public synchronized java.util.OptionalInt exitCode() {
        return process == null || process.isAlive() ? java.util.OptionalInt.empty() : java.util.OptionalInt.of(process.exitValue());
    }

    /**
     * Whether this node's sheep.log holds {@code text}, waiting up to 5 s for it: the daemon writes its log from a
     * queue of its own, so a line can land a moment after what it tells of.
     */
    public boolean logContains(String text) {
        long until = System.nanoTime() + 5_000_000_000L;
        while (true) {
            try {
                if (Files.readString(storeDir.resolve("sheep.log")).contains(text)) return true;
            } catch (IOException ignored) {
                // not there yet
            }
            if (System.nanoTime() > until) return false;
            sleep(50);
        }
    }

    /** The last {@code lines} lines of this node's stdout, stderr and sheep.log, for failure reports. */
    public String logTail(int lines) {
        StringBuilder sb = new StringBuilder();
        for (Path f : List.of(stdoutFile(), stderrFile(), storeDir.resolve("sheep.log"))) {
            sb.append("---- node ").append(index).append(' ').append(f).append(" (last ").append(lines).append(" lines)\n");
            sb.append(tail(f, lines));
        }
        return sb.toString();
    }

    static String tail(Path f, int lines) {
        if (!Files.exists(f)) return "(missing)\n";
        try {
            List<String> all = Files.readAllLines(f, StandardCharsets.ISO_8859_1);
            StringBuilder sb = new StringBuilder();
            for (String l : all.subList(Math.max(0, all.size() - lines), all.size())) sb.append(l).append('\n');
            return sb.toString();
        } catch (IOException e) {
            return "(unreadable: " + e.getMessage() + ")\n";
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    @Override public String toString() {
        return "node " + index + " (" + address() + ", zone " + zone + ", pid " + pid() + ")";
    }
}
