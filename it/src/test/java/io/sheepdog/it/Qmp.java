package io.sheepdog.it;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A minimal QMP client (QEMU's JSON machine protocol) over the Unix socket of {@code -qmp unix:PATH,server=on,wait=off}:
 * enough to start a migration, poll its status and quit. Events are skipped; each command's answer is the next line
 * carrying "return" or "error".
 */
final class Qmp implements AutoCloseable {
    private final SocketChannel ch;
    private final BufferedReader in;
    private final OutputStream out;

    private Qmp(SocketChannel ch) throws IOException {
        this.ch = ch;
        this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
        this.out = Channels.newOutputStream(ch);
        String greeting = in.readLine();
        if (greeting == null || !greeting.contains("QMP")) throw new IOException("no QMP greeting: " + greeting);
        command("{\"execute\":\"qmp_capabilities\"}");
    }

    /** Connects once the socket exists (QEMU creates it at start-up), for up to {@code timeoutMs}. */
    static Qmp connect(Path socket, long timeoutMs) throws IOException, InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            if (Files.exists(socket)) {
                try {
                    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    return new Qmp(ch);
                } catch (IOException e) {
                    if (System.currentTimeMillis() > deadline) throw e;
                }
            }
            if (System.currentTimeMillis() > deadline) throw new IOException("no QMP socket " + socket);
            Thread.sleep(100);
        }
    }

    /** Sends one command (JSON text) and returns its answer line; throws on an error answer. */
    synchronized String command(String json) throws IOException {
        out.write((json + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        while (true) {
            String line = in.readLine();
            if (line == null) throw new IOException("QMP connection closed after " + json);
            if (line.contains("\"return\"")) return line;
            if (line.contains("\"error\"")) throw new IOException("QMP " + json + ": " + line);
        }
    }

    @Override
    public void close() {
        try {
            ch.close();
        } catch (IOException ignored) {
            // the VM is gone
        }
    }
}
