package io.sheepdog.it;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs short-lived external commands (dog, tgtadm, qemu-io, ...) to completion. Output goes through temp files, not
 * pipes, so a command that leaves a background child holding its stdout cannot hang the test, and a command that
 * overruns its timeout is killed (with its descendants) by pid.
 */
public final class Commands {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    private Commands() {}

    public static CommandResult run(List<String> command) {
        return run(command, null, Map.of(), DEFAULT_TIMEOUT);
    }

    /**
     * @param stdin bytes fed to the command's standard input, or null for /dev/null
     * @param env   extra environment variables
     */
    public static CommandResult run(List<String> command, byte[] stdin, Map<String, String> env, Duration timeout) {
        Path in = null, out = null, err = null;
        try {
            out = Files.createTempFile("sdit-cmd", ".out");
            err = Files.createTempFile("sdit-cmd", ".err");
            ProcessBuilder pb = new ProcessBuilder(command)
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile());
            if (stdin != null) {
                in = Files.createTempFile("sdit-cmd", ".in");
                Files.write(in, stdin);
                pb.redirectInput(in.toFile());
            } else {
                pb.redirectInput(new File("/dev/null"));
            }
            pb.environment().putAll(env);
            Process p = pb.start();
            try {
                if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    Processes.killTree(p.toHandle());
                    throw new AssertionError("command timed out after " + timeout.toSeconds() + " s: "
                            + String.join(" ", command) + "\n--- stderr:\n" + Files.readString(err));
                }
            } catch (InterruptedException e) {
                Processes.killTree(p.toHandle());
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted while running " + command, e);
            }
            return new CommandResult(List.copyOf(command), p.exitValue(), Files.readAllBytes(out),
                    new String(Files.readAllBytes(err), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + command, e);
        } finally {
            for (Path f : new Path[] {in, out, err}) {
                if (f != null) {
                    try { Files.deleteIfExists(f); } catch (IOException ignored) { /* temp file */ }
                }
            }
        }
    }

    /** True if {@code name} is an executable on PATH (or in /usr/sbin, where tgtd lives). */
    public static boolean installed(String name) {
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin";
        for (String dir : path.split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, name))) return true;
        }
        return false;
    }

    /** The absolute path of an installed tool (see {@link #installed}), or the bare name if not found. */
    public static String which(String name) {
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin";
        for (String dir : path.split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, name))) return Path.of(dir, name).toString();
        }
        return name;
    }
}
