package io.sheepdog.sheep.cluster.zookeeper;

import static io.sheepdog.sheep.cluster.common.RecordingListener.bytes;
import static io.sheepdog.sheep.cluster.common.RecordingListener.node;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.sheepdog.sheep.cluster.common.RecordingListener;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ZooKeeper driver against a standalone ZooKeeper server in its own process (ZooKeeperServerMain from the
 * ZooKeeper jar with a generated zoo.cfg), which the test kills and restarts.
 */
class ZooKeeperServerProcessTest {

    static final int TIMEOUT_MS = 40_000; // generous: a restarted server JVM on a busy 2-core machine can take many seconds
    static final long WAIT = 30_000;

    @TempDir Path dir;
    ZooKeeperServerProcess zk;
    int port;
    final List<ZooKeeperClusterDriver> drivers = new ArrayList<>();

    @AfterEach
    void stop() {
        for (ZooKeeperClusterDriver d : drivers) d.close();
        if (zk != null) {
            try { zk.close(); } catch (InterruptedException ignored) { }
        }
    }

    void startServer() throws Exception {
        if (zk == null) zk = new ZooKeeperServerProcess(dir);
        zk.start();
        port = zk.port();
    }

    void killServer() throws InterruptedException {
        zk.kill();
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
