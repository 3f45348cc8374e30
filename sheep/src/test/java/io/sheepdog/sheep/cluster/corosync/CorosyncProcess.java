package io.sheepdog.sheep.cluster.corosync;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A private corosync for tests: one node on 127.0.0.1 with a generated corosync.conf, run in the foreground as a
 * child process and stopped by pid. corosync's IPC names are fixed, so only one can run per machine: callers hold
 * {@link #lock()} and skip when a corosync they did not start is running.
 */
public final class CorosyncProcess implements AutoCloseable {

    private static final Path LOCK = Path.of(System.getProperty("java.io.tmpdir"), "sheepdog-corosync-test.lock");

    private final Path dir;
    private Process process;

    public CorosyncProcess(Path dir) { this.dir = dir; }

    /** A machine-wide lock serialising the tests that start corosync (held until the channel closes). */
    public static FileLock lock() throws IOException {
        FileChannel ch = FileChannel.open(LOCK, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        return ch.lock();
    }

    /** Whether some corosync process is running on this machine. */
    public static boolean anyRunning() {
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            return procs.filter(p -> p.getFileName().toString().matches("[0-9]+")).anyMatch(p -> {
                try {
                    return Files.readString(p.resolve("comm")).trim().equals("corosync");
                } catch (IOException e) {
                    return false;
                }
            });
        } catch (IOException e) {
            return false;
        }
    }

    public static boolean installed() {
        return Files.isExecutable(Path.of("/usr/sbin/corosync")) && Files.exists(Path.of("/usr/lib/x86_64-linux-gnu/libcpg.so.4"));
    }

    public void start() throws Exception {
        Path conf = dir.resolve("corosync.conf");
        Files.writeString(conf, String.join("\n",
                "totem {",
                "  version: 2",
                "  cluster_name: sheepdog-test",
                "  transport: knet",
                "  crypto_cipher: none",
                "  crypto_hash: none",
                "  token: 1000",
                "}",
                "nodelist {",
                "  node {",
                "    ring0_addr: 127.0.0.1",
                "    nodeid: 1",
                "  }",
                "}",
                "quorum {",
                "  provider: corosync_votequorum",
                "  expected_votes: 1",
                "}",
                "logging {",
                "  to_logfile: yes",
                "  logfile: " + dir.resolve("corosync.log"),
                "  to_stderr: no",
                "  to_syslog: no",
                "  timestamp: on",
                "}", ""));
        process = new ProcessBuilder("/usr/sbin/corosync", "-f", "-c", conf.toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("corosync.out").toFile())
                .start();
        long deadline = System.currentTimeMillis() + 30_000;
        while (true) {
            if (!process.isAlive()) {
                throw new IllegalStateException("corosync exited: " + Files.readString(dir.resolve("corosync.out")));
            }
            try (Cpg probe = Cpg.open(new Cpg.Handler() {
                @Override public void deliver(int nodeid, int pid, byte[] message) { }

                @Override public void confchg(Cpg.Address[] m, Cpg.Address[] l, Cpg.Address[] j) { }
            })) {
                probe.localNodeId();
                return; // the CPG service answers
            } catch (Cpg.CpgException e) {
                if (System.currentTimeMillis() > deadline) throw new IllegalStateException("corosync did not start: " + e.getMessage());
                Thread.sleep(100);
            }
        }
    }

    /** Kills corosync at once (SIGKILL), as a crash of the daemon. */
    public void kill() throws InterruptedException {
        if (process == null || !process.isAlive()) return;
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    /** Stops corosync (SIGTERM, then SIGKILL after 10 s). */
    public void stop() throws InterruptedException {
        if (process == null || !process.isAlive()) return;
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Override public void close() throws InterruptedException {
        stop();
    }
}
