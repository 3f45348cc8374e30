package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.cluster.zookeeper.ZooKeeperServerProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A network partition under the ZooKeeper driver: node 2 runs in a network namespace of its own, joined to this
 * host by a veth pair; nodes 0 and 1 and ZooKeeper run here. Taking the link down cuts node 2 off from everything
 * (its peers and ZooKeeper) while its process runs on. A checked writer through node 0 must get acknowledgements
 * again within 10 s (node 2 is evicted by heartbeat), and when the link comes back node 2 re-joins, recovers, and
 * every acknowledged block reads back through nodes 0 and 1 (and {@code dog cluster check} compares node 2's copies).
 *
 * <p>Needs root (network namespaces); skipped elsewhere, except under CI, where it must run.
 */
@ExtendWith(MiniClusterExtension.class)
class PartitionIT {
    private static final long MiB = 1 << 20;

    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void aPartitionedNodeIsEvictedAndComesBackWhenTheLinkDoes() throws Exception {
        int k = ThreadLocalRandom.current().nextInt(1, 250);
        String ns = "sdpart" + ProcessHandle.current().pid() % 100000;
        String hostSide = "vh" + ns, nsSide = "vn" + ns;
        String hostAddr = "10.231." + k + ".1", nsAddr = "10.231." + k + ".2";
        boolean made = sh("ip", "netns", "add", ns) == 0;
        Tools.requireUnderCi(made, "ip netns add " + ns + " must work (root)");
        Path tmp = Files.createTempDirectory("sdit-part-");
        try {
            assertEquals(0, sh("ip", "link", "add", hostSide, "type", "veth", "peer", "name", nsSide));
            assertEquals(0, sh("ip", "link", "set", nsSide, "netns", ns));
            assertEquals(0, sh("ip", "addr", "add", hostAddr + "/30", "dev", hostSide));
            assertEquals(0, sh("ip", "link", "set", hostSide, "up"));
            assertEquals(0, sh("ip", "netns", "exec", ns, "ip", "addr", "add", nsAddr + "/30", "dev", nsSide));
            assertEquals(0, sh("ip", "netns", "exec", ns, "ip", "link", "set", nsSide, "up"));
            assertEquals(0, sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"));
            try (ZooKeeperServerProcess zk = new ZooKeeperServerProcess(tmp.resolve("zk")).listenOnAllAddresses(hostAddr)) {
                zk.start();
                MiniCluster c = MiniCluster.builder().name("partition").nodes(3).copies(3).sync(true)
                        .driver("zookeeper:" + zk.address()).build();
                c.node(0).placeAt(null, hostAddr);
                c.node(1).placeAt(null, hostAddr);
                c.node(2).placeAt(ns, nsAddr);
                try (c) {
                    c.start();
                    c.dog("vdi", "create", "v", "32M").assertOk();
                    CheckedNbdWriter w = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(c.node(0).nbdPort()), 8,
                            c.dir().resolve("acks.log")).start(k);
                    long resumedMs;
                    try {
                        assertTrue(w.awaitAcks(300, 60), "the writer got going");
                        long t0 = System.nanoTime();
                        assertEquals(0, sh("ip", "link", "set", hostSide, "down"), "cut node 2 off");
                        try {
                            assertTrue(w.awaitAcks(200, 30), "writes resume while node 2 is cut off");
                            resumedMs = (System.nanoTime() - t0) / 1_000_000;
                            c.waitUntil("node 2 is out of the cluster", () -> c.nodeList(c.node(0)).size() == 2);
                            KillRestartIT.log("partition: writes went on " + resumedMs + " ms after node 2 was cut off");
                            Thread.sleep(Math.max(0, 20_000 - (System.nanoTime() - t0) / 1_000_000));
                        } finally {
                            sh("ip", "link", "set", hostSide, "up");
                        }
                        c.waitUntil("node 2 is back in the cluster", () -> c.nodeList(c.node(0)).size() == 3);
                        c.waitForRecovery();
                        assertTrue(w.awaitAcks(200, 60), "writes go on once node 2 is back");
                    } finally {
                        w.close();
                    }
                    c.waitForRecovery();
                    CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(1).nbdPort());
                    String fig = String.format("PARTITION of one node for 20 s (ZooKeeper): acknowledged %d, lost %d, "
                            + "mismatched %d, error replies %s, longest stall %d ms, writes resumed after %d ms",
                            w.acknowledged(), v.lost(), v.mismatched(), w.errorReplies(), w.longestStallMs(), resumedMs);
                    CheckedNbdWriter.record(fig);
                    v.assertClean();
                    assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
                    assertTrue(resumedMs < 10_000, fig);
                    CommandResult check = c.dog("cluster", "check");
                    assertEquals(0, check.exitCode(), check.toString());
                }
            }
        } finally {
            sh("ip", "link", "del", hostSide);
            sh("ip", "netns", "del", ns);
        }
    }

    private static int sh(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor();
    }
}
