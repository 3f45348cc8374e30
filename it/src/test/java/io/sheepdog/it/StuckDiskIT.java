package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A node whose object disk hangs while the process runs on: {@code fsfreeze -f} on its ext4 loop disk holds every write
 * and sync there, as a disk or controller that stopped answering does. Its process, sockets, heartbeats and driver
 * session are all fine, so nothing but the disk says it is sick. A {@link CheckedNbdWriter} writes through another node
 * the whole time: its writes must get acknowledgements again within the bound (the node's store check does not end
 * within {@code --disk-timeout}, the node leaves the cluster with status 1, and the writes go on with the other copies),
 * and none may fail. When the disk works again the node is started again and catches up; every acknowledged block is then read back through two nodes (one of them the sick one), and
 * {@code dog cluster check} is clean.
 */
@ExtendWith(MiniClusterExtension.class)
class StuckDiskIT {
    private static final long MiB = 1 << 20;
    /** The daemons' disk timeout here (15 s by default; shorter to keep the suite short: the path is the same). */
    private static final int DISK_TIMEOUT_S = 6;
    /**
     * How long writes may stand still after the disk hangs: up to one pause of the store check (3 s), the disk timeout,
     * the node's leave and the retry.
     */
    private static final long RESUME_BOUND_MS = DISK_TIMEOUT_S * 1000L + 10_000;

    /**
     * {@code 3}: copies=3, each node's whole store (metadata, log, stdout and objects) on its disk, so the sick node's
     * log and epoch files hang too; {@code 2:1}: a 2:1 VDI, each node's objects on a disk of their own
     * ({@code sheep STORE,DISK}) beside a store directory that keeps working; {@code 3} again with the store directory
     * (epoch log, config, log) on the disk that hangs and the objects on a disk of their own that keeps working: the
     * writes never need the store directory, but a node that cannot write its epochs cannot follow the cluster, and
     * the store check probes that directory too.
     */
    @ParameterizedTest(name = "redundancy {0}, {1}")
    @CsvSource({"3, the whole store on the disk", "2:1, the objects on a disk of their own",
            "3, the store directory on a disk of its own"})
    @org.junit.jupiter.api.Timeout(value = 10, unit = TimeUnit.MINUTES)
    void writesGoOnWhileANodesDiskHangs(String redundancy, String layout) throws Exception {
        boolean ec = redundancy.contains(":");
        boolean wholeStore = layout.startsWith("the whole");
        boolean storeDirOnly = layout.startsWith("the store directory");
        try (LoopDisks loop = new LoopDisks("stuck")) {
            int nodes = 4; // with one out, three zones still hold every copy or strip
            MiniCluster.Builder b = MiniCluster.builder().name("stuck-" + (ec ? "ec" : "3")).nodes(nodes).copies(3).sync(true)
                    .sheepArgs("--disk-timeout", String.valueOf(DISK_TIMEOUT_S));
            // a disk of one size for every node: the ring weighs nodes by their space
            List<Path> disks = new java.util.ArrayList<>(); // the disks that hold objects
            List<Path> storeDirs = new java.util.ArrayList<>(); // store directories on disks of their own
            if (!wholeStore) {
                for (int i = 0; i < nodes; i++) disks.add(loop.add(256));
                b.disks(i -> List.of(disks.get(i)));
            }
            MiniCluster built = b.build();
            if (wholeStore) {
                for (int i = 0; i < nodes; i++) disks.add(loop.mountAt(built.node(i).storeDir(), 256));
            }
            if (storeDirOnly) {
                for (int i = 0; i < nodes; i++) storeDirs.add(loop.mountAt(built.node(i).storeDir(), 64));
            }
            Tools.requireUnderCi(loop.kind().startsWith("ext4"), "loop devices (root) to freeze a file system");
            Path disk = storeDirOnly ? storeDirs.get(2) : disks.get(2);
            try (MiniCluster c = built.start()) {
                if (ec) c.dog("vdi", "create", "-c", redundancy, "v", "32M").assertOk();
                else c.dog("vdi", "create", "v", "32M").assertOk();
                CheckedNbdWriter w = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(c.node(0).nbdPort()), 8,
                        c.dir().resolve("acks.log")).start(ec ? 2 : 3);
                long stall, resumedMs, outMs;
                try {
                    assertTrue(w.awaitAcks(300, 60), "the writer got going: " + w.progress());
                    long t0 = System.nanoTime();
                    KillRestartIT.log("[stuck] freezing " + disk + " (" + LoopDisks.objectFiles(wholeStore ? disk.resolve("obj") : disk) + " object files) at " + w.progress());
                    assertTrue(loop.freeze(disk));
                    try {
                        assertTrue(w.awaitAcks(300, (int) (RESUME_BOUND_MS / 1000) + 30),
                                "writes go on while node 2's disk hangs: " + w.progress());
                        resumedMs = (System.nanoTime() - t0) / 1_000_000;
                        KillRestartIT.log("[stuck] writes on after " + resumedMs + " ms: " + w.progress());
                        // the node is taken out while its disk is still stuck (not by the disk coming back), and writes
                        // keep going without it, not just a burst
                        // (polled here: MiniCluster.waitUntil fails at once on a node that exited with status 1)
                        long outBy = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                        while (c.nodeList(c.node(0)).size() != nodes - 1) {
                            assertTrue(System.nanoTime() < outBy, "node 2 is out of the cluster within 60 s of the freeze\n" + c.describe());
                            Thread.sleep(200);
                        }
                        outMs = (System.nanoTime() - t0) / 1_000_000;
                        KillRestartIT.log("[stuck] node 2 out after " + outMs + " ms");
                        Thread.sleep(3000);
                        assertTrue(w.awaitAcks(300, 20), "and keep going: " + w.progress());
                        KillRestartIT.log("[stuck] thawing after " + (System.nanoTime() - t0) / 1_000_000 + " ms: " + w.progress());
                    } finally {
                        loop.thaw(disk);
                    }
                    // it left with status 1, as for a failed store; its process ends once the disk lets its blocked
                    // threads go, and the operator (here: the test) starts it again
                    SheepNode sick = c.node(2);
                    c.waitUntil("the sheep with the hung disk ended", () -> !sick.isAlive());
                    assertEquals(1, sick.exitCode().orElse(-1), "exit status: " + sick.logTail(20));
                    sick.start();
                    c.waitForNodes(nodes);
                    c.waitForRecovery();
                    assertTrue(w.awaitAcks(300, 60), "writes go on once the disk is back: " + w.progress());
                    stall = w.longestStallMs();
                } finally {
                    w.close();
                }
                c.waitForRecovery();
                CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(2).nbdPort());
                String fig = String.format("STUCK DISK (fsfreeze of one node's disk, %s), redundancy %s: acknowledged %d, lost %d, "
                        + "mismatched %d, error replies %s, writes on again %d ms after the freeze, node out after %d ms, longest stall %d ms",
                        layout, redundancy, w.acknowledged(), v.lost(), v.mismatched(), w.errorReplies(), resumedMs, outMs, stall);
                CheckedNbdWriter.record(fig);
                v.assertClean();
                assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
                assertTrue(stall < RESUME_BOUND_MS, "writes stood still for " + stall + " ms: " + fig);
                CommandResult check = c.dog("cluster", "check");
                assertEquals(0, check.exitCode(), check.toString());
            }
        }
    }
}
