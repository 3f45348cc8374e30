package io.sheepdog.sheep.cluster.corosync;

import static io.sheepdog.sheep.cluster.common.RecordingListener.bytes;
import static io.sheepdog.sheep.cluster.common.RecordingListener.node;

import io.sheepdog.sheep.cluster.ClusterDriverException;
import io.sheepdog.sheep.cluster.common.RecordingListener;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.util.Arrays;

/**
 * A sheep stand-in in its own process for the corosync tests (corosync allows one group member per process):
 * runs a {@link CorosyncClusterDriver} with a {@link RecordingListener}, prints every recorded line to stdout
 * ({@code O line} for ordered events, {@code L line} for local ones) and obeys commands on stdin.
 *
 * <p>Arguments: port [join message size]. Commands: {@code notify TEXT}, {@code burst N}, {@code block},
 * {@code unblock TEXT}, {@code update VNODES}, {@code leave}, {@code exit}.
 */
public final class CorosyncNodeMain {

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        int size = args.length > 1 ? Integer.parseInt(args[1]) : 0;
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        RecordingListener l = new RecordingListener(node(port));
        l.tap = (ordered, line) -> {
            synchronized (out) {
                out.println((ordered ? "O " : "L ") + line);
            }
        };
        byte[] join = bytes("m" + port);
        if (size > join.length) {
            join = Arrays.copyOf(join, size); // a large, mostly zero join message, like a full cluster_info
            join[size - 1] = 'Z';
        }
        CorosyncClusterDriver d = new CorosyncClusterDriver();
        try {
            d.join(l.self, join, l);
        } catch (ClusterDriverException e) {
            out.println("ERROR " + e.getMessage());
            System.exit(2);
        }
        d.finished().thenRun(() -> out.println("L finished"));
        out.println("READY");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        String cmd;
        while ((cmd = in.readLine()) != null) {
            String[] f = cmd.split(" ", 2);
            switch (f[0]) {
                case "notify" -> d.notify(bytes(f[1]));
                case "burst" -> {
                    for (int i = 0; i < Integer.parseInt(f[1]); i++) d.notify(bytes("b" + port + "-" + i));
                }
                case "block" -> d.block();
                case "unblock" -> d.unblock(bytes(f[1]));
                case "update" -> d.updateNode(l.self.withVnodes(Integer.parseInt(f[1])));
                case "leave" -> d.leave();
                case "exit" -> {
                    d.close();
                    System.exit(0);
                }
                default -> out.println("ERROR unknown command " + cmd);
            }
        }
        d.close();
    }
}
