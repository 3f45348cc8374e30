package io.sheepdog.sheep.cluster.corosync;

import static io.sheepdog.sheep.cluster.common.RecordingListener.bytes;
import static io.sheepdog.sheep.cluster.common.RecordingListener.node;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.sheepdog.sheep.cluster.ClusterDriverException;
import io.sheepdog.sheep.cluster.common.RecordingListener;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The corosync driver against a real corosync started by the test, with every sheep stand-in in its own JVM
 * ({@link CorosyncNodeMain}): corosync lets a process join a group once.
 */
class CorosyncClusterDriverTest {

    static final long WAIT = 30_000;
    static FileLock lock;

    @TempDir Path dir;
    CorosyncProcess corosync;
    final List<RemoteNode> nodes = new ArrayList<>();

    @BeforeAll
    static void exclusive() throws Exception {
        assumeTrue(CorosyncProcess.installed(), "corosync and libcpg are not installed");
        lock = CorosyncProcess.lock();
        assumeFalse(CorosyncProcess.anyRunning(), "a corosync this test did not start is running");
    }

    @AfterAll
    static void release() throws Exception {
        if (lock != null) lock.channel().close();
    }

    @AfterEach
    void stopAll() throws Exception {
        for (RemoteNode n : nodes) n.close();
        if (corosync != null) corosync.stop();
    }

    RemoteNode start(int port, int joinSize) throws Exception {
        RemoteNode n = RemoteNode.start(port, joinSize, dir);
        nodes.add(n);
        return n;
    }

    RemoteNode started(int port) throws Exception {
        RemoteNode n = start(port, 0);
        assertEquals("READY", n.awaitStarted(WAIT));
        return n;
    }

    static void awaitAccepted(RemoteNode n, int count) throws InterruptedException {
        n.mirror.await("accept of " + n.port, WAIT, x -> x.countOrdered("accept " + n.port + " ") >= count);
    }

    @Test
    void joinFailsWithOneLineWhenCorosyncIsNotRunning() {
        CorosyncClusterDriver d = new CorosyncClusterDriver();
        ClusterDriverException e = assertThrows(ClusterDriverException.class,
                () -> d.join(node(7000), bytes("m"), new RecordingListener(node(7000))));
        assertTrue(e.getMessage().startsWith("cannot connect to corosync: "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        d.close();
    }

    @Test
    void clusterLifecycle() throws Exception {
        corosync = new CorosyncProcess(dir);
        corosync.start();

        // the first node decides its own join; the next two start together and are answered by it
        RemoteNode a = started(7000);
        a.mirror.awaitOrdered("accept 7000 [7000] m7000+by:7000", WAIT);
        RemoteNode b = start(7001, 0), c = start(7002, 0);
        assertEquals("READY", b.awaitStarted(WAIT));
        assertEquals("READY", c.awaitStarted(WAIT));
        for (RemoteNode n : List.of(a, b, c)) {
            n.mirror.await("three members", WAIT, x -> x.lastMembers().matches("\\[7000,700[12],700[12]\\]"));
        }
        assertEquals(0, b.mirror.countLocal("joinreq") + c.mirror.countLocal("joinreq"));
        assertTrue(b.mirror.ordered().getFirst().endsWith("m7001+by:7000"), b.mirror.ordered().toString());
        List<String> cFirst = c.mirror.ordered();
        assertTrue(cFirst.getFirst().matches("accept 7002 \\[7000,(7001,)?7002\\] m7002\\+by:7000"), cFirst.toString());

        // total order under concurrent senders
        for (RemoteNode n : List.of(a, b, c)) n.send("burst 30");
        for (RemoteNode n : List.of(a, b, c)) n.mirror.await("90 notifies", WAIT, x -> x.countOrdered("notify") == 90);
        RecordingListener.assertSameOrder(List.of(a.mirror, b.mirror, c.mirror));

        // blocks: one holder at a time, in request order, released by unblock
        for (RemoteNode n : List.of(a, b, c)) n.send("block");
        List<RemoteNode> holders = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            int r = round;
            RemoteNode holder = null;
            long deadline = System.currentTimeMillis() + WAIT;
            while (holder == null && System.currentTimeMillis() < deadline) {
                for (RemoteNode n : List.of(a, b, c)) {
                    if (n.mirror.countLocal("block true") > holders.stream().filter(h -> h == n).count()) holder = n;
                }
                Thread.sleep(20);
            }
            assertTrue(holder != null, "block " + round + " granted");
            holders.add(holder);
            Thread.sleep(300); // nobody else may get it meanwhile
            long granted = a.mirror.countLocal("block true") + b.mirror.countLocal("block true") + c.mirror.countLocal("block true");
            assertEquals(round + 1, granted, "blocks held at once");
            holder.send("unblock u" + r);
        }
        assertEquals(3, holders.stream().distinct().count());
        for (RemoteNode n : List.of(a, b, c)) {
            n.mirror.await("3 unblocks", WAIT, x -> x.countOrdered("notify") == 93);
        }

        // node info updates
        b.send("update 64");
        for (RemoteNode n : List.of(a, b, c)) n.mirror.awaitOrdered("update 7001 v64", WAIT);

        // a crash (kill -9) is seen at once, a clean leave too
        c.kill();
        a.mirror.awaitOrdered("leave 7002 [7000,7001]", WAIT);
        b.mirror.awaitOrdered("leave 7002 [7000,7001]", WAIT);
        b.send("leave");
        a.mirror.awaitOrdered("leave 7001 [7000]", WAIT);
        b.mirror.awaitLocal("finished", WAIT);

        // a big join message (a full cluster_info is 491 568 bytes) goes through
        RemoteNode d = start(7003, 600_000);
        assertEquals("READY", d.awaitStarted(WAIT));
        a.mirror.await("d", WAIT, x -> x.ordered().stream().anyMatch(l -> l.startsWith("accept 7003 [7000,7003] m7003")
                && l.endsWith("Z+by:7000")));
        awaitAccepted(d, 1);
        a.send("notify last");
        d.mirror.awaitOrdered("notify 7000 last", WAIT);
        RecordingListener.assertSameOrder(List.of(a.mirror, b.mirror, c.mirror, d.mirror));
    }

    @Test
    void corosyncRestartMakesTheNodesJoinAgain() throws Exception {
        corosync = new CorosyncProcess(dir);
        corosync.start();
        RemoteNode a = started(7000);
        awaitAccepted(a, 1);
        RemoteNode b = started(7001);
        awaitAccepted(b, 1);
        a.mirror.await("b", WAIT, x -> x.countOrdered("accept 7001") == 1);

        corosync.stop();
        for (RemoteNode n : List.of(a, b)) n.mirror.awaitLocal("health false lost the connection to corosync", WAIT);
        corosync.start();
        for (RemoteNode n : List.of(a, b)) {
            n.mirror.awaitLocal("rejoin", WAIT);
            n.mirror.await("both back", WAIT, x -> x.countOrdered("accept " + n.port) == 2
                    && x.lastMembers().matches("\\[700[01],700[01]\\]"));
            n.mirror.awaitLocal("health true", WAIT);
        }
        b.send("notify again");
        a.mirror.awaitOrdered("notify 7001 again", WAIT);
        b.mirror.awaitOrdered("notify 7001 again", WAIT);
        RecordingListener.assertSameOrder(List.of(a.mirror, b.mirror));
    }
}
