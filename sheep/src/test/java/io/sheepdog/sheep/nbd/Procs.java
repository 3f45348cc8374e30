package io.sheepdog.sheep.nbd;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/** Runs real client programs with a deadline; every process is killed by its handle if it overruns or fails. */
final class Procs {
    private Procs() {}

    record Result(int exit, String out) {
        Result ok() {
            if (exit != 0) throw new AssertionError("exit " + exit + ":\n" + out);
            return this;
        }
    }

    /** Skips the calling test (JUnit assumption) when {@code program} is not installed. */
    static void assumeInstalled(String program) {
        Assumptions.assumeTrue(which(program) != null, program + " is not installed");
    }

    static Path which(String program) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(File.pathSeparator)) {
            Path p = Path.of(dir, program);
            if (Files.isExecutable(p)) return p;
        }
        return null;
    }

    /** Runs a command, stdout and stderr merged, stdin empty; fails the test if it runs past {@code seconds}. */
    static Result run(int seconds, List<String> cmd) throws IOException, InterruptedException {
        Path log = Files.createTempFile("nbd-client", ".log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        try {
            if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
                throw new AssertionError(String.join(" ", cmd) + " did not finish in " + seconds + " s:\n"
                        + Files.readString(log, StandardCharsets.UTF_8));
            }
            return new Result(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            Files.deleteIfExists(log);
        }
    }

    static Result run(int seconds, String... cmd) throws IOException, InterruptedException {
        return run(seconds, List.of(cmd));
    }
}
