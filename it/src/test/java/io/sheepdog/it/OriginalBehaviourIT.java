package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.Inode;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Where clients and scripts see the original's behaviour (issue: "differences from the original"), on real sheep:
 * format without {@code -c}, the epoch history on every node, {@code vdi alter-copy}, and the messages of a failed
 * restore.
 */
@ExtendWith(MiniClusterExtension.class)
class OriginalBehaviourIT {
    private static final int MiB = 1 << 20;

    /** Without -c the original sends copies 0 (the sheep's default, 3) and asks nothing, even with 2 zones. */
    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void formatWithoutCopiesAsksNothing() {
        try (MiniCluster c = MiniCluster.builder().name("orig-format").nodes(2).format(false).nbd(false).build().start()) {
            CommandResult f = c.dog("cluster", "format"); // no stdin: a question would fail it
            f.assertOk();
            assertFalse(f.stdout().contains("Are you sure"), f.toString());
            c.waitUntilRunning();
            c.dog("vdi", "create", "v", "16M").assertOk();
            assertEquals(3, StoredObjects.inode(c, c.node(0), "v").nrCopies, "the sheep's default copies");
        }
    }

    /** Every node shows the same epoch history, the epochs it did not witness included. */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void everyNodeShowsTheWholeEpochHistory() {
        try (MiniCluster c = MiniCluster.builder().name("orig-epochs").nodes(3).nbd(false).build().start()) {
            SheepNode late = c.addNode(); // joins at epoch 2
            c.waitForNodes(4);
            c.node(1).kill9();             // epoch 3, which node 1 does not see
            c.waitForNodes(3);
            c.node(1).start();             // epoch 4
            c.waitForNodes(4);
            c.waitForRecovery();
            String reference = epochLines(c, c.node(0));
            assertTrue(reference.lines().count() >= 4, reference);
            for (SheepNode n : List.of(c.node(1), c.node(2), late)) {
                assertEquals(reference, epochLines(c, n), "dog cluster info through " + n);
            }
        }
    }

    /** {@code vdi alter-copy} changes a replicated VDI's copies and recovery brings every object to that many. */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void alterCopyChangesTheCopiesOfAVdi() {
        try (MiniCluster c = MiniCluster.builder().name("orig-alter").nodes(4).copies(2).nbd(false).build().start()) {
            c.dog("vdi", "create", "v", "24M").assertOk();
            byte[] data = new byte[12 * MiB];
            for (int i = 0; i < data.length; i++) data[i] = (byte) (i * 7 + i / 4096);
            c.dogWithInput(data, "vdi", "write", "v", "0").assertOk();
            CommandResult r = c.dog("vdi", "alter-copy", "-c", "3", "-f", "v");
            r.assertOk();
            assertTrue(r.stderr().contains("v's redundancy level is set to 3, the old one was 2."), r.toString());
            c.waitForRecovery();
            c.waitUntil("every object of v has 3 copies where the placement wants them", () ->
                    StoredObjects.check(c, c.node(0), StoredObjects.inode(c, c.node(0), "v"), idx -> objectOf(data, idx)).isEmpty());
            assertEquals(3, StoredObjects.inode(c, c.node(1), "v").nrCopies);

            r = c.dog("vdi", "alter-copy", "-c", "1", "-f", "v");
            r.assertOk();
            c.waitForRecovery();
            c.waitUntil("every object of v has 1 copy", () ->
                    StoredObjects.check(c, c.node(0), StoredObjects.inode(c, c.node(0), "v"), idx -> objectOf(data, idx)).isEmpty());
            assertTrue(Arrays.equals(data, c.dog("vdi", "read", "v", "0", Integer.toString(data.length)).assertOk().stdoutBytes()));
            CommandResult same = c.dog("vdi", "alter-copy", "-c", "1", "-f", "v");
            assertEquals(1, same.exitCode(), same.toString());
            assertTrue(same.stderr().contains("v's redundancy level is already set to 1, nothing changed."), same.toString());
        }
    }

    /** A restore to a snapshot that does not exist prints both of the original's lines and exits 1. */
    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void restoreOfAMissingSnapshotSaysSo() {
        try (MiniCluster c = MiniCluster.builder().name("orig-restore").nodes(1).copies(1).nbd(false).build().start()) {
            c.dog("vdi", "create", "v", "8M").assertOk();
            CommandResult r = c.dogWithInput(new byte[0], "vdi", "restore", "-s", "nosuch", "v");
            assertEquals(1, r.exitCode(), r.toString());
            assertTrue(r.stderr().contains("Failed to open VDI v (snapshot id: 0 snapshot tag: nosuch)"), r.toString());
            assertTrue(r.stderr().contains("Snapshot ID 0 or tag nosuch doesn't exist"), r.toString());
        }
    }

    private static byte[] objectOf(byte[] data, long idx) {
        int from = (int) Math.min(data.length, idx * 4L * MiB);
        byte[] o = new byte[4 * MiB];
        System.arraycopy(data, from, o, 0, Math.min(4 * MiB, data.length - from));
        return o;
    }

    /** The epoch lines of {@code dog cluster info} through {@code n} (dates differ by nothing: they are the records'). */
    private static String epochLines(MiniCluster c, SheepNode n) {
        CommandResult r = c.dogAt(n, null, "cluster", "info");
        r.assertOk();
        StringBuilder b = new StringBuilder();
        // the time of each epoch is when that node recorded it (as upstream, where each node stamps its own epoch
        // log): nodes may differ by a second, so the times are left out
        for (String l : r.stdout().split("\n")) {
            if (l.matches("^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d .*")) b.append(l.substring(19).strip()).append('\n');
        }
        return b.toString();
    }
}
