package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A power cut under a checked writer: every node's whole store is on an ext4 loop disk of its own; at once every sheep
 * is killed with -9 and every disk loses what had not reached it ({@link LoopDisks#powerLoss}: the file system shut
 * down without a flush, its running journal transaction aborted, its dirty pages dropped; then mounted again). Unlike
 * a kill -9 alone, which leaves the page cache to the kernel, this takes every write that was not synced, and every
 * rename and directory entry not yet in the journal: a write acknowledged before it was durable on every copy, an
 * object created without its directory synced, an epoch or a VDI's table not synced, would be lost here. Then every
 * node is started again: the cluster must come back by itself, writes must go on, and every acknowledged block must
 * read back (through two nodes), the VDI and the cluster check clean.
 */
@ExtendWith(MiniClusterExtension.class)
class PowerLossIT {
    private static final long MiB = 1 << 20;

    /**
     * copies=3; a 2:1 erasure code (strips with versions and undo slots); copies=3 through the write journal; and
     * copies=3 with the power cut of one node only (node 2), while the writes go on through node 0: it comes back
     * with what its disk kept and must catch up with what it missed.
     */
    @ParameterizedTest(name = "redundancy {0}")
    @ValueSource(strings = {"3", "2:1", "3 journal", "3 one-node"})
    @org.junit.jupiter.api.Timeout(value = 10, unit = TimeUnit.MINUTES)
    void everyAcknowledgedWriteOutlivesAPowerCutOfEveryNode(String redundancy) throws Exception {
        boolean ec = redundancy.contains(":");
        boolean journal = redundancy.endsWith("journal");
        boolean oneNode = redundancy.endsWith("one-node");
        redundancy = redundancy.split(" ")[0];
        int nodes = 3;
        try (LoopDisks loop = new LoopDisks("power")) {
            MiniCluster built = MiniCluster.builder().name("power-" + (ec ? "ec" : journal ? "journal" : oneNode ? "one" : "3")).nodes(nodes).copies(3)
                    .sync(true).sheepArgs(journal ? new String[] {"--journal", "8M"} : new String[0]).build();
            List<Path> disks = new ArrayList<>();
            for (int i = 0; i < nodes; i++) disks.add(loop.mountAt(built.node(i).storeDir(), 256));
            Tools.requireUnderCi(loop.kind().startsWith("ext4"), "loop devices (root) to cut a file system's power");
            try (MiniCluster c = built.start()) {
                if (ec) c.dog("vdi", "create", "-c", redundancy, "v", "64M").assertOk();
                else c.dog("vdi", "create", "v", "64M").assertOk();
                long seed = System.nanoTime();
                KillRestartIT.log("[power] seed " + seed);
                // a new VDI: the writer's first pass creates its objects (files, renames, the VDI's table) under the cut
                CheckedNbdWriter w = new CheckedNbdWriter("v", 64 * MiB, () -> List.of(c.node(0).nbdPort()), 8,
                        c.dir().resolve("acks.log")).start(seed);
                long beforeCut;
                try {
                    assertTrue(w.awaitAcks(1500 + new java.util.SplittableRandom(seed).nextInt(3000), 60), "the writer got going: " + w.progress());
                    List<SheepNode> cut = oneNode ? List.of(c.node(2)) : c.nodes();
                    for (SheepNode n : cut) n.kill9();
                    for (SheepNode n : cut) assertTrue(loop.powerLoss(disks.get(n.index())));
                    beforeCut = w.acknowledged();
                    KillRestartIT.log("[power] cut " + (oneNode ? "node 2" : "every node") + " at " + w.progress());
                    if (oneNode) assertTrue(w.awaitAcks(500, 30), "writes go on without node 2: " + w.progress());
                    else SheepNode.sleep(500);
                    for (SheepNode n : cut) n.start();
                    c.waitForNodes(nodes);
                    c.waitUntilRunning();
                    assertTrue(w.awaitAcks(500, 90), "writes go on once the power is back: " + w.progress());
                } finally {
                    w.close();
                }
                c.waitForRecovery();
                CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(2).nbdPort());
                String fig = String.format("POWER LOSS of %s, redundancy %s%s: acknowledged %d (%d before the cut), lost %d, "
                        + "mismatched %d, error replies %s", oneNode ? "node 2" : "every node", redundancy, journal ? " (write journal)" : "", w.acknowledged(), beforeCut, v.lost(), v.mismatched(),
                        w.errorReplies());
                CheckedNbdWriter.record(fig);
                v.assertClean();
                assertEquals(0L, w.errorReplies().values().stream().mapToLong(Long::longValue).sum(), "no error reply: " + fig);
                c.dog("vdi", "check", "v").assertOk();
                CommandResult check = c.dog("cluster", "check");
                assertEquals(0, check.exitCode(), check.toString());
            }
        }
    }
}
