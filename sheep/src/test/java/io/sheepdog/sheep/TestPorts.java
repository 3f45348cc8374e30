package io.sheepdog.sheep;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.concurrent.ThreadLocalRandom;

/** Free TCP ports for daemons and servers that the tests start. */
public final class TestPorts {
    private TestPorts() {}

    /**
     * A port that nothing is bound to, from below the kernel's ephemeral range (32768 and up by default): a port found
     * by binding port 0 lies inside it, and an outgoing connection can take it before the server it was meant for
     * binds it.
     */
    public static int free() throws IOException {
        ThreadLocalRandom rnd = ThreadLocalRandom.current();
        for (int attempt = 0; attempt < 500; attempt++) {
            int port = rnd.nextInt(10000, 32768);
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(false);
                s.bind(new InetSocketAddress("0.0.0.0", port));
                return port;
            } catch (IOException e) {
                // taken; try another
            }
        }
        throw new IOException("no free port in 10000..32767");
    }
}
