package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The corosync daemon crashes (SIGKILL) under a running cluster with a checked writer on it, and comes back 10 s
 * later: every node loses its CPG membership and joins again. Afterwards a VDI create, a snapshot and the lock of a
 * client that went away during the outage must work within 10 s of the daemon's return, the writer must go on, and
 * every acknowledged block must read back.
 */
@ExtendWith(MiniClusterExtension.class)
class CorosyncOutageIT {
    private static final long MiB = 1 << 20;
    private static final long BACK_WITHIN_MS = 10_000;

    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void clusterOperationsWorkSoonAfterCorosyncReturns() throws Exception {
        Path tmp = Files.createTempDirectory("sdit-cpgout-");
        try (DriverServer server = DriverServer.start("corosync", tmp, "")) {
            try (MiniCluster c = MiniCluster.builder().name("cpgout").nodes(3).copies(3).sync(true)
                    .driver(server.spec()).build().start()) {
                c.dog("vdi", "create", "v", "32M").assertOk();
                c.dog("vdi", "create", "w", "16M").assertOk();
                CheckedNbdWriter writer = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(c.node(0).nbdPort()), 8,
                        c.dir().resolve("acks.log")).start(5);
                long resumedMs;
                try {
                    assertTrue(writer.awaitAcks(300, 60), "the writer got going");
                    Socket holder = ZooKeeperOutageIT.open(c.node(1).nbdPort(), "w");
                    assertTrue(ZooKeeperOutageIT.vmLine(c, "w").contains("running on"), "w's lock is held");

                    server.corosync().kill();
                    Thread.sleep(1000);
                    holder.close();
                    Thread.sleep(9000);
                    server.corosync().start();
                    long t0 = System.nanoTime();
                    // a new name each time: a create that failed when the driver connection was lost may still
                    // have been carried out by the cluster, and then "n" exists
                    java.util.concurrent.atomic.AtomicInteger attempt = new java.util.concurrent.atomic.AtomicInteger();
                    c.waitUntil("a VDI can be created again",
                            () -> c.dog("vdi", "create", "n" + attempt.incrementAndGet(), "16M").ok());
                    c.waitUntil("a snapshot can be taken again", () -> c.dog("vdi", "snapshot", "-s", "after", "w").ok());
                    c.waitUntil("the gone client's lock of w was released",
                            () -> ZooKeeperOutageIT.vmLine(c, "w").contains("not running"));
                    resumedMs = (System.nanoTime() - t0) / 1_000_000;
                    KillRestartIT.log("corosync outage of 10 s: cluster operations worked again " + resumedMs
                            + " ms after its return");
                    assertTrue(writer.awaitAcks(300, 60), "writes go on after the outage");
                } finally {
                    writer.close();
                }
                c.waitForRecovery();
                CheckedNbdWriter.Verification v = writer.verifyThrough(c.node(0).nbdPort(), c.node(2).nbdPort());
                String fig = String.format("COROSYNC DAEMON KILLED FOR 10 s: acknowledged %d, lost %d, mismatched %d, "
                        + "error replies %s, longest stall %d ms, cluster operations back after %d ms",
                        writer.acknowledged(), v.lost(), v.mismatched(), writer.errorReplies(), writer.longestStallMs(),
                        resumedMs);
                CheckedNbdWriter.record(fig);
                v.assertClean();
                assertEquals(0L, writer.errorReplyCount(), "no error reply: " + fig);
                assertTrue(resumedMs < BACK_WITHIN_MS, fig);
            }
        }
    }
}
