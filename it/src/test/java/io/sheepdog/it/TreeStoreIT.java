package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.Oids;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@code dog cluster format -b tree} on three real sheep (the original's functional tests 101-104): objects live in
 * {@code obj/meta/} and {@code obj/<low byte of the VID>/}, never directly in {@code obj/}, through writes, the loss of
 * a node with its recovery, and the node's return.
 */
@ExtendWith(MiniClusterExtension.class)
class TreeStoreIT {
    private static final int MiB = 1 << 20;
    private static final int COPIES = 2;

    @Test
    void objectsStayInTheTreeThroughWritesANodeLossAndItsReturn() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("tree").nodes(3).copies(COPIES).format(false).nbd(false).build().start()) {
            assertEquals("using backend tree store\n", c.dog("cluster", "format", "-b", "tree", "-c", "2").assertOk().stdout());
            c.waitUntilRunning();
            assertTrue(c.dog("cluster", "info", "-v").assertOk().stdout().contains("Cluster store: tree with 2 redundancy policy"));

            c.dog("vdi", "create", "t", "64M").assertOk();
            byte[] data = new byte[40 * MiB];
            new Random(5).nextBytes(data);
            c.dogWithInput(data, "vdi", "write", "t", "0").assertOk();
            Map<Long, Integer> copies = objectsInTheTree(c);
            assertEquals(11, copies.size(), "the inode and 10 data objects: " + copies);
            copies.forEach((oid, n) -> assertEquals(COPIES, n, Oids.fileName(oid)));

            c.node(2).kill9();
            c.waitForNodes(2);
            c.waitForRecovery();
            copies = objectsInTheTree(c);
            assertEquals(11, copies.size(), copies.toString());
            copies.forEach((oid, n) -> assertEquals(COPIES, n, "recovered on the two nodes left: " + Oids.fileName(oid)));
            assertArrayEquals(data, readBack(c, 0));

            c.node(2).start();
            c.waitForNodes(3);
            c.waitForRecovery();
            copies = objectsInTheTree(c);
            copies.forEach((oid, n) -> assertEquals(COPIES, n, "after the return: " + Oids.fileName(oid)));
            assertArrayEquals(data, readBack(c, 2));
            assertEquals("finish check&repair t\n", c.dog("vdi", "check", "t").assertOk().stdout());
        }
    }

    private static byte[] readBack(MiniCluster c, int node) {
        return c.dogAt(c.node(node), null, "vdi", "read", "t", "0", Integer.toString(40 * MiB)).assertOk().stdoutBytes();
    }

    /**
     * Copies of each object over the live nodes, checking that each lies where the tree layout puts it: inodes under
     * meta/, data objects under the directory of their VID's low byte, nothing directly under obj/.
     */
    private static Map<Long, Integer> objectsInTheTree(MiniCluster c) throws IOException {
        Map<Long, Integer> copies = new TreeMap<>(Long::compareUnsigned);
        for (SheepNode n : c.liveNodes()) {
            Path obj = n.storeDir().resolve("obj");
            List<Path> files = new ArrayList<>();
            try (Stream<Path> all = Files.walk(obj)) {
                all.filter(Files::isRegularFile).filter(p -> !p.startsWith(obj.resolve(".stale"))).forEach(files::add);
            }
            for (Path f : files) {
                String name = f.getFileName().toString();
                assertEquals(16, name.length(), "only object files: " + f);
                long oid = Oids.parseFileName(name);
                String dir = obj.relativize(f.getParent()).toString();
                String want = Oids.isInode(oid) ? "meta" : String.format("%02x", Oids.vid(oid) & 0xff);
                assertEquals(want, dir, "where " + name + " lies on " + n);
                copies.merge(oid, 1, Integer::sum);
            }
        }
        return copies;
    }
}
