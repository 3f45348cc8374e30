package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Objects whose every copy is away (their nodes down beyond the redundancy) are unavailable, never empty. A write to
 * a snapshot's child over such an object copies the rest of it from the snapshot's object (copy-on-write): that copy
 * used to read the away object as zeros, so the write succeeded and the child's object kept zeros where the
 * snapshot's data had been, for good (acknowledged data destroyed once the node was back). Now the write waits for
 * the object's nodes (here a 2 s retry deadline) and fails; after the node's return the child reads the snapshot's
 * bytes everywhere but in the writes that succeeded.
 */
@ExtendWith(MiniClusterExtension.class)
class UnavailableObjectsIT {
    private static final int MiB = 1 << 20;
    private static final int OBJECTS = 12;

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aCopyOnWriteFromAnObjectThatIsAwayFailsInsteadOfWritingZeros() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("away").nodes(2).copies(1).sync(true)
                .sheepProperty("sheepdog.retryDeadlineMs", "2000").build().start()) {
            byte[] image = new byte[OBJECTS * 4 * MiB];
            new Random(17).nextBytes(image);
            c.dog("vdi", "create", "v", (OBJECTS * 4) + "M").assertOk();
            c.dogWithInput(image, "vdi", "write", "v").assertOk();
            c.dog("vdi", "snapshot", "-s", "snap", "v").assertOk();
            // v names the snapshot's objects now. The node to take away is the one without v's inode (every write
            // records its new object there); which of the snapshot's objects does it hold (one copy each)?
            Inode working = StoredObjects.inode(c, c.node(0), "v");
            boolean inodeOn0 = Files.exists(StoredObjects.file(c.node(0), Oids.inodeOid(working.vdiId)));
            SheepNode stays = c.node(inodeOn0 ? 0 : 1), away = c.node(inodeOn0 ? 1 : 0);
            List<Integer> onAway = new ArrayList<>();
            for (int i = 0; i < OBJECTS; i++) {
                long oid = Oids.dataOid(working.dataVdiId[i], i);
                if (Files.exists(StoredObjects.file(away, oid))) onAway.add(i);
            }
            assertTrue(!onAway.isEmpty() && onAway.size() < OBJECTS, "objects on both nodes: " + away + " holds " + onAway);

            away.kill9();
            c.waitForNodes(1);
            byte[] patch = new byte[4096];
            Arrays.fill(patch, (byte) 0x5a);
            List<Integer> written = new ArrayList<>();
            int triedAway = 0;
            for (int i = 0; i < OBJECTS; i++) {
                long at = (long) i * 4 * MiB + MiB;
                if (onAway.contains(i) && ++triedAway > 2) continue; // two suffice; each waits out the deadline
                CommandResult w = c.dogAt(stays, patch, "vdi", "write", "v", Long.toString(at), "4096");
                if (onAway.contains(i)) {
                    assertNotEquals(0, w.exitCode(), "object " + i + " is away: its copy-on-write write must fail: " + w);
                } else {
                    w.assertOk();
                    written.add(i);
                }
            }

            away.start();
            c.waitForNodes(2);
            c.waitForRecovery();
            byte[] expect = image.clone();
            for (int i : written) System.arraycopy(patch, 0, expect, i * 4 * MiB + MiB, patch.length);
            byte[] got = c.dog("vdi", "read", "v").assertOk().stdoutBytes();
            assertEquals(expect.length, got.length);
            for (int i = 0; i < OBJECTS; i++) {
                assertArrayEquals(Arrays.copyOfRange(expect, i * 4 * MiB, (i + 1) * 4 * MiB),
                        Arrays.copyOfRange(got, i * 4 * MiB, (i + 1) * 4 * MiB), "object " + i + " of v");
            }
            byte[] snap = c.dog("vdi", "read", "-s", "snap", "v").assertOk().stdoutBytes();
            assertArrayEquals(image, snap, "the snapshot is untouched");
            // and v takes writes there again now that the object is back
            c.dogAt(stays, patch, "vdi", "write", "v", Long.toString((long) onAway.getFirst() * 4 * MiB + MiB), "4096").assertOk();
        }
    }
}
