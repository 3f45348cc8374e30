package io.sheepdog.it;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

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
        Path img = bin().resolve("qemu-img");
        Tools.requireUnderCi(Files.isExecutable(img) && Files.isExecutable(bin().resolve("qemu-io"))
                && Files.isExecutable(bin().resolve("qemu-nbd")),
                "QEMU 5.2's tools with the sheepdog driver are not in " + bin() + " (run tools/build-qemu52.sh)");
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
