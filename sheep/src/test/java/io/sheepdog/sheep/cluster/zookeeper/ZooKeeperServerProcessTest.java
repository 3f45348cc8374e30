package io.sheepdog.sheep.cluster.zookeeper;

import static io.sheepdog.sheep.cluster.common.RecordingListener.bytes;
import static io.sheepdog.sheep.cluster.common.RecordingListener.node;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.cluster.common.RecordingListener;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ZooKeeper driver against a standalone ZooKeeper server in its own process (ZooKeeperServerMain from the
 * ZooKeeper jar with a generated zoo.cfg), which the test kills and restarts.
 */
class ZooKeeperServerProcessTest {

    static final int TIMEOUT_MS = 20_000; // the restarted server JVM needs a few seconds on a busy machine
    static final long WAIT = 30_000;

    @TempDir Path dir;
    Process server;
    int port;
    final List<ZooKeeperClusterDriver> drivers = new ArrayList<>();

    @AfterEach
    void stop() {
        for (ZooKeeperClusterDriver d : drivers) d.close();
        if (server != null) server.destroyForcibly();
    }

    void startServer() throws Exception {
        if (port == 0) {
            try (ServerSocket s = new ServerSocket(0)) {
                port = s.getLocalPort();
            }
            Files.writeString(dir.resolve("zoo.cfg"), String.join("\n",
                    "tickTime=1000",
                    "dataDir=" + dir.resolve("data"),
                    "clientPort=" + port,
                    "clientPortAddress=127.0.0.1",
                    "admin.enableServer=false",
                    "maxClientCnxns=60", ""));
            Files.writeString(dir.resolve("logback.xml"), "<configuration><appender name=\"F\" "
                    + "class=\"ch.qos.logback.core.FileAppender\"><file>" + dir.resolve("zookeeper.log")
                    + "</file><encoder><pattern>%d %-5level %logger{20} - %msg%n</pattern></encoder></appender>"
                    + "<root level=\"WARN\"><appender-ref ref=\"F\"/></root></configuration>");
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        server = new ProcessBuilder(java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp",
                System.getProperty("java.class.path"), "-Dzookeeper.admin.enableServer=false",
                "-Dlogback.configurationFile=" + dir.resolve("logback.xml"),
                "org.apache.zookeeper.server.ZooKeeperServerMain", dir.resolve("zoo.cfg").toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("zookeeper.out").toFile())
                .start();
        long deadline = System.currentTimeMillis() + 20_000;
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException e) {
                if (!server.isAlive()) throw new AssertionError("ZooKeeper exited: " + Files.readString(dir.resolve("zookeeper.out")));
                if (System.currentTimeMillis() > deadline) throw new AssertionError("ZooKeeper did not start");
                Thread.sleep(50);
            }
        }
    }

    void killServer() throws InterruptedException {
        server.destroyForcibly();
        assertTrue(server.waitFor(10, TimeUnit.SECONDS));
    }

    RecordingListener join(int p) throws Exception {
        ZooKeeperClusterDriver d = ZooKeeperClusterDriver.fromSpec("127.0.0.1:" + port + ",timeout=" + TIMEOUT_MS);
        drivers.add(d);
        RecordingListener l = new RecordingListener(node(p));
        d.join(l.self, bytes("m"), l);
        l.await("accepted", WAIT, x -> x.countOrdered("accept " + p) == 1);
        return l;
    }

    @Test
    void serverKilledAndRestarted() throws Exception {
        startServer();
        RecordingListener a = join(7000), b = join(7001);
        a.await("b", WAIT, x -> x.countOrdered("accept 7001") == 1);

        // an outage shorter than the session timeout: unhealthy while it lasts, nothing else changes
        killServer();
        a.awaitLocal("health false", WAIT);
        b.awaitLocal("health false", WAIT);
        startServer();
        a.awaitLocal("health true", WAIT);
        b.awaitLocal("health true", WAIT);
        drivers.get(1).notify(bytes("short"));
        a.awaitOrdered("notify 7001 short", WAIT);
        b.awaitOrdered("notify 7001 short", WAIT);
        assertEquals(0, a.countOrdered("leave") + b.countOrdered("leave"));
        assertEquals(0, a.countLocal("rejoin") + b.countLocal("rejoin"));

        RecordingListener.assertSameOrder(List.of(a, b));
    }
}
