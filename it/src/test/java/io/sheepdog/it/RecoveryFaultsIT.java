package io.sheepdog.it;

import static io.sheepdog.it.KillRestartIT.log;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.VnodeRing;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Recovery under faults, on real processes with a client writing all the time ({@link VerifyingWriter}): a node
 * killed while another one recovers from it, two of three nodes killed at once, a fourth node joining, zones. Each
 * test ends with every acknowledged write read back through every node, the object files checked against the
 * placement, and a {@code dog cluster check} that finds nothing to repair.
 */
@ExtendWith(MiniClusterExtension.class)
class RecoveryFaultsIT {
    private static final long MiB = 1 << 20;
    private static final long OBJECT_SIZE = 4 * MiB;

    /**
     * {@code dog cluster recover disable} holds a returning node's recovery (and {@code dog node recovery} shows it
     * waiting), {@code enable} lets it run (progress visible), and killing its source node in the middle loses
     * nothing: the recovery starts over for the new membership with the copies that are left.
     */
    @Test
    void killDuringRecoveryWithRecoveryDisabledThenEnabled() throws Exception {
        long size = 128 * MiB;
        try (MiniCluster c = MiniCluster.builder().name("killinrecovery").nodes(3).copies(3).sync(true).nbd(false)
                .build().start()) {
            c.dog("vdi", "create", "vol", "128M").assertOk();
            VerifyingWriter w = new VerifyingWriter(c, "vol", size, OBJECT_SIZE).start(2, 11L);
            try {
                w.awaitProgress(60);
                SheepNode returning = c.node(2), source = c.node(1);
                returning.kill9();
                c.waitForNodes(2);
                w.awaitProgress(10);

                CommandResult off = c.dogAt(c.node(0), null, "cluster", "recover", "disable").assertOk();
                assertTrue(off.stdout().contains("Cluster recovery: disable"), off.toString());
                w.pause();
                returning.start();
                c.waitForNodes(3);
                // the returning node prepared its list but fetches nothing while recovery is disabled
                // (a recovery reports 0 of 0 until it has gathered the members' object lists)
                c.waitUntil("node 2 reports the objects it has to recover", () -> {
                    long[] p = c.recoveryProgress(returning);
                    return p != null && p[1] > 0;
                });
                long[] held = c.recoveryProgress(returning);
                assertTrue(held[1] > 0, "node 2 has objects to recover: " + Arrays.toString(held));
                SheepNode.sleep(1500);
                long[] still = c.recoveryProgress(returning);
                assertNotNull(still, "recovery is still pending while disabled");
                assertEquals(held[0], still[0], "nothing was recovered while recovery was disabled");
                CommandResult info = c.dog("node", "recovery").assertOk();
                assertTrue(info.stdout().contains("Nodes In Recovery") && info.stdout().contains(returning.address()),
                        "dog node recovery lists the waiting node: " + info);

                // slow it down so that the kill lands in the middle: one object per 150 ms
                c.dogAt(returning, null, "node", "recovery", "set-throttle", "1", "150").assertOk();
                CommandResult on = c.dog("cluster", "recover", "enable").assertOk();
                assertTrue(on.stdout().contains("Cluster recovery: enable"), on.toString());
                w.resume();
                c.waitUntil("node 2 recovered some objects", () -> {
                    long[] p = c.recoveryProgress(returning);
                    return p != null && p[0] > 0;
                });
                long[] mid = c.recoveryProgress(returning);
                assertNotNull(mid, "node 2 is still recovering");
                assertTrue(mid[0] < mid[1], "the kill lands in the middle of the recovery: " + Arrays.toString(mid));
                CommandResult progress = c.dog("node", "recovery").assertOk();
                assertTrue(progress.stdout().contains(returning.address()), "dog node recovery shows the progress: " + progress);
                log("node 2 recovery at " + Arrays.toString(mid) + ", killing node 1; dog node recovery:\n" + progress.stdout());

                source.kill9();
                c.waitForNodes(2);
                w.awaitProgress(10); // I/O goes on while node 2 recovers from node 0 alone
                c.dogAt(returning, null, "node", "recovery", "set-throttle", "0", "0").assertOk();
                source.start();
                c.waitForNodes(3);
                w.awaitProgress(10);
            } finally {
                w.stop();
                log("writer stopped: " + w.summary());
            }
            verifyAll(c, w);
        }
    }

    /** Two of three copies gone at once: I/O goes on with one copy, and the three copies come back with the nodes. */
    @Test
    void twoOfThreeNodesKilledAtOnce() throws Exception {
        long size = 64 * MiB;
        try (MiniCluster c = MiniCluster.builder().name("twokilled").nodes(3).copies(3).sync(true).nbd(false)
                .build().start()) {
            c.dog("vdi", "create", "vol", "64M").assertOk();
            VerifyingWriter w = new VerifyingWriter(c, "vol", size, OBJECT_SIZE).start(2, 22L);
            try {
                w.awaitProgress(30);
                c.node(1).kill9();
                c.node(2).kill9();
                c.waitForNodes(1);
                w.awaitProgress(20); // one copy left: writes are still acknowledged
                c.node(1).start();
                c.node(2).start();
                c.waitForNodes(3);
                w.awaitProgress(20);
            } finally {
                w.stop();
                log("writer stopped: " + w.summary());
            }
            verifyAll(c, w); // includes: all three copies of every object are on disk again
        }
    }

    /**
     * Zones: with two nodes in zone 0 and copies=2, no object has both copies in zone 0. A fourth node (zone 2)
     * joins while the client writes and takes its share of the objects; the placement holds again afterwards.
     */
    @Test
    void zonesNeverHoldTwoCopiesAndAFourthNodeTakesItsShare() throws Exception {
        long size = 128 * MiB;
        try (MiniCluster c = MiniCluster.builder().name("zones").nodes(3).zones(0, 0, 1).copies(2).nbd(false)
                .build().start()) {
            c.dog("vdi", "create", "vol", "128M").assertOk();
            VerifyingWriter w = new VerifyingWriter(c, "vol", size, OBJECT_SIZE).start(2, 33L);
            SheepNode added;
            try {
                w.awaitProgress(60);
                w.pause();
                c.waitForRecovery();
                assertZonesApart(c, StoredObjects.inode(c, c.node(0), "vol"));
                w.resume();
                added = c.addNode(2);
                c.waitForNodes(4);
                w.awaitProgress(30); // I/O goes on while the new node fills up
            } finally {
                w.stop();
                log("writer stopped: " + w.summary());
            }
            verifyAll(c, w);
            Inode inode = StoredObjects.inode(c, c.node(0), "vol");
            assertZonesApart(c, inode);
            // its share: every object the ring gives it (verifyAll checked each one), and that is a real part
            VnodeRing ring = StoredObjects.ring(c, c.node(0));
            int mine = 0, all = 0;
            for (int i = 0; i < inode.objectCount(); i++) {
                if (inode.dataVdiId[i] == 0) continue;
                all++;
                long oid = Oids.dataOid(inode.dataVdiId[i], i);
                if (Files.exists(StoredObjects.file(added, oid))) mine++;
            }
            log("the added node holds " + mine + " of " + all + " data objects");
            assertTrue(mine > 0 && mine < all, "the fourth node holds a share of the objects: " + mine + " of " + all);
            assertEquals(3, ring.nrZones());
        }
    }

    /** No object has two copies on nodes of the same zone (checked on the object files). */
    static void assertZonesApart(MiniCluster c, Inode inode) {
        List<String> bad = new ArrayList<>();
        int checked = 0;
        for (int i = 0; i < inode.objectCount(); i++) {
            if (inode.dataVdiId[i] == 0) continue;
            long oid = Oids.dataOid(inode.dataVdiId[i], i);
            List<Long> zones = new ArrayList<>();
            for (SheepNode n : c.liveNodes()) {
                if (Files.exists(StoredObjects.file(n, oid))) zones.add(n.zone());
            }
            checked++;
            if (zones.stream().distinct().count() != zones.size()) bad.add(Oids.fileName(oid) + " in zones " + zones);
        }
        assertTrue(checked > 0, "the VDI has objects");
        assertEquals(List.of(), VerifyingWriter.firstFew(bad), "objects with two copies in one zone");
    }

    /** Everything acknowledged is there: through every node, in the object files, and dog cluster check agrees. */
    static void verifyAll(MiniCluster c, VerifyingWriter w) throws Exception {
        assertEquals(List.of(), w.errors(), "the writer threads ended with errors");
        assertEquals(List.of(), VerifyingWriter.firstFew(w.problems()), "read-backs during the run");
        c.waitForRecovery();
        for (SheepNode n : c.liveNodes()) {
            assertEquals(List.of(), VerifyingWriter.firstFew(w.verifyThrough(n)), "data read through " + n);
        }
        Inode inode = StoredObjects.inode(c, c.node(0), "vol");
        assertEquals(List.of(), VerifyingWriter.firstFew(StoredObjects.check(c, c.node(0), inode, w::expectedObject)),
                "object files on disk");
        KillRestartIT.assertCleanCheck(c.dog("cluster", "check").assertOk());
        for (SheepNode n : c.liveNodes()) assertNull(c.recoveryProgress(n), n + " still recovers");
    }
}
