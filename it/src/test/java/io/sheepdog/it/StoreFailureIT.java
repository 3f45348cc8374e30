package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A node whose store fails (here its {@code obj/} directory disappears under it, as when a disk dies or is unmounted)
 * leaves the cluster, as the original's node does, instead of staying and answering every request with an I/O
 * error: the others restore the copies it held while a {@link CheckedNbdWriter} goes on through another node, with no
 * error reply, and every acknowledged block reads back through the nodes left.
 */
@ExtendWith(MiniClusterExtension.class)
class StoreFailureIT {
    private static final long MiB = 1 << 20;

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aNodeWhoseStoreFailsLeavesAndNoWriteFails() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("storefail").nodes(4).copies(3).sync(true).build().start()) {
            c.dog("vdi", "create", "v", "32M").assertOk();
            CheckedNbdWriter w = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(c.node(0).nbdPort()), 8,
                    c.dir().resolve("acks.log")).start(77);
            SheepNode failing = c.node(2);
            try {
                assertTrue(w.awaitAcks(300, 60), "the writer got going");
                long t0 = System.nanoTime();
                // gone at once, as under an unmount (a recursive delete races with the files the sheep creates)
                Files.move(failing.storeDir().resolve("obj"), failing.storeDir().resolve("obj.gone"));
                c.waitUntil("the node whose store failed is out of the cluster", () -> !failing.isAlive());
                long goneMs = (System.nanoTime() - t0) / 1_000_000;
                assertEquals(1, failing.exitCode().orElse(-1), "it stops with status 1: " + failing.logTail(20));
                assertTrue(failing.logTail(200).contains("the store failed"), failing.logTail(40));
                c.waitForNodes(3);
                assertTrue(w.awaitAcks(300, 60), "writes go on without it");
                KillRestartIT.log("store failure: the node left " + goneMs + " ms after its obj/ vanished");
            } finally {
                w.close();
            }
            c.waitForRecovery();
            CheckedNbdWriter.Verification v = w.verifyThrough(c.node(1).nbdPort(), c.node(3).nbdPort());
            String fig = String.format("STORE FAILURE (obj/ removed under a node): acknowledged %d, lost %d, mismatched %d, "
                    + "error replies %s, longest stall %d ms", w.acknowledged(), v.lost(), v.mismatched(), w.errorReplies(),
                    w.longestStallMs());
            CheckedNbdWriter.record(fig);
            v.assertClean();
            assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
            c.dog("cluster", "check").assertOk();
        }
    }
}
