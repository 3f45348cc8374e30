package io.sheepdog.sheep.cluster.zookeeper;

import static io.sheepdog.sheep.cluster.common.RecordingListener.bytes;
import static io.sheepdog.sheep.cluster.common.RecordingListener.node;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.SdNode;
import io.sheepdog.sheep.cluster.ClusterDriverException;
import io.sheepdog.sheep.cluster.common.RecordingListener;
import java.io.File;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingServer;
import org.apache.zookeeper.ZooKeeper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The ZooKeeper driver against a real embedded ZooKeeper server, several drivers in this JVM. */
class ZooKeeperClusterDriverTest {

    static final int TIMEOUT_MS = 3000;
    static final long WAIT = 10_000;

    TestingServer server;
    final List<ZooKeeperClusterDriver> drivers = new ArrayList<>();

    @BeforeEach
    void startServer() throws Exception {
        File dir = Files.createTempDirectory("zk-test").toFile();
        // tickTime 500 ms lets sessions time out after 1..10 s
        server = new TestingServer(new InstanceSpec(dir, -1, -1, -1, true, 1, 500, 100), true);
    }

    @AfterEach
    void stop() throws Exception {
        for (ZooKeeperClusterDriver d : drivers) d.close();
        server.close();
    }

    ZooKeeperClusterDriver driver() throws ClusterDriverException {
        ZooKeeperClusterDriver d = ZooKeeperClusterDriver.fromSpec(server.getConnectString() + ",timeout=" + TIMEOUT_MS);
        drivers.add(d);
        return d;
    }

    static RecordingListener join(ZooKeeperClusterDriver d, int port) throws Exception {
        RecordingListener l = new RecordingListener(node(port));
        d.join(l.self, bytes("m"), l);
        l.await("accepted", WAIT, x -> x.countOrdered("accept " + port) == 1);
        return l;
    }

    @Test
    void firstNodeDecidesItsOwnJoinAndTheMasterDecidesTheOthers() throws Exception {
        RecordingListener a = new RecordingListener(node(7000));
        driver().join(a.self, bytes("mA"), a);
        a.awaitOrdered("accept 7000 [7000] mA+by:7000", WAIT);
        assertEquals(List.of("joinreq 7000 []"), a.local());

        RecordingListener b = new RecordingListener(node(7001));
        driver().join(b.self, bytes("mB"), b);
        b.awaitOrdered("accept 7001 [7000,7001] mB+by:7000", WAIT);
        a.awaitOrdered("accept 7001 [7000,7001] mB+by:7000", WAIT);
        assertTrue(a.local().contains("joinreq 7001 [7000]"));
        assertEquals(0, b.countLocal("joinreq"), "a joiner decides only when alone");

        RecordingListener c = new RecordingListener(node(7002));
        driver().join(c.self, bytes("mC"), c);
        for (RecordingListener l : List.of(a, b, c)) l.awaitOrdered("accept 7002 [7000,7001,7002] mC+by:7000", WAIT);
        RecordingListener.assertSameOrder(List.of(a, b, c));
    }

    @Test
    void everyNodeSeesTheSameOrder() throws Exception {
        List<RecordingListener> ls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            RecordingListener l = new RecordingListener(node(7000 + i));
            driver().join(l.self, bytes("m"), l);
            ls.add(l);
        }
        for (RecordingListener l : ls) l.await("all accepted", WAIT, x -> x.countOrdered("accept 7002") == 1);
        // concurrent senders
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            ZooKeeperClusterDriver d = drivers.get(i);
            int n = i;
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int k = 0; k < 20; k++) {
                    d.notify(bytes("n" + n + "-" + k));
                    if (k == 10) d.updateNode(node(7000 + n).withVnodes(64 + n));
                }
            }));
        }
        go.countDown();
        for (Thread t : threads) t.join();
        for (RecordingListener l : ls) {
            l.await("60 notifies", WAIT, x -> x.countOrdered("notify") == 60 && x.countOrdered("update") == 3);
        }
        RecordingListener.assertSameOrder(ls);
        // each sender's own messages stay in its sending order
        List<String> o = ls.get(0).ordered();
        for (int n = 0; n < 3; n++) {
            int last = -1;
            for (int k = 0; k < 20; k++) {
                int at = o.indexOf("notify " + (7000 + n) + " n" + n + "-" + k);
                assertTrue(at > last, "per-sender order");
                last = at;
            }
        }
        assertTrue(o.contains("update 7001 v65"));
    }

    @Test
    void leaveAndCloseAreSeenByTheOthers() throws Exception {
        RecordingListener a = join3(0), b = join3(1), c = join3(2);
        for (RecordingListener l : List.of(a, b, c)) l.await("all", WAIT, x -> x.countOrdered("accept 7002") == 1);
        drivers.get(2).leave();
        a.awaitOrdered("leave 7002 [7000,7001]", WAIT);
        b.awaitOrdered("leave 7002 [7000,7001]", WAIT);
        drivers.get(2).finished().get(WAIT, TimeUnit.MILLISECONDS);
        // close without leave: the session ends at once, well before its timeout
        long t0 = System.nanoTime();
        drivers.get(1).close();
        a.awaitOrdered("leave 7001 [7000]", WAIT);
        assertTrue(System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS), "closed session is noticed at once");
        assertEquals(0, c.countOrdered("leave"), "a node that left gets no further events");
        RecordingListener.assertSameOrder(List.of(a, b));
    }

    RecordingListener join3(int i) throws Exception {
        return join(driver(), 7000 + i);
    }

    @Test
    void crashIsDetectedWhenTheSessionTimesOut() throws Exception {
        RecordingListener a = join3(0), b = join3(1);
        a.await("b", WAIT, x -> x.countOrdered("accept 7001") == 1);
        long t0 = System.nanoTime();
        drivers.get(1).simulateCrash();
        a.awaitOrdered("leave 7001 [7000]", WAIT);
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms >= TIMEOUT_MS / 2, "a crash is only known when the session expires (" + ms + " ms)");
        assertEquals(0, b.countOrdered("leave"));
    }

    @Test
    void restartedNodeReplacesItsDeadPredecessorAtOnce() throws Exception {
        RecordingListener a = join3(0), b = join3(1);
        a.await("b", WAIT, x -> x.countOrdered("accept 7001") == 1);
        drivers.get(1).simulateCrash();
        long t0 = System.nanoTime();
        RecordingListener b2 = new RecordingListener(node(7001));
        driver().join(b2.self, bytes("again"), b2);
        b2.awaitOrdered("accept 7001 [7000,7001] again+by:7000", WAIT);
        a.awaitOrdered("accept 7001 [7000,7001] again+by:7000", WAIT);
        assertTrue(System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS), "no wait for the old session");
        List<String> o = a.ordered();
        assertEquals("leave 7001 [7000]", o.get(o.size() - 2), "the predecessor leaves first: " + o);
        // the old session's expiry later is no news
        Thread.sleep(TIMEOUT_MS + 1500);
        assertEquals(1, a.countOrdered("leave"), a.ordered().toString());
        drivers.get(2).notify(bytes("hi"));
        a.awaitOrdered("notify 7001 hi", WAIT);
    }

    @Test
    void expiredSessionRejoinsByItself() throws Exception {
        RecordingListener a = join3(0), b = join3(1);
        a.await("b", WAIT, x -> x.countOrdered("accept 7001") == 1);
        b.rejoinMessage = bytes("fresh");
        ZooKeeper victim = drivers.get(1).zooKeeperForTest();
        // expire B's session on the server: a second client with the same session id closes it
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper twin = new ZooKeeper(server.getConnectString(), TIMEOUT_MS, e -> {
            if (e.getState() == org.apache.zookeeper.Watcher.Event.KeeperState.SyncConnected) connected.countDown();
        }, victim.getSessionId(), victim.getSessionPasswd());
        assertTrue(connected.await(WAIT, TimeUnit.MILLISECONDS));
        twin.close();
        a.awaitOrdered("leave 7001 [7000]", WAIT);
        b.awaitLocal("health false", WAIT);
        b.awaitLocal("rejoin ", WAIT);
        a.awaitOrdered("accept 7001 [7000,7001] fresh+by:7000", WAIT);
        b.awaitOrdered("accept 7001 [7000,7001] fresh+by:7000", WAIT);
        b.awaitLocal("health true", WAIT);
        drivers.get(1).notify(bytes("after"));
        a.awaitOrdered("notify 7001 after", WAIT);
        b.awaitOrdered("notify 7001 after", WAIT);
        RecordingListener.assertSameOrder(List.of(a, b));
    }

    @Test
    void blocksAreMutuallyExclusiveAndOrdered() throws Exception {
        List<RecordingListener> ls = new ArrayList<>();
        for (int i = 0; i < 3; i++) ls.add(join3(i));
        for (RecordingListener l : ls) l.await("all", WAIT, x -> x.countOrdered("accept 7002") == 1);
        AtomicInteger holders = new AtomicInteger();
        AtomicInteger overlaps = new AtomicInteger();
        AtomicInteger grants = new AtomicInteger();
        ScheduledExecutorService later = Executors.newScheduledThreadPool(3);
        try {
            for (int i = 0; i < 3; i++) {
                ZooKeeperClusterDriver d = drivers.get(i);
                int n = i;
                ls.get(i).onBlock = () -> {
                    if (holders.incrementAndGet() != 1) overlaps.incrementAndGet();
                    int g = grants.incrementAndGet();
                    later.schedule(() -> {
                        holders.decrementAndGet();
                        d.unblock(bytes("u" + n + "-" + g));
                    }, 30, TimeUnit.MILLISECONDS);
                    return true;
                };
            }
            for (int round = 0; round < 2; round++) for (ZooKeeperClusterDriver d : drivers) d.block();
            for (RecordingListener l : ls) l.await("6 unblocks", WAIT, x -> x.countOrdered("notify") == 6);
        } finally {
            later.shutdownNow();
        }
        assertEquals(6, grants.get());
        assertEquals(0, overlaps.get(), "two blocks were held at once");
        RecordingListener.assertSameOrder(ls);
    }

    @Test
    void blockOfADeadHolderIsReleased() throws Exception {
        RecordingListener a = join3(0), b = join3(1);
        a.await("b", WAIT, x -> x.countOrdered("accept 7001") == 1);
        drivers.get(0).block(); // granted, never unblocked
        a.awaitLocal("block true", WAIT);
        drivers.get(1).block();
        Thread.sleep(500);
        assertEquals(0, b.countLocal("block"), "no second block while the first is held");
        drivers.get(0).close();
        b.awaitLocal("block true", WAIT);
        b.awaitOrdered("leave 7000 [7001]", WAIT);
    }

    @Test
    void declinedBlockIsOfferedAgain() throws Exception {
        RecordingListener a = join3(0);
        AtomicInteger calls = new AtomicInteger();
        a.onBlock = () -> calls.incrementAndGet() >= 3;
        drivers.get(0).block();
        a.awaitLocal("block true", WAIT);
        assertEquals(3, calls.get());
        drivers.get(0).unblock(bytes("done"));
        a.awaitOrdered("notify 7000 done", WAIT);
    }

    @Test
    void refusedJoinerIsTold() throws Exception {
        RecordingListener a = join3(0);
        a.refuse = n -> n.nid().port() == 7001;
        RecordingListener b = new RecordingListener(node(7001));
        ZooKeeperClusterDriver d = driver();
        d.join(b.self, bytes("m"), b);
        b.awaitLocal("health false the cluster refused", WAIT);
        d.finished().get(WAIT, TimeUnit.MILLISECONDS);
        assertEquals(0, a.countOrdered("accept 7001"));
        // the cluster goes on
        RecordingListener c = join3(2);
        a.awaitOrdered("accept 7002 [7000,7002] m+by:7000", WAIT);
        assertEquals(0, c.countOrdered("accept 7001"));
    }

    @Test
    void serverRestartShorterThanTheSessionTimeoutChangesNothing() throws Exception {
        RecordingListener a = join3(0), b = join3(1);
        a.await("b", WAIT, x -> x.countOrdered("accept 7001") == 1);
        server.restart();
        drivers.get(1).notify(bytes("after restart"));
        a.awaitOrdered("notify 7001 after restart", WAIT);
        b.awaitOrdered("notify 7001 after restart", WAIT);
        Thread.sleep(TIMEOUT_MS);
        for (RecordingListener l : List.of(a, b)) {
            assertEquals(0, l.countOrdered("leave"), l.ordered().toString());
            assertEquals(0, l.countLocal("rejoin"), l.local().toString());
            // health may have flickered during the restart, but it ends healthy
            List<String> h = l.local().stream().filter(s -> s.startsWith("health")).toList();
            assertTrue(h.isEmpty() || h.getLast().startsWith("health true"), h.toString());
        }
        RecordingListener.assertSameOrder(List.of(a, b));
    }

    @Test
    void lostServerIsReportedAndRecovered() throws Exception {
        RecordingListener a = join3(0);
        server.stop();
        a.awaitLocal("health false lost the connection to ZooKeeper", WAIT);
        server.restart();
        a.awaitLocal("health true", WAIT);
        drivers.get(0).notify(bytes("x"));
        a.awaitOrdered("notify 7000 x", WAIT);
    }

    /**
     * A lost connection is reported with a lease no longer than the session allows after the last request the server
     * answered ({@link ZooKeeperClusterDriver#leaseMs}); the expiry found on reconnecting ends it (a report with none).
     */
    @Test
    void aLostConnectionComesWithALeaseAndAnExpiredSessionEndsIt() throws Exception {
        assertEquals(20_500, ZooKeeperClusterDriver.leaseMs(30_000));
        assertEquals(0, ZooKeeperClusterDriver.leaseMs(2_000));
        RecordingListener a = join3(0);
        Thread.sleep(1500); // the queue listed at least once since the join
        server.stop();
        a.awaitLocal("health false lost the connection", WAIT);
        long left = a.leasesLeftNanos.getLast();
        long most = java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(ZooKeeperClusterDriver.leaseMs(TIMEOUT_MS));
        assertTrue(left > 0 && left <= most, "lease left " + left + " ns, at most " + most);
        Thread.sleep(TIMEOUT_MS + 1000);
        server.restart();
        a.awaitLocal("rejoin", WAIT);
        a.await("back", WAIT, x -> x.local().getLast().startsWith("health true"));
        List<String> health = a.local().stream().filter(x -> x.startsWith("health")).toList();
        int expiredAt = -1;
        for (int i = 0; i < health.size(); i++) if (health.get(i).contains("expired")) expiredAt = i;
        assertTrue(expiredAt > 0, health.toString());
        assertEquals(0L, a.leasesLeftNanos.get(expiredAt), "the expiry's report ends the lease: " + health);
    }

    @Test
    void outageLongerThanTheSessionTimeoutEndsInRejoins() throws Exception {
        RecordingListener a = join3(0), b = join3(1);
        a.await("b", WAIT, x -> x.countOrdered("accept 7001") == 1);
        server.stop();
        Thread.sleep(TIMEOUT_MS + 1000);
        server.restart();
        a.awaitLocal("rejoin", WAIT);
        b.awaitLocal("rejoin", WAIT);
        for (RecordingListener l : List.of(a, b)) {
            l.await("both back", WAIT, x -> x.countOrdered("accept " + RecordingListener.port(x.self)) == 2
                    && x.lastMembers().matches("\\[700[01],700[01]\\]"));
        }
        drivers.get(0).notify(bytes("back"));
        a.awaitOrdered("notify 7000 back", WAIT);
        b.awaitOrdered("notify 7000 back", WAIT);
        for (RecordingListener l : List.of(a, b)) {
            List<String> health = l.local().stream().filter(x -> x.startsWith("health")).toList();
            assertTrue(health.getLast().startsWith("health true"), health.toString());
        }
        RecordingListener.assertSameOrder(List.of(a, b));
    }

    @Test
    void queueIsGarbageCollected() throws Exception {
        RecordingListener a = join3(0);
        ZooKeeperClusterDriver da = drivers.get(0);
        ZooKeeperClusterDriver db = driver();
        for (ZooKeeperClusterDriver d : List.of(da, db)) {
            d.gcEvents = 50;
            d.gcMs = 300;
            d.positionReportEvents = 10;
            d.positionReportMs = 100;
        }
        RecordingListener b = join(db, 7001);
        for (int i = 0; i < 200; i++) (i % 2 == 0 ? da : db).notify(bytes("g" + i));
        a.await("200", WAIT, x -> x.countOrdered("notify") == 200);
        b.await("200", WAIT, x -> x.countOrdered("notify") == 200);
        try (org.apache.curator.framework.CuratorFramework c = org.apache.curator.framework.CuratorFrameworkFactory
                .newClient(server.getConnectString(), new org.apache.curator.retry.RetryOneTime(100))) {
            c.start();
            long deadline = System.currentTimeMillis() + WAIT;
            int left;
            while ((left = c.getChildren().forPath("/sheepdog/queue").size()) > 5
                    && System.currentTimeMillis() < deadline) {
                Thread.sleep(100);
            }
            assertTrue(left <= 5, left + " of 202 events left in the queue");
        }
        // the cluster still works, and a newcomer starts from its own join
        da.notify(bytes("after gc"));
        b.awaitOrdered("notify 7000 after gc", WAIT);
        RecordingListener c = join(driver(), 7002);
        da.notify(bytes("to all"));
        c.awaitOrdered("notify 7000 to all", WAIT);
        RecordingListener.assertSameOrder(List.of(a, b, c));
    }

    @Test
    void unreachableServerFailsJoinWithOneLine() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        ZooKeeperClusterDriver d = ZooKeeperClusterDriver.fromSpec("127.0.0.1:" + port + ",timeout=1500");
        drivers.add(d);
        long t0 = System.nanoTime();
        ClusterDriverException e = assertThrows(ClusterDriverException.class,
                () -> d.join(node(7000), bytes("m"), new RecordingListener(node(7000))));
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5));
        assertEquals("cannot connect to ZooKeeper at 127.0.0.1:" + port + " within 1500 ms", e.getMessage());
    }

    @Test
    void clusterIdSeparatesClusters() throws Exception {
        ZooKeeperClusterDriver d1 = ZooKeeperClusterDriver.fromSpec(server.getConnectString() + "/one,timeout=3000");
        ZooKeeperClusterDriver d2 = ZooKeeperClusterDriver.fromSpec(server.getConnectString() + "/two,timeout=3000");
        drivers.add(d1);
        drivers.add(d2);
        RecordingListener a = new RecordingListener(node(7000)), b = new RecordingListener(node(7001));
        d1.join(a.self, bytes("a"), a);
        d2.join(b.self, bytes("b"), b);
        a.awaitOrdered("accept 7000 [7000] a+by:7000", WAIT);
        b.awaitOrdered("accept 7001 [7001] b+by:7001", WAIT);
    }

    @Test
    void largeJoinMessagesFit() throws Exception {
        byte[] big = new byte[491_568]; // a full cluster_info
        big[0] = 'X';
        RecordingListener a = new RecordingListener(node(7000)) {
            @Override public JoinDecision onJoinRequest(SdNode joining, List<SdNode> members, byte[] message) {
                return new JoinDecision(true, message);
            }
        };
        driver().join(a.self, big, a);
        a.await("accept", WAIT, x -> x.countOrdered("accept 7000") == 1);
        assertFalse(a.ordered().isEmpty());
    }
}
