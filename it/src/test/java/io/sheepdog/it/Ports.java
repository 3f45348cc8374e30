package io.sheepdog.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.HashSet;
import java.util.Set;

/**
 * Free TCP ports on the loopback interface. Ports come from below the kernel's ephemeral range: a port found by
 * binding port 0 lies inside it, and any outgoing connection (the nodes' own connections to each other, say) can
 * take it before the sheep it was meant for binds it. Ports already handed out in this JVM are never handed out
 * again, so the nodes of one cluster (which bind only later) cannot be given the same one.
 */
public final class Ports {
    private static final Set<Integer> HANDED_OUT = new HashSet<>();
    private static final int LOWEST = 10000;

    private Ports() {}

    public static int free() {
        return freeIn(LOWEST, ephemeralLow() - 1);
    }

    /** The first port of the kernel's ephemeral range (32768 if it cannot be read or leaves no room below it). */
    static int ephemeralLow() {
        try {
            String range = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/sys/net/ipv4/ip_local_port_range"));
            int low = Integer.parseInt(range.trim().split("\\s+")[0]);
            return low > LOWEST + 2000 ? low : 32768;
        } catch (IOException | RuntimeException e) {
            return 32768;
        }
    }

    /**
     * A free port in [lo, hi], tried at random. For clients that cannot take any port: tgtd's sheepdog backing store
     * keeps only the first 4 characters of the port in {@code tcp:HOST:PORT:VDI}, so its sheep needs one below 10000.
     */
    public static synchronized int freeIn(int lo, int hi) {
        java.util.concurrent.ThreadLocalRandom rnd = java.util.concurrent.ThreadLocalRandom.current();
        for (int attempt = 0; attempt < 500; attempt++) {
            int port = rnd.nextInt(lo, hi + 1);
            if (HANDED_OUT.contains(port) || accepting(port)) continue;
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(false);
                s.bind(new InetSocketAddress("0.0.0.0", port));
            } catch (IOException e) {
                continue;
            }
            HANDED_OUT.add(port);
            return port;
        }
        throw new IllegalStateException("no free port in " + lo + ".." + hi);
    }

    /** True if something accepts TCP connections on 127.0.0.1:port. */
    public static boolean accepting(int port) {
        return accepting("127.0.0.1", port);
    }

    /** Whether something accepts connections on {@code host:port}. */
    public static boolean accepting(String host, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), 200);
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
