package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Nodes with several disks ({@code sheep STORE,DISK1,DISK2,DISK3}), each disk a real ext4 file system on its own loop
 * device ({@link LoopDisks}). Checked writers ({@link CheckedNbdWriter}: per-block offset, sequence and checksum, an
 * acknowledgement log written after each reply) run on a replicated and an erasure-coded VDI while:
 * <ul>
 *   <li>one disk of every node fails in turn, each a different way: its file system shut down (EIO from then on),
 *       every file on it removed ({@code rm -rf} while the sheep has them open), unmounted ({@code umount -l}). The
 *       node stays in the cluster, takes a failed disk out (or, when only the files went, keeps the disk) and
 *       recovers what it lost from the other copies and strips; no client sees an error, every acknowledged block
 *       reads back through every node, and {@code cluster check} is clean;</li>
 *   <li>a node whose last disk fails leaves the cluster, and the others restore what it held;</li>
 *   <li>{@code dog node md plug} and {@code unplug} change a node's disks: objects move onto the new disk and off the
 *       removed one (counted file by file on the disks), while the writers go on.</li>
 * </ul>
 */
@ExtendWith(MiniClusterExtension.class)
class MultiDiskIT {
    private static final long MiB = 1 << 20;

    private static List<Integer> nbdPorts(MiniCluster c) {
        List<Integer> out = new ArrayList<>();
        for (SheepNode n : c.liveNodes()) out.add(n.nbdPort());
        return out;
    }

    @Test
    @Timeout(value = 8, unit = TimeUnit.MINUTES)
    void aDiskOfEveryNodeFailsInTurnAndNoAcknowledgedWriteIsLost() throws Exception {
        try (LoopDisks loop = new LoopDisks("mdfail")) {
            List<List<Path>> disks = new ArrayList<>();
            for (int i = 0; i < 3; i++) disks.add(loop.add(3, 192));
            try (MiniCluster c = MiniCluster.builder().name("mdfail").nodes(3).copies(3).sync(true)
                    .disks(disks::get).build().start()) {
                String info = c.dog("node", "md", "info").assertOk().stdout();
                assertEquals(4, info.lines().count(), "a header and 3 disks:\n" + info);
                for (Path d : disks.get(0)) assertTrue(info.contains(d.toString()), info);

                c.dog("vdi", "create", "r", "128M").assertOk();
                c.dog("vdi", "create", "-c", "2:1", "e", "64M").assertOk();
                CheckedNbdWriter rw = new CheckedNbdWriter("r", 128 * MiB, () -> nbdPorts(c), 8, c.dir().resolve("acks-r.log")).start(31);
                CheckedNbdWriter ew = new CheckedNbdWriter("e", 64 * MiB, () -> nbdPorts(c), 8, c.dir().resolve("acks-e.log")).start(32);
                StringBuilder steps = new StringBuilder();
                Path removedAndBack = null;
                List<Path> failed = new ArrayList<>();
                try {
                    // random blocks: by then nearly every object of both VDIs exists, on every disk
                    assertTrue(rw.awaitAcks(1500, 90) && ew.awaitAcks(800, 90), "the writers got going");
                    for (int i = 0; i < 3; i++) {
                        SheepNode n = c.node(i);
                        // the disk of the node that holds the most objects: the disk ring puts a disk's share at
                        // about 12 points hashed from its path, a random temporary directory here, so a given disk
                        // can hold almost nothing (one run met a disk with 1 object of the node's 48)
                        Path failing = mostObjects(disks.get(i));
                        failed.add(failing);
                        long held = LoopDisks.objectFiles(failing);
                        assertTrue(held > 3, "the disk to fail holds objects: " + held);
                        long t0 = System.nanoTime();
                        String how;
                        boolean diskGoes = true;
                        switch (i) {
                            case 0 -> {
                                loop.fail(failing);
                                how = "EIO (file system shut down)";
                            }
                            case 1 -> {
                                // on a loop disk the mount point stays and works: the node brings the files back
                                loop.removeAll(failing);
                                diskGoes = !loop.kind().startsWith("ext4");
                                how = diskGoes ? "directory removed" : "every file removed (rm -rf)";
                            }
                            default -> how = loop.unmount(failing) ? "unmounted (umount -l)" : "directory replaced";
                        }
                        if (diskGoes) {
                            c.waitUntil("node " + i + " took its failed disk out", () -> n.logTail(400).contains("disk " + failing + " failed"));
                        } else {
                            c.waitUntil("node " + i + " brought back the removed objects", () -> {
                                try {
                                    return LoopDisks.objectFiles(failing) >= held;
                                } catch (java.io.IOException e) {
                                    return false;
                                }
                            });
                        }
                        long outMs = (System.nanoTime() - t0) / 1_000_000;
                        c.waitForRecovery();
                        assertTrue(rw.awaitAcks(300, 60) && ew.awaitAcks(200, 60), "writes go on after node " + i + " lost a disk");
                        assertTrue(n.isAlive(), "a node that lost one disk of three stays: " + n.logTail(30));
                        String md = c.dogAt(n, null, "node", "md", "info").assertOk().stdout();
                        assertEquals(diskGoes ? 3 : 4, md.lines().count(), (diskGoes ? "two disks left:\n" : "three disks:\n") + md);
                        assertEquals(!diskGoes, md.contains(failing.toString()), md);
                        steps.append(String.format("node %d: %s on a disk with %d object files, %s after %d ms; ", i, how, held,
                                diskGoes ? "disk out" : "objects back", outMs));
                        if (!diskGoes) removedAndBack = failing;
                    }
                    assertEquals(3, c.nodeList(c.node(0)).size(), "no node left the cluster");
                } finally {
                    rw.close();
                    ew.close();
                }
                c.waitForRecovery();
                CheckedNbdWriter.Verification vr = rw.verifyThrough(c.node(0).nbdPort(), c.node(1).nbdPort(), c.node(2).nbdPort());
                CheckedNbdWriter.Verification ve = ew.verifyThrough(c.node(0).nbdPort(), c.node(1).nbdPort(), c.node(2).nbdPort());
                String fig = String.format("MULTI-DISK (3 nodes x 3 " + loop.kind() + " disks, one disk per node failing in turn): "
                        + "copies=3: acknowledged %d, lost %d, mismatched %d, error replies %s, longest stall %d ms; "
                        + "2:1: acknowledged %d, lost %d, mismatched %d, error replies %s, longest stall %d ms; %s",
                        rw.acknowledged(), vr.lost(), vr.mismatched(), rw.errorReplies(), rw.longestStallMs(),
                        ew.acknowledged(), ve.lost(), ve.mismatched(), ew.errorReplies(), ew.longestStallMs(), steps);
                CheckedNbdWriter.record(fig);
                vr.assertClean();
                ve.assertClean();
                assertEquals(0L, rw.errorReplyCount(), "no error reply: " + fig);
                assertEquals(0L, ew.errorReplyCount(), "no error reply: " + fig);
                c.dog("cluster", "check").assertOk();
                // every copy is on a disk that works: the failed disks hold nothing any node reads any more
                for (int i = 0; i < 3; i++) {
                    long onWorking = 0;
                    for (Path d : disks.get(i)) {
                        if (!failed.contains(d) || d.equals(removedAndBack)) onWorking += LoopDisks.objectFiles(d);
                    }
                    assertTrue(onWorking > 0, "node " + i + " holds its objects on its working disks");
                }
            }
        }
    }

    /** Of {@code disks}, the one with the most object files. */
    private static Path mostObjects(List<Path> disks) throws IOException {
        Path best = disks.get(0);
        long most = -1;
        for (Path d : disks) {
            long n = LoopDisks.objectFiles(d);
            if (n > most) {
                most = n;
                best = d;
            }
        }
        return best;
    }

    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void plugAndUnplugMoveObjectsWhileWritesGoOn() throws Exception {
        try (LoopDisks loop = new LoopDisks("mdplug")) {
            List<List<Path>> disks = new ArrayList<>();
            for (int i = 0; i < 3; i++) disks.add(loop.add(2, 512));
            Path extra = loop.add(512);
            try (MiniCluster c = MiniCluster.builder().name("mdplug").nodes(3).copies(2).sync(true)
                    .disks(disks::get).build().start()) {
                c.dog("vdi", "create", "v", "256M").assertOk();
                CheckedNbdWriter w = new CheckedNbdWriter("v", 256 * MiB, () -> nbdPorts(c), 8, c.dir().resolve("acks.log")).start(41);
                SheepNode n = c.node(0);
                String plugged, unplugged;
                try {
                    assertTrue(w.awaitAcks(2500, 120), "the writer got going (nearly every object exists)");
                    long before = LoopDisks.objectFiles(disks.get(0).get(0)) + LoopDisks.objectFiles(disks.get(0).get(1));
                    assertTrue(before > 0, "node 0 holds objects");
                    c.dogAt(n, null, "node", "md", "plug", "-f", extra.toString()).assertOk();
                    c.waitUntil("objects moved onto the plugged disk", () -> {
                        try {
                            return LoopDisks.objectFiles(extra) > 0;
                        } catch (java.io.IOException e) {
                            return false;
                        }
                    });
                    String info = c.dogAt(n, null, "node", "md", "info").assertOk().stdout();
                    assertTrue(info.contains(extra.toString()) && info.lines().count() == 4, info);
                    c.waitUntil("the plugged disk took its share", () -> {
                        try {
                            return LoopDisks.objectFiles(extra) >= before / 6;
                        } catch (java.io.IOException e) {
                            return false;
                        }
                    });
                    plugged = "plug: " + LoopDisks.objectFiles(extra) + " object files moved onto the new disk (node 0 held " + before + ")";
                    assertTrue(w.awaitAcks(300, 60), "writes go on after the plug");

                    Path leaving = disks.get(0).get(0);
                    long had = LoopDisks.objectFiles(leaving);
                    assertTrue(had > 3, "the disk to unplug holds objects: " + had);
                    c.dogAt(n, null, "node", "md", "unplug", "-f", leaving.toString()).assertOk();
                    assertEquals(0, LoopDisks.objectFiles(leaving), "nothing left on the unplugged disk");
                    info = c.dogAt(n, null, "node", "md", "info").assertOk().stdout();
                    assertTrue(!info.contains(leaving.toString()) && info.lines().count() == 3, info);
                    unplugged = "unplug: " + had + " object files moved off";
                    assertTrue(w.awaitAcks(300, 60), "writes go on after the unplug");

                    // what cannot be done is refused, and changes nothing
                    CommandResult bad = c.dogAt(n, null, "node", "md", "unplug", "-f", "/nonexistent/disk");
                    assertEquals(1, bad.exitCode(), bad.toString());
                    assertTrue(bad.stderr().contains("Failed to execute request"), bad.stderr());
                    CommandResult all = c.dogAt(n, null, "node", "md", "unplug", "-f",
                            disks.get(0).get(1) + "," + extra);
                    assertEquals(1, all.exitCode(), "the last disks cannot go: " + all);
                } finally {
                    w.close();
                }
                CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(1).nbdPort(), c.node(2).nbdPort());
                String fig = String.format("MULTI-DISK plug/unplug under load (" + loop.kind() + " disks): acknowledged %d, lost %d, mismatched %d, "
                        + "error replies %s, longest stall %d ms; %s; %s", w.acknowledged(), v.lost(), v.mismatched(),
                        w.errorReplies(), w.longestStallMs(), plugged, unplugged);
                CheckedNbdWriter.record(fig);
                v.assertClean();
                assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
                c.dog("cluster", "check").assertOk();
            }
        }
    }

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aNodeWhoseLastDiskFailsLeavesTheCluster() throws Exception {
        try (LoopDisks loop = new LoopDisks("mdlast")) {
            List<List<Path>> disks = new ArrayList<>();
            for (int i = 0; i < 4; i++) disks.add(loop.add(2, 256));
            try (MiniCluster c = MiniCluster.builder().name("mdlast").nodes(4).copies(3).sync(true)
                    .disks(disks::get).build().start()) {
                c.dog("vdi", "create", "v", "64M").assertOk();
                CheckedNbdWriter w = new CheckedNbdWriter("v", 64 * MiB, () -> List.of(c.node(0).nbdPort(), c.node(1).nbdPort()),
                        8, c.dir().resolve("acks.log")).start(51);
                SheepNode n = c.node(3);
                try {
                    assertTrue(w.awaitAcks(800, 60), "the writer got going");
                    loop.fail(disks.get(3).get(0));
                    c.waitUntil("node 3 took its first failed disk out", () -> n.logTail(400).contains("disk " + disks.get(3).get(0) + " failed"));
                    c.waitForRecovery();
                    assertTrue(n.isAlive(), "one disk of two failed: the node stays");
                    assertTrue(w.awaitAcks(300, 60), "writes go on");
                    loop.fail(disks.get(3).get(1));
                    c.waitUntil("the node whose last disk failed is out of the cluster", () -> !n.isAlive());
                    assertTrue(n.logTail(200).contains("the store failed"), n.logTail(40));
                    c.waitForNodes(3);
                    assertTrue(w.awaitAcks(300, 60), "writes go on without it");
                } finally {
                    w.close();
                }
                c.waitForRecovery();
                CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(1).nbdPort(), c.node(2).nbdPort());
                String fig = String.format("MULTI-DISK last disk of a node fails (" + loop.kind() + " disks): acknowledged %d, "
                        + "lost %d, mismatched %d, error replies %s, longest stall %d ms", w.acknowledged(), v.lost(),
                        v.mismatched(), w.errorReplies(), w.longestStallMs());
                CheckedNbdWriter.record(fig);
                v.assertClean();
                assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
                c.dog("cluster", "check").assertOk();
            }
        }
    }
}
