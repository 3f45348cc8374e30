package io.sheepdog.sheep.cluster.corosync;

import static io.sheepdog.sheep.cluster.common.RecordingListener.node;

import io.sheepdog.sheep.cluster.common.RecordingListener;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** A {@link CorosyncNodeMain} child JVM; its output is mirrored into a {@link RecordingListener}. */
final class RemoteNode implements AutoCloseable {

    final int port;
    final Process process;
    final RecordingListener mirror;
    private final Writer stdin;
    private final CompletableFuture<String> ready = new CompletableFuture<>();

    private RemoteNode(int port, Process process) {
        this.port = port;
        this.process = process;
        this.mirror = new RecordingListener(node(port));
        this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread reader = new Thread(this::read, "node-" + port + "-out");
        reader.setDaemon(true);
        reader.start();
    }

    static RemoteNode start(int port, int joinMessageSize, Path logDir) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Xmx64m",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"),
                CorosyncNodeMain.class.getName(), String.valueOf(port), String.valueOf(joinMessageSize))
                .redirectError(logDir.resolve("node-" + port + ".err").toFile())
                .start();
        return new RemoteNode(port, p);
    }

    private void read() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (line.startsWith("O ")) mirror.ordered(line.substring(2));
                else if (line.startsWith("L ")) mirror.local(line.substring(2));
                else if (line.equals("READY") || line.startsWith("ERROR ")) {
                    if (!ready.complete(line)) mirror.local(line);
                }
            }
        } catch (IOException e) {
            // process gone
        }
        ready.complete("EXITED");
    }

    /** Waits for the child to report that join() returned (READY) or failed (ERROR ...). */
    String awaitStarted(long millis) throws Exception {
        return ready.get(millis, TimeUnit.MILLISECONDS);
    }

    void send(String command) throws IOException {
        stdin.write(command + "\n");
        stdin.flush();
    }

    /** kill -9. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    @Override public void close() throws InterruptedException {
        if (!process.isAlive()) return;
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }
}
