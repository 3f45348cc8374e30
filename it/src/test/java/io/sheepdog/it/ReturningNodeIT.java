package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A node that comes back after a crash gets its unchanged objects back from its own stale copies, checked against
 * a live copy's SHA-1 (docs/daemon.md §7 step 3), and fetches only what changed while it was away.
 */
@ExtendWith(MiniClusterExtension.class)
class ReturningNodeIT {
    private static final int MiB = 1 << 20;
    private static final int PEER_READ = 3; // column of `dog node stat -r`'s Peer line: Active Total Write Read ...

    @Test
    void unchangedObjectsComeBackWithoutBeingFetched() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("returning").nodes(3).copies(3).nbd(false).build().start()) {
            c.dog("vdi", "create", "v", "48M").assertOk();
            byte[] data = new byte[40 * MiB];
            new Random(21).nextBytes(data);
            c.dogWithInput(data, "vdi", "write", "v", "0").assertOk();   // the inode and 10 data objects, 3 copies

            c.node(2).kill9();
            c.waitForNodes(2);
            c.waitForRecovery();
            byte[] change = new byte[4096];
            new Random(22).nextBytes(change);
            c.dogWithInput(change, "vdi", "write", "v", "8192").assertOk(); // object 0 changes while node 2 is away
            System.arraycopy(change, 0, data, 8192, change.length);
            long before = peerReads(c, 0) + peerReads(c, 1);

            c.node(2).start();
            c.waitForNodes(3);
            c.waitForRecovery();
            long fetched = peerReads(c, 0) + peerReads(c, 1) - before;
            assertTrue(fetched >= 1 && fetched <= 2, "only the changed object is read from the others: " + fetched);
            assertTrue(c.node(2).logContains("objects, 10 of them local copies checked by hash"), "node 2's log:\n"
                    + Files.readString(c.node(2).storeDir().resolve("sheep.log")).lines().filter(l -> l.contains("recovery")).toList());

            assertArrayEquals(data, c.dogAt(c.node(2), null, "vdi", "read", "v", "0", Integer.toString(data.length))
                    .assertOk().stdoutBytes());
            assertEquals("finish check&repair v\n", c.dog("vdi", "check", "v").assertOk().stdout());
        }
    }

    private static long peerReads(MiniCluster c, int node) {
        return c.nodeStat(c.node(node))[1][PEER_READ];
    }
}
