package io.sheepdog.it;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Debian's tgtd (Linux SCSI target daemon, built with the sheepdog backing store) on a free iSCSI port of 127.0.0.1
 * and its own control port, so it does not clash with a system tgtd or another test. Stopped by pid in
 * {@link #close()}: tgtd ignores SIGTERM, so it is asked to exit through tgtadm first and SIGKILLed if it stays.
 */
public final class Tgtd implements AutoCloseable {
    private final int iscsiPort;
    private final int controlPort;
    private final Path logFile;
    private final Process process;

    private Tgtd(int iscsiPort, int controlPort, Path logFile, Process process) {
        this.iscsiPort = iscsiPort;
        this.controlPort = controlPort;
        this.logFile = logFile;
        this.process = process;
    }

    /** Starts {@code tgtd -f -C <control> --iscsi portal=127.0.0.1:<port>} and waits until the portal listens. */
    public static Tgtd start(Path logFile) {
        int port = Ports.free();
        // tgtd's control channel is a Unix socket named after this number (/var/run/tgtd/socket.N), not a TCP port:
        // any number not used by another tgtd will do.
        int control = 1000 + (int) (ProcessHandle.current().pid() % 20000) + (port % 997);
        List<String> cmd = List.of(Commands.which("tgtd"), "-f", "-C", Integer.toString(control),
                "--iscsi", "portal=127.0.0.1:" + port);
        Process p;
        try {
            p = new ProcessBuilder(cmd)
                    .redirectInput(new File("/dev/null"))
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start tgtd", e);
        }
        Tgtd t = new Tgtd(port, control, logFile, p);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!Ports.accepting(port)) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                t.close();
                throw new AssertionError("tgtd did not come up on 127.0.0.1:" + port + " (exit "
                        + (p.isAlive() ? "none" : p.exitValue()) + ")\n" + SheepNode.tail(logFile, 30));
            }
            SheepNode.sleep(50);
        }
        return t;
    }

    public int iscsiPort() { return iscsiPort; }
    public int controlPort() { return controlPort; }
    public long pid() { return process.pid(); }
    public boolean isAlive() { return process.isAlive(); }
    public String log() { return SheepNode.tail(logFile, 50); }

    /** Runs {@code tgtadm -C <control> --lld iscsi <args>}. */
    public CommandResult tgtadm(String... args) {
        List<String> cmd = new ArrayList<>(List.of(Commands.which("tgtadm"), "-C", Integer.toString(controlPort),
                "--lld", "iscsi"));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, null, Map.of(), Duration.ofSeconds(30));
    }

    /** Deletes every target (forcibly), asks tgtd to exit, and SIGKILLs it by pid if it is still there. */
    @Override public void close() {
        if (process.isAlive()) {
            try {
                // `--mode system --op delete` is refused while targets exist
                CommandResult show = tgtadm("--mode", "target", "--op", "show");
                for (String line : show.stdout().split("\n")) {
                    if (line.startsWith("Target ")) {
                        String tid = line.substring("Target ".length(), line.indexOf(':'));
                        tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", tid.trim());
                    }
                }
                Commands.run(List.of(Commands.which("tgtadm"), "-C", Integer.toString(controlPort),
                        "--mode", "system", "--op", "delete"), null, Map.of(), Duration.ofSeconds(10));
            } catch (RuntimeException | AssertionError e) {
                // fall through to SIGKILL
            }
            if (!Processes.awaitExit(process.toHandle(), 5000)) Processes.killTree(process.toHandle());
        }
        // tgtd leaves its control socket behind even when it exits cleanly
        for (String suffix : new String[] {"", ".lock"}) {
            try {
                java.nio.file.Files.deleteIfExists(Path.of("/var/run/tgtd/socket." + controlPort + suffix));
            } catch (IOException | RuntimeException ignored) {
                // not ours to worry about beyond this
            }
        }
    }
}
