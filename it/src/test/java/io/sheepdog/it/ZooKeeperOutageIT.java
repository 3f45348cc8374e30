package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.cluster.zookeeper.ZooKeeperServerProcess;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;

/**
 * ZooKeeper goes away under a running cluster with a checked writer on it, for less than the session timeout and
 * for longer. Writes go on while the driver's lease holds (up to 3/4 of the session timeout less 2 s after the last
 * answer from ZooKeeper: no other node can have seen this one leave before), then wait (no error reply); after it is
 * back, every cluster operation works again
 * within seconds: a VDI created, a snapshot taken, and the VDI lock of an NBD client that went away during the outage
 * released, so another client can open that VDI. No acknowledged write is lost.
 */
@ExtendWith(MiniClusterExtension.class)
class ZooKeeperOutageIT {
    private static final long MiB = 1 << 20;
    /**
     * 2.4-4 s on this machine (also with a CPU hog beside it); one CI run took 13.6 s. The bound tells a slow return
     * from a wedged cluster (which stayed broken for more than 30 s before the fixes), not a fast one from a slow one.
     */
    private static final long BACK_WITHIN_MS = 20_000;

    /**
     * An outage shorter than the session timeout, and one longer than it (every session expires, every node
     * re-joins at its own moment, replacing its old incarnation).
     */
    static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> outages() {
        return java.util.stream.Stream.of(org.junit.jupiter.params.provider.Arguments.of(10, 30000),
                org.junit.jupiter.params.provider.Arguments.of(14, 8000));
    }

    @ParameterizedTest(name = "outage {0} s, session timeout {1} ms")
    @org.junit.jupiter.params.provider.MethodSource("outages")
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void clusterOperationsWorkSoonAfterZooKeeperReturns(int outageSeconds, int sessionTimeoutMs) throws Exception {
        Path tmp = Files.createTempDirectory("sdit-zkout-");
        try (ZooKeeperServerProcess zk = new ZooKeeperServerProcess(tmp.resolve("zk"))) {
            zk.start();
            try (MiniCluster c = MiniCluster.builder().name("zkout-" + outageSeconds).nodes(3).copies(3).sync(true)
                    .driver("zookeeper:" + zk.address() + ",timeout=" + sessionTimeoutMs).build().start()) {
                c.dog("vdi", "create", "v", "32M").assertOk();
                c.dog("vdi", "create", "w", "16M").assertOk();
                CheckedNbdWriter writer = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(c.node(0).nbdPort()), 8,
                        c.dir().resolve("acks.log")).start(outageSeconds);
                long resumedMs;
                StringBuilder steps = new StringBuilder();
                try {
                    assertTrue(writer.awaitAcks(300, 60), "the writer got going");
                    // another client holds w's lock through node 1, and goes away while ZooKeeper is gone
                    Socket holder = open(c.node(1).nbdPort(), "w");
                    assertTrue(c.dog("vm", "list").assertOk().stdout().contains("running on"), "w's lock is held");

                    zk.kill();
                    Thread.sleep(1000);
                    holder.close();
                    // within the driver's lease (the session cannot have expired: no other node can have seen this
                    // one leave) writes go on while ZooKeeper is away; before, they waited for it to return
                    long before = writer.acknowledged();
                    Thread.sleep(3000);
                    long during = writer.acknowledged() - before;
                    steps.append("acknowledged during the outage's seconds 1-4: ").append(during).append("; ");
                    if (sessionTimeoutMs >= 20_000) {
                        assertTrue(during > 100, "writes go on within the lease: " + during + " acknowledged in 3 s");
                    }
                    Thread.sleep(outageSeconds * 1000L - 4000);
                    zk.start();
                    long t0 = System.nanoTime();
                    // a new name each time: a create that failed when the session expired may still have been
                    // carried out (its outcome was unknown to the node that lost its session), and then "n" exists
                    java.util.concurrent.atomic.AtomicInteger attempt = new java.util.concurrent.atomic.AtomicInteger();
                    c.waitUntil("a VDI can be created again",
                            () -> c.dog("vdi", "create", "n" + attempt.incrementAndGet(), "16M").ok());
                    steps.append("create ").append(sinceMs(t0)).append(" ms");
                    c.waitUntil("a snapshot can be taken again", () -> c.dog("vdi", "snapshot", "-s", "after", "w").ok());
                    steps.append(", snapshot ").append(sinceMs(t0)).append(" ms");
                    // the client that went away during the outage no longer holds w's lock, and a new one takes it
                    // (not merely waits for it: a second writer is let in as a waiter under the handover model)
                    c.waitUntil("the gone client's lock of w was released", () -> vmLine(c, "w").contains("not running"));
                    steps.append(", lock released ").append(sinceMs(t0)).append(" ms");
                    c.waitUntil("w can be opened over NBD again and its lock taken", () -> {
                        try (Socket s = open(c.node(2).nbdPort(), "w")) {
                            String line = vmLine(c, "w");
                            return line.contains("running on") && !line.contains("not running") && !line.contains("waiting");
                        } catch (Exception e) {
                            return false;
                        }
                    });
                    resumedMs = sinceMs(t0);
                    steps.append(", reopened ").append(resumedMs).append(" ms");
                    KillRestartIT.log("ZooKeeper outage of " + outageSeconds + " s: cluster operations worked again "
                            + resumedMs + " ms after its return");
                    assertTrue(writer.awaitAcks(300, 60), "writes go on after the outage");
                } finally {
                    writer.close();
                }
                c.waitForRecovery();
                CheckedNbdWriter.Verification v = writer.verifyThrough(c.node(0).nbdPort(), c.node(1).nbdPort());
                String fig = String.format("ZOOKEEPER OUTAGE %d s (session timeout %d ms): acknowledged %d, lost %d, "
                        + "mismatched %d, error replies %s, longest stall %d ms, cluster operations back after %d ms (%s)",
                        outageSeconds, sessionTimeoutMs, writer.acknowledged(), v.lost(), v.mismatched(),
                        writer.errorReplies(), writer.longestStallMs(), resumedMs, steps);
                CheckedNbdWriter.record(fig);
                v.assertClean();
                assertEquals(0L, writer.errorReplyCount(), "no error reply: " + fig);
                assertTrue(resumedMs < BACK_WITHIN_MS, fig);
            }
        }
    }

    /**
     * A node dies (kill -9) while ZooKeeper is away: nobody can evict it until ZooKeeper is back, and a member that
     * answers no heartbeat ends the lease (it could evict this node meanwhile), so writes wait; no error reply, and
     * they go on within seconds of ZooKeeper's return, once the dead node is out. Every acknowledged block reads back
     * through two nodes, and through the dead one after its restart and recovery.
     */
    @org.junit.jupiter.api.Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void aNodeThatDiesWhileZooKeeperIsAwayIsEvictedOnceItIsBack() throws Exception {
        Path tmp = Files.createTempDirectory("sdit-zkdead-");
        try (ZooKeeperServerProcess zk = new ZooKeeperServerProcess(tmp.resolve("zk"))) {
            zk.start();
            try (MiniCluster c = MiniCluster.builder().name("zkdead").nodes(4).copies(3).sync(true)
                    .driver("zookeeper:" + zk.address()).build().start()) {
                c.dog("vdi", "create", "v", "32M").assertOk();
                CheckedNbdWriter writer = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(c.node(0).nbdPort()), 8,
                        c.dir().resolve("acks.log")).start(44);
                long backMs;
                try {
                    assertTrue(writer.awaitAcks(300, 60), "the writer got going");
                    zk.kill();
                    Thread.sleep(2000);
                    c.node(3).kill9();
                    Thread.sleep(8000);
                    zk.start();
                    long t0 = System.nanoTime();
                    assertTrue(writer.awaitAcks(300, 60), "writes go on once ZooKeeper is back: " + writer.progress());
                    backMs = sinceMs(t0);
                    c.waitForNodes(3);
                } finally {
                    writer.close();
                }
                c.node(3).start();
                c.waitForNodes(4);
                c.waitForRecovery();
                CheckedNbdWriter.Verification v = writer.verifyThrough(c.node(1).nbdPort(), c.node(3).nbdPort());
                String fig = String.format("ZOOKEEPER OUTAGE 10 s with a node killed 2 s into it: acknowledged %d, lost %d, "
                        + "mismatched %d, error replies %s, longest stall %d ms, writes again %d ms after ZooKeeper's return",
                        writer.acknowledged(), v.lost(), v.mismatched(), writer.errorReplies(), writer.longestStallMs(), backMs);
                CheckedNbdWriter.record(fig);
                v.assertClean();
                assertEquals(0L, writer.errorReplyCount(), "no error reply: " + fig);
                assertTrue(backMs < BACK_WITHIN_MS, fig);
            }
        }
    }

    /** With ZooKeeper gone, SIGTERM still stops every sheep within seconds (it does not wait out the session). */
    @org.junit.jupiter.api.Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void sigtermStopsASheepWhoseZooKeeperIsGone() throws Exception {
        Path tmp = Files.createTempDirectory("sdit-zkterm-");
        try (ZooKeeperServerProcess zk = new ZooKeeperServerProcess(tmp.resolve("zk"))) {
            zk.start();
            try (MiniCluster c = MiniCluster.builder().name("zkterm").nodes(3).copies(3).nbd(false)
                    .driver("zookeeper:" + zk.address()).build().start()) {
                c.dog("vdi", "create", "v", "16M").assertOk();
                zk.kill();
                c.waitUntil("every node misses ZooKeeper", () -> c.liveNodes().stream()
                        .allMatch(n -> c.dogAt(n, null, "cluster", "info").stdout().contains("Cluster driver error")));
                for (SheepNode n : c.nodes()) {
                    long t0 = System.nanoTime();
                    n.stop();
                    long ms = (System.nanoTime() - t0) / 1_000_000;
                    KillRestartIT.log(n + " stopped " + ms + " ms after SIGTERM with ZooKeeper gone");
                    assertTrue(ms < 12_000, n + " took " + ms + " ms to stop");
                }
            }
        }
    }

    private static long sinceMs(long t0) { return (System.nanoTime() - t0) / 1_000_000; }

    /** The line of {@code dog vm list} for {@code vdi}. */
    static String vmLine(MiniCluster c, String vdi) {
        for (String l : c.dog("vm", "list").assertOk().stdout().split("\n")) if (l.startsWith(vdi + " ")) return l;
        throw new AssertionError("no line for " + vdi + " in dog vm list");
    }

    /** An NBD client that opened {@code export} (and so holds its VDI lock until the socket closes). */
    static Socket open(int port, String export) throws Exception {
        Socket s = new Socket();
        try {
            s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
            s.setSoTimeout(15_000);
            CheckedNbdWriter.handshake(new DataInputStream(s.getInputStream()), new DataOutputStream(s.getOutputStream()), export);
            return s;
        } catch (Exception e) {
            s.close();
            throw e;
        }
    }
}
