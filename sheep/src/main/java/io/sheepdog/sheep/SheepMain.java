package io.sheepdog.sheep;

import io.sheepdog.proto.Proto;
import io.sheepdog.sheep.access.AccessOptions;
import io.sheepdog.sheep.store.FileObjectStore;
import io.sheepdog.sheep.access.AddressAllowList;
import io.sheepdog.sheep.access.TlsCredentials;
import io.sheepdog.sheep.cluster.ClusterDriverException;
import io.sheepdog.sheep.cluster.ClusterDrivers;
import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.Function;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine;

/**
 * {@code sheep [OPTIONS] STORE_DIR}: starts a Sheepdog storage daemon. Without {@code -f} it daemonizes: it starts the
 * daemon as a detached child and exits 0 once the child is listening, or 1 with the child's one-line reason.
 */
@Command(name = "sheep", version = "Sheepdog daemon version 1.0.0-jvm",
        description = "Sheepdog storage daemon: serves the VDIs of a cluster over the Sheepdog protocol and NBD.",
        sortOptions = false)
public final class SheepMain implements Callable<Integer> {
    static final String READY = "SHEEP-READY";

    @Parameters(index = "0", arity = "0..1", paramLabel = "STORE_DIR[,DISK...]", description = "store directory (default /tmp), then optionally the disks that hold objects, comma-separated (multi-disk; default STORE_DIR/obj)")
    String dir = "/tmp";

    @Option(names = {"-p", "--port"}, paramLabel = "PORT", description = "listen port (default 7000)")
    String port = "7000";

    @Option(names = {"-z", "--zone"}, paramLabel = "ZONE", description = "zone id 0..4294967295 (default: from the address)")
    String zone;

    @Option(names = {"-b", "--bindaddr"}, paramLabel = "ADDR", description = "listen only on this address")
    String bindAddr;

    @Option(names = {"-y", "--myaddr"}, paramLabel = "ADDR", description = "address advertised to the other nodes (default 127.0.0.1 or the bind address)")
    String myAddr;

    @Option(names = {"-i", "--ioaddr"}, paramLabel = "host=ADDR,port=PORT", description = "the I/O port, where the other sheep send object data (served by a thread per connection; default: any free port on this node's address; off: none, data goes to the main port)")
    String ioAddr;

    @Option(names = {"-c", "--cluster"}, paramLabel = "DRIVER", description = "cluster driver: local[:DIR], zookeeper:HOST:PORT[,...][,timeout=MS], corosync (default local)")
    String cluster = "local";

    @Option(names = {"-f", "--foreground"}, description = "do not daemonize")
    boolean foreground;

    @Option(names = {"-P", "--pidfile"}, paramLabel = "FILE", description = "write the daemon's pid here")
    Path pidFile;

    @Option(names = {"-l", "--log"}, paramLabel = "dir=D,level=L,dst=stdout", description = "log directory (default STORE_DIR), level (emerg..debug, default info), dst=stdout")
    String log;

    @Option(names = {"-n", "--nosync"}, description = "do not fdatasync object writes (tests only: acknowledged writes may be lost on a crash)")
    boolean noSync;

    @Option(names = {"-j", "--journal"}, paramLabel = "SIZE|off",
            description = "write journal per disk: small writes are made durable by one append and a shared sync, "
                    + "the object files behind it ([size=]N[k|M|G], 2M to 1G, e.g. 32M; default 'off': every write synced in its object file)")
    String journal;

    @Option(names = {"-D", "--directio"}, negatable = true,
            description = "durable writes of whole 4 KiB blocks go past the page cache (O_DIRECT, then the usual sync; "
                    + "the default, as the original's -D asks); --no-directio writes everything through the page cache")
    Boolean directio;

    @Option(names = {"--nbd"}, paramLabel = "PORT|off", description = "NBD port (default 10809 + (PORT - 7000)); 'off' disables NBD")
    String nbd;

    @Option(names = {"-g", "--gateway"}, description = "gateway only: store no objects")
    boolean gateway;

    // as the original: -v is the version (picocli's standard -V is --vnodes here)
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help and exit")
    boolean help;

    @Option(names = {"-v", "--version"}, versionHelp = true, description = "print the version and exit")
    boolean version;

    @Option(names = {"-V", "--vnodes"}, paramLabel = "N", description = "fixed number of vnodes 1..65535 (default: from the store's space); every node of the cluster needs it, and dog cluster format -V")
    String vnodes;

    @Option(names = {"-R", "--recovery"}, paramLabel = "max=N,interval=MS", description = "throttle recovery: at most N objects every MS milliseconds (as dog node recovery set-throttle)")
    String recovery;

    @Option(names = {"-W", "--wildcard-recovery"}, description = "accepted for compatibility: recovery always asks every member for its objects")
    boolean wildcardRecovery;

    @Option(names = {"--failure-timeout"}, paramLabel = "SECONDS", description = "evict a member that answers no heartbeat for this long (default 5; 0: never, leave it to the cluster driver)")
    String failureTimeout;

    @Option(names = {"--disk-timeout"}, paramLabel = "SECONDS", description = "leave the cluster when the store's periodic check (a write and a sync on every disk) has not ended after this long: a hung disk (default 15; 0: never)")
    String diskTimeout;

    @Option(names = {"--vdi-lock"}, paramLabel = "MODE", description = "NBD writers of one VDI: handover (default: a second writer waits and takes the lock over once the holder is quiet, fencing it; live migration works) or strict (a second writer is refused)")
    String vdiLock;

    @Option(names = {"--nbd-tls"}, paramLabel = "DIR", description = "NBD over TLS (STARTTLS) with client certificates: DIR holds ca-cert.pem, server-cert.pem and server-key.pem as QEMU lays them out; plain-text NBD clients are refused unless --nbd-tls-plain")
    String nbdTls;

    @Option(names = {"--nbd-tls-plain"}, description = "with --nbd-tls: let plain-text NBD clients in too")
    boolean nbdTlsPlain;

    @Option(names = {"--nbd-tls-allow"}, paramLabel = "NAMES", description = "with --nbd-tls: only client certificates with one of these comma-separated common names")
    String nbdTlsAllow;

    @Option(names = {"--allow"}, paramLabel = "ADDRS", description = "client addresses or networks let in on the sheep and NBD ports, comma-separated (e.g. 127.0.0.1,10.0.0.0/8); cluster members are always let in on the sheep port (default: all)")
    String allow;

    @Option(names = {"--admin-allow"}, paramLabel = "ADDRS", description = "addresses or networks that may change the cluster (format, shutdown, node kill, recovery control, reweight, deleting VDIs...); others get 'access denied' (default: all, as the original; 127.0.0.1,::1 keeps it to this host)")
    String adminAllow;

    @Option(names = "--daemon-child", hidden = true)
    boolean daemonChild;

    public static void main(String[] args) {
        SheepLogging.quietUntilConfigured();
        CommandLine cl = new CommandLine(new SheepMain());
        cl.setParameterExceptionHandler((ex, a) -> {
            System.err.println("sheep: " + ex.getMessage());
            System.err.println("Try 'sheep --help' for more information.");
            return 1;
        });
        int rc = cl.execute(args);
        if (rc != 0) System.exit(rc);
        // rc 0: either the daemon parent (already exited) or a running daemon whose non-daemon threads keep it alive
    }

    /** An invalid option value: the original's line as it prints it (no program prefix; getopt's own errors have one). */
    private static int fail(String msg) {
        System.err.println(msg);
        return 1;
    }

    @Override
    public Integer call() throws Exception {
        SheepOptions o;
        try {
            o = parse();
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        if (!o.foreground() && !daemonChild) return daemonize(o);
        return runDaemon(o);
    }

    SheepOptions parse() {
        int p = parseInt(port, 1, 65535, "Invalid port number '" + port + "'");
        long z = zone == null ? -1 : parseLong(zone, 0, 4294967295L, "Invalid zone id '" + zone + "': must be an integer between 0 and 4294967295");
        for (String a : new String[] {bindAddr, myAddr}) {
            if (a != null && !a.matches("[0-9a-fA-F:.]+")) throw new IllegalArgumentException("Invalid address '" + a + "'");
        }
        Path logDir = null;
        String level = "info";
        boolean stdout = false;
        if (log != null) {
            for (String[] x : keyValues(log, kv -> "Invalid log option '" + kv + "' (dir=D,level=L,dst=stdout)")) {
                switch (x[0]) {
                    case "dir" -> logDir = Path.of(x[1]);
                    case "level" -> level = x[1];
                    case "dst" -> stdout = x[1].equals("stdout");
                    case "format" -> { }
                    default -> throw new IllegalArgumentException("Invalid log option '" + x[0] + "'");
                }
            }
        }
        SheepLogging.parseLevel(level);
        int nbdPort;
        if (nbd == null) nbdPort = p >= Proto.DEFAULT_PORT && p - Proto.DEFAULT_PORT < 1000 ? 10809 + (p - Proto.DEFAULT_PORT) : 0;
        else if (nbd.equals("off") || nbd.equals("0")) nbdPort = 0;
        else nbdPort = parseInt(nbd, 1, 65535, "Invalid NBD port '" + nbd + "'");
        try {
            // validates the driver name and options now, before daemonizing, with the factory's one-line message
            ClusterDrivers.create(cluster).close();
        } catch (ClusterDriverException e) {
            throw new IllegalArgumentException(e.getMessage());
        }
        int vn = 0;
        if (vnodes != null) {
            if (gateway) throw new IllegalArgumentException("Options '-g' and '-V' can not be both specified");
            vn = parseInt(vnodes, 1, 65535, "Invalid number of vnodes '" + vnodes + "': must be an integer between 1 and 65535");
        }
        int recMax = 0;
        long recInterval = 0;
        if (recovery != null) {
            Function<String, String> badOption =
                    kv -> "Invalid recovery option '" + kv + "' (max=N,interval=MS, both greater than 0)";
            for (String[] x : keyValues(recovery, badOption)) {
                String bad = badOption.apply(x[0] + "=" + x[1]);
                switch (x[0]) {
                    case "max" -> recMax = parseInt(x[1], 1, Integer.MAX_VALUE, bad);
                    case "interval" -> recInterval = parseLong(x[1], 1, Long.MAX_VALUE, bad);
                    default -> throw new IllegalArgumentException(bad);
                }
            }
            if (recMax == 0 || recInterval == 0) {
                throw new IllegalArgumentException("Invalid recovery option '" + recovery + "': give both max=N and interval=MS");
            }
        }
        long failMs = timeoutMs(failureTimeout, "failure timeout", "never evict", SheepOptions.DEFAULT_FAILURE_TIMEOUT_MS);
        long diskMs = timeoutMs(diskTimeout, "disk timeout", "never", SheepOptions.DEFAULT_DISK_TIMEOUT_MS);
        boolean strictLock = false;
        if (vdiLock != null) {
            switch (vdiLock) {
                case "handover" -> strictLock = false;
                case "strict" -> strictLock = true;
                default -> throw new IllegalArgumentException("Invalid VDI lock mode '" + vdiLock + "': handover or strict");
            }
        }
        String ioHost = null;
        int ioPortNo = 0;
        if ("off".equals(ioAddr)) {
            ioPortNo = SheepOptions.NO_IO_PORT;
        } else if (ioAddr != null) {
            Function<String, String> badIo = kv -> "Invalid I/O address option '" + kv + "' (host=ADDR,port=PORT, or off)";
            for (String[] x : keyValues(ioAddr, badIo)) {
                switch (x[0]) {
                    case "host" -> {
                        if (!x[1].matches("[0-9a-fA-F:.]+")) throw new IllegalArgumentException("Invalid address '" + x[1] + "'");
                        ioHost = x[1];
                    }
                    case "port" -> ioPortNo = parseInt(x[1], 1, 65535, "Invalid port number '" + x[1] + "'");
                    default -> throw new IllegalArgumentException(badIo.apply(x[0] + "=" + x[1]));
                }
            }
        }
        long journalBytes = journalBytes(journal);
        String[] parts = dir.split(",", -1);
        if (parts[0].isEmpty()) throw new IllegalArgumentException("Invalid store path '" + dir + "': the first path (the metadata directory) is empty");
        Path store = Path.of(parts[0]).toAbsolutePath().normalize();
        List<Path> disks = new ArrayList<>();
        for (int i = 1; i < parts.length; i++) {
            if (parts[i].isEmpty()) throw new IllegalArgumentException("Invalid store path '" + dir + "': an empty disk path");
            Path d = Path.of(parts[i]).toAbsolutePath().normalize();
            if (d.equals(store)) throw new IllegalArgumentException("Invalid disk '" + parts[i] + "': it is the metadata directory");
            if (disks.contains(d)) throw new IllegalArgumentException("Invalid disk '" + parts[i] + "': named twice");
            disks.add(d);
        }
        return SheepOptions.builder(store).port(p).ioPort(ioHost, ioPortNo).zone(z).bindAddr(bindAddr).myAddr(myAddr).cluster(cluster)
                .foreground(foreground).pidFile(pidFile).logDir(logDir).logLevel(level).logToStdout(stdout).noSync(noSync)
                .nbdPort(nbdPort).gateway(gateway).vnodes(vn).recoveryThrottle(recMax, recInterval).failureTimeoutMs(failMs).diskTimeoutMs(diskMs)
                .strictVdiLock(strictLock).access(access(nbdPort)).disks(disks).journalBytes(journalBytes)
                .directWrites(directio == null ? FileObjectStore.DIRECT_WRITES : directio).build();
    }

    /** {@code --journal}: off, or a size (N, Nk, NM, NG, also as size=N as the original's -j takes it). */
    static long journalBytes(String v) {
        if (v == null) return FileObjectStore.DEFAULT_JOURNAL_BYTES;
        String s = v.startsWith("size=") ? v.substring(5) : v;
        if (s.equals("off")) return 0;
        String bad = "Invalid journal '" + v + "': a size such as 32M (at least 2M, at most 1G), or 'off'";
        if (!s.matches("[0-9]{1,10}[kKmMgG]?")) throw new IllegalArgumentException(bad);
        char unit = Character.toLowerCase(s.charAt(s.length() - 1));
        long n = Long.parseLong(Character.isDigit(unit) ? s : s.substring(0, s.length() - 1));
        long bytes = switch (unit) {
            case 'k' -> n << 10;
            case 'm' -> n << 20;
            case 'g' -> n << 30;
            default -> n;
        };
        if (bytes < (2L << 20) || bytes > (1L << 30)) throw new IllegalArgumentException(bad);
        return bytes;
    }

    private AccessOptions access(int nbdPort) {
        if (nbdTls == null && (nbdTlsPlain || nbdTlsAllow != null)) {
            throw new IllegalArgumentException("Options '--nbd-tls-plain' and '--nbd-tls-allow' need '--nbd-tls DIR'");
        }
        TlsCredentials tls = null;
        if (nbdTls != null) {
            if (nbdPort == 0) throw new IllegalArgumentException("Option '--nbd-tls' needs the NBD server (not --nbd off)");
            Set<String> names = new LinkedHashSet<>();
            if (nbdTlsAllow != null) {
                for (String n : nbdTlsAllow.split(",")) if (!n.isBlank()) names.add(n.trim());
                if (names.isEmpty()) throw new IllegalArgumentException("Invalid certificate name list '" + nbdTlsAllow + "'");
            }
            tls = TlsCredentials.load(Path.of(nbdTls).toAbsolutePath().normalize(), names);
        }
        return new AccessOptions(tls, tls != null && !nbdTlsPlain,
                AddressAllowList.parse(allow),
                AddressAllowList.parse(adminAllow));
    }

    /**
     * The {@code key=value} pairs of a comma-separated sub-option list ({@code -l}, {@code -R}), in order; a part
     * without '=' is refused with {@code malformed} of that part.
     */
    private static List<String[]> keyValues(String spec, Function<String, String> malformed) {
        List<String[]> out = new ArrayList<>();
        for (String kv : spec.split(",")) {
            String[] x = kv.split("=", 2);
            if (x.length != 2) throw new IllegalArgumentException(malformed.apply(kv));
            out.add(x);
        }
        return out;
    }

    private static int parseInt(String s, int min, int max, String msg) {
        return (int) parseLong(s, min, max, msg);
    }

    /**
     * A timeout option in seconds ({@code --failure-timeout}, {@code --disk-timeout}): 0 (what {@code zeroMeans}) or 2
     * to 3600; {@code dflt} ms when not given. Milliseconds.
     */
    private static long timeoutMs(String value, String what, String zeroMeans, long dflt) {
        if (value == null) return dflt;
        long ms = 1000 * parseLong(value, 0, 3600, "Invalid " + what + " '" + value
                + "': must be a number of seconds between 0 and 3600 (0: " + zeroMeans + ")");
        if (ms > 0 && ms < 2000) throw new IllegalArgumentException("Invalid " + what + " '" + value + "': at least 2 seconds");
        return ms;
    }

    private static long parseLong(String s, long min, long max, String msg) {
        if (s == null || !s.matches("[0-9]{1,10}")) throw new IllegalArgumentException(msg);
        long v = Long.parseLong(s);
        if (v < min || v > max) throw new IllegalArgumentException(msg);
        return v;
    }

    /** Starts the daemon as a detached child and waits until it listens (or fails). */
    private int daemonize(SheepOptions o) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        if (new File("/usr/bin/setsid").canExecute()) cmd.add("/usr/bin/setsid");
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (!a.startsWith("-agentlib:jdwp")) cmd.add(a);
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(SheepMain.class.getName());
        cmd.add("--daemon-child");
        cmd.addAll(ProcessHandle.current().info().arguments().map(SheepMain::userArgs).orElse(List.of()));
        Files.createDirectories(o.storeDir());
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectError(ProcessBuilder.Redirect.appendTo(o.storeDir().resolve("sheep.stderr").toFile()));
        Process child = pb.start();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (line.equals(READY)) return 0;
                if (line.startsWith("sheep: ")) {
                    System.err.println(line);
                }
            }
        }
        int rc = child.waitFor();
        if (rc == 0) rc = 1;
        return rc;
    }

    /** The user's arguments: everything after the main class name in this JVM's command line. */
    private static List<String> userArgs(String[] all) {
        List<String> out = new ArrayList<>();
        boolean after = false;
        for (String a : all) {
            if (after) out.add(a);
            else if (a.equals(SheepMain.class.getName())) after = true;
        }
        return out;
    }

    private int runDaemon(SheepOptions o) {
        PrintStream origOut = System.out;
        Sheep sheep;
        try {
            Files.createDirectories(o.logDir());
            SheepLogging.configure(o.logDir(), o.logToStdout(), SheepLogging.parseLevel(o.logLevel()));
            sheep = new Sheep(o);
            sheep.setLogLevel(SheepLogging.parseLevel(o.logLevel()));
            sheep.start();
            if (o.pidFile() != null) Files.writeString(o.pidFile(), ProcessHandle.current().pid() + "\n");
        } catch (Exception e) {
            String msg = e.getMessage() == null ? e.toString() : e.getMessage();
            LoggerFactory.getLogger(SheepMain.class).error("cannot start: {}", msg, e);
            System.err.println("sheep: " + msg);
            if (daemonChild) origOut.println("sheep: " + msg);
            origOut.flush();
            return 1;
        }
        // SIGTERM is the graceful stop: leave the cluster, close the store, exit 0 (docs/daemon.md §1)
        Runnable stop = () -> {
            try {
                sheep.driver().leave();
            } catch (RuntimeException ignored) { }
            sheep.close();
        };
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("TERM"), sig -> {
                // a stop that cannot finish (a cluster driver whose server is gone, a hung disk) must not keep the
                // process: after 10 s it ends anyway. Every acknowledged write is already durable, so this loses
                // nothing a kill -9 would not.
                Sheep.haltAfter(Sheep.EXIT_WITHIN_MS, 0, "sheep-sigterm-deadline", () -> {
                    // told from a thread of its own: a stderr on a disk that hangs must not keep this one
                    Thread say = Thread.ofPlatform().daemon().start(
                            () -> System.err.println("sheep: the clean stop took over 10 s: exiting without it"));
                    try {
                        say.join(200);
                    } catch (InterruptedException ignored) { }
                });
                new Thread(() -> {
                    stop.run();
                    SheepLogging.flush();
                    Runtime.getRuntime().halt(0);
                }, "sheep-sigterm").start();
            });
        } catch (IllegalArgumentException e) {
            Runtime.getRuntime().addShutdownHook(new Thread(stop, "sheep-shutdown"));
        }
        if (daemonChild) {
            origOut.println(READY);
            origOut.flush();
            try {
                PrintStream devNull = new PrintStream(new FileOutputStream("/dev/null"));
                System.setOut(devNull);
            } catch (IOException ignored) { }
        }
        // keep the JVM alive: Netty's event loop threads are non-daemon
        return 0;
    }
}
