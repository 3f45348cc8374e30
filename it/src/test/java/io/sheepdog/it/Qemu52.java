package io.sheepdog.it;

import java.io.File;
import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * QEMU 5.2's own tools with the {@code sheepdog:} block driver (QEMU removed it in 6.0), built from Debian 11's source
 * package by {@code tools/build-qemu52.sh} into {@code $SD_QEMU52_DIR/bin} (default {@code ~/.cache/sheepdog-qemu52}).
 * These are the seed's client: they speak the original Sheepdog protocol to our sheep, unchanged.
 *
 * <p>Missing tools skip the test outside CI and fail it under CI (where .ci/run builds them), as {@link Tools} does.
 */
final class Qemu52 {
    private Qemu52() {}

    static Path bin() {
        String dir = System.getProperty("sheepdog.qemu52", System.getenv("SD_QEMU52_DIR"));
        Path base = dir != null && !dir.isEmpty() ? Path.of(dir) : Path.of(System.getProperty("user.home"), ".cache", "sheepdog-qemu52");
        return base.resolve("bin");
    }

    static void require() {
        Tools.requireUnderCi(available(), "QEMU 5.2's tools with the sheepdog driver are not in " + bin()
                + " (run tools/build-qemu52.sh)");
    }

    /** Whether qemu-img, qemu-io and qemu-nbd of QEMU 5.2 are there (under CI they must be: see {@link #require}). */
    static boolean available() {
        return Files.isExecutable(bin().resolve("qemu-img")) && Files.isExecutable(bin().resolve("qemu-io"))
                && Files.isExecutable(bin().resolve("qemu-nbd"));
    }

    /**
     * QEMU 5.2's qemu-nbd serving {@code vdi} through the sheepdog driver connected to {@code via}, as export
     * {@code vdi} on a free port: NBD clients then reach the VDI through QEMU's own driver (its reconnects every second
     * and its resends of what was in flight when its sheep went away included). Persistent ({@code -t}), up to four
     * clients at once; {@link Server#close} stops it by its pid. Its output goes to {@code dir/qemu-nbd-VDI.log}.
     */
    static Server serve(SheepNode via, String vdi, Path dir) throws IOException, InterruptedException {
        int port = Ports.free();
        Process p = new ProcessBuilder(bin().resolve("qemu-nbd").toString(), "-f", "raw", "-p", Integer.toString(port),
                "-b", "127.0.0.1", "-x", vdi, "-t", "-e", "4", uri(via, vdi))
                .redirectErrorStream(true).redirectOutput(dir.resolve("qemu-nbd-" + vdi + ".log").toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        Server s = new Server(p, port);
        long until = System.nanoTime() + 30_000_000_000L;
        while (true) {
            try (Socket probe = new Socket("127.0.0.1", port)) {
                return s;
            } catch (IOException e) {
                if (!p.isAlive() || System.nanoTime() > until) {
                    s.close();
                    throw new IOException("qemu-nbd 5.2 did not listen on " + port + " (see " + dir + "/qemu-nbd-" + vdi + ".log)", e);
                }
                Thread.sleep(50);
            }
        }
    }

    /** A running qemu-nbd 5.2 and its port. */
    record Server(Process process, int port) implements AutoCloseable {
        @Override
        public void close() throws InterruptedException {
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    /** {@code sheepdog:127.0.0.1:PORT:VDI[:SNAPID]}, the driver's URI of a VDI reached through {@code node}. */
    static String uri(SheepNode node, String vdi) {
        return "sheepdog:127.0.0.1:" + node.port() + ":" + vdi;
    }

    static CommandResult img(String... args) {
        return tool("qemu-img", Duration.ofSeconds(180), args);
    }

    static CommandResult io(String... args) {
        return tool("qemu-io", Duration.ofSeconds(300), args);
    }

    static CommandResult tool(String name, Duration timeout, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(bin().resolve(name).toString());
        cmd.addAll(List.of(args));
        return Commands.run(cmd, null, Map.of(), timeout);
    }

    /**
     * qemu-io with {@code commands}, each a {@code -c}: fails unless it exits 0 with no failed command and no pattern
     * mismatch (qemu-io reports both on stdout and may still exit 0).
     */
    static CommandResult ioOk(String target, String... commands) {
        List<String> args = new ArrayList<>(List.of("-f", "raw"));
        for (String c : commands) {
            args.add("-c");
            args.add(c);
        }
        args.add(target);
        CommandResult r = io(args.toArray(String[]::new));
        String out = r.stdout() + r.stderr();
        if (!r.ok() || out.contains("Pattern verification failed") || out.contains("failed:") || out.contains("error")) {
            throw new AssertionError("qemu-io " + String.join(" ", commands) + " on " + target + ": " + r);
        }
        return r;
    }
}
