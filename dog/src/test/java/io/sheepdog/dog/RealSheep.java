package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepConnection;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code sheep} daemon process (io.sheepdog.sheep.SheepMain in the foreground, started with this test
 * JVM's java and classpath) on a free port with its own store directory. Stopped by its pid in {@link #close()}.
 */
final class RealSheep implements AutoCloseable {
    final int port;
    final Path store;
    final Path log;
    private final Process process;

    private RealSheep(int port, Path store, Path log, Process process) {
        this.port = port;
        this.store = store;
        this.log = log;
        this.process = process;
    }

    static int freePort() throws IOException {
        // Below the kernel's ephemeral range (32768 and up by default): a port found by binding port 0 lies inside
        // it, and an outgoing connection can take it before the sheep it was meant for binds it.
        java.util.concurrent.ThreadLocalRandom rnd = java.util.concurrent.ThreadLocalRandom.current();
        for (int attempt = 0; attempt < 500; attempt++) {
            int port = rnd.nextInt(10000, 32768);
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(false);
                s.bind(new java.net.InetSocketAddress("0.0.0.0", port));
                return port;
            } catch (IOException e) {
                // taken; try another
            }
        }
        throw new IOException("no free port in 10000..32767");
    }

    /**
     * Starts node {@code zone} of a local-driver cluster whose shared driver directory is {@code clusterDir};
     * returns once the daemon answers GET_NODE_LIST.
     */
    static RealSheep start(Path root, Path clusterDir, int zone) throws Exception {
        int port = freePort();
        Path store = Files.createDirectories(root.resolve("store" + zone));
        Path log = root.resolve("sheep" + zone + ".out");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xms32m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "--enable-native-access=ALL-UNNAMED",
                "-cp", cp, "io.sheepdog.sheep.SheepMain", "-f", "-n", "-p", Integer.toString(port), "-z", Integer.toString(zone),
                "--nbd", "off", "-c", "local:" + clusterDir, store.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        RealSheep s = new RealSheep(port, store, log, p);
        try {
            s.awaitUp(90_000);
        } catch (Exception e) {
            s.close();
            throw new IllegalStateException("sheep did not come up; log:\n" + s.logTail(), e);
        }
        return s;
    }

    private void awaitUp(long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            if (!process.isAlive()) throw new IllegalStateException("sheep exited with " + process.exitValue());
            try (SheepConnection c = SheepConnection.open("127.0.0.1", port, 1000)) {
                if (!new SheepClient(c).getNodeList().isEmpty()) return;
            } catch (IOException e) {
                // not listening yet
            }
            if (System.currentTimeMillis() > deadline) throw new IllegalStateException("timed out");
            Thread.sleep(200);
        }
    }

    long pid() { return process.pid(); }

    boolean isAlive() { return process.isAlive(); }

    String logTail() {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** SIGTERM, then SIGKILL if it has not gone within 10 s. */
    @Override
    public void close() {
        if (!process.isAlive()) return;
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
