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
        try (MiniCluster c = MiniCluster.builder().name("reweight").nodes(3).copies(2).nbd(false).build().start()) {
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
            // as much as the others again, within a vnode: the nodes share one file system here, whose free space
            // moves between the moments each node measures it (a test before this one may still be freeing its files)
            int heavy = c.vnodesOf(c.node(2));
            String list = c.dog("node", "list").stdout();
            assertTrue(heavy > light, "node 2 weighs again: " + list);
            assertTrue(Math.abs(heavy - c.vnodesOf(c.node(0))) <= 1 && Math.abs(heavy - c.vnodesOf(c.node(1))) <= 1,
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
        }
    }
}
