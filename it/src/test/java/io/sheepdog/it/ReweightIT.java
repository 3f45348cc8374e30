package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.node.StoreConfig;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@code dog cluster reweight} on three real sheep: a node whose recorded space is far from what its store has gets its
 * measured weight, the cluster moves to a new epoch through the cluster driver's node update, its vnodes follow, the
 * objects move, and nothing is lost.
 */
@ExtendWith(MiniClusterExtension.class)
class ReweightIT {
    private static final int MiB = 1 << 20;

    @Test
    void reweightGivesANodeItsMeasuredSpaceAndMovesObjectsToIt() throws Exception {
        // each node's store on a file system of its own, of one size: what a node measures is its own, not what
        // other tests happen to be writing or freeing on a shared /tmp at that moment
        try (LoopDisks fs = new LoopDisks("reweight");
                MiniCluster c = MiniCluster.builder().name("reweight").nodes(3).copies(2).nbd(false).build()) {
            for (SheepNode n : c.nodes()) fs.mountAt(n.storeDir(), 4096);
            boolean ownFileSystems = !fs.kind().equals("directory");
            try {
                c.start();
                c.dog("vdi", "create", "v", "64M").assertOk();
                byte[] data = new byte[48 * MiB];
                new Random(11).nextBytes(data);
                c.dogWithInput(data, "vdi", "write", "v", "0").assertOk();

                // node 2 comes back believing its disk is 64 MiB: it weighs next to nothing in the ring
                c.node(2).stop();
                c.waitForNodes(2);
                Path cfgFile = c.node(2).storeDir().resolve("config");
                StoreConfig cfg = StoreConfig.load(cfgFile);
                long realSpace = cfg.space;
                cfg.space = 64L * MiB;
                cfg.save(cfgFile);
                c.node(2).start();
                c.waitForNodes(3);
                c.waitForRecovery();
                int light = c.vnodesOf(c.node(2));
                assertTrue(light < c.vnodesOf(c.node(0)), "vnodes follow the recorded space: " + c.dog("node", "list").stdout());
                int epoch = c.epoch(c.node(0));

                c.dog("cluster", "reweight").assertOk();
                c.waitForEpoch(epoch + 1);
                c.waitForRecovery();
                // as much as the others again: equal file systems weigh equally (the sparse inode objects, counted in
                // what a store uses but not in what its file system lost, are 0.1 % of it: less than half a vnode).
                // Directory stores share /tmp, whose free space moves between the moments each node measures it.
                int heavy = c.vnodesOf(c.node(2));
                String list = c.dog("node", "list").stdout();
                int slack = ownFileSystems ? 0 : 1;
                assertTrue(heavy > light, "node 2 weighs again: " + list);
                assertTrue(Math.abs(heavy - c.vnodesOf(c.node(0))) <= slack && Math.abs(heavy - c.vnodesOf(c.node(1))) <= slack,
                        "node 2 weighs as much as the others: " + list);
                assertTrue(Math.abs(StoreConfig.load(cfgFile).space - realSpace) * 100 < realSpace,
                        "the measured space is kept for the next start");

                assertArrayEquals(data, c.dogAt(c.node(2), null, "vdi", "read", "v", "0", Integer.toString(data.length))
                        .assertOk().stdoutBytes());
                assertEquals("finish check&repair v\n", c.dog("vdi", "check", "v").assertOk().stdout());

                // again: nothing changed, so no new epoch
                c.dog("cluster", "reweight").assertOk();
                Thread.sleep(500);
                assertEquals(epoch + 1, c.epoch(c.node(1)));
            } catch (Throwable t) {
                // the stores (and their logs) are unmounted when this method ends, before the extension prints them
                System.err.println(c.describe() + "\n" + c.logTails(60));
                throw t;
            }
        }
    }
}
