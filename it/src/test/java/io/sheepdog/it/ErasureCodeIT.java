package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.VnodeRing;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Erasure-coded VDIs ({@code -c d:p}, docs/protocol.md §13) on real sheep: each data object is kept as d data and p parity
 * strips, one per node of its placement ({@code obj/<oid>_<index>}, objectSize/d bytes); reads survive the loss of
 * any p nodes; recovery rebuilds the strips of the nodes that are gone from the ones that are left (the original's
 * functional tests 076 and 098).
 */
@ExtendWith(MiniClusterExtension.class)
class ErasureCodeIT {
    private static final int MiB = 1 << 20;

    @Test
    void fourPlusTwoReadsWithTwoNodesGoneAndRebuildsEveryStrip() {
        try (MiniCluster c = MiniCluster.builder().name("ec42").nodes(6).format(false).nbd(false).build().start()) {
            c.dog("cluster", "format", "-c", "4:2").assertOk();
            c.waitUntilRunning();
            String info = c.dog("cluster", "info", "-v").assertOk().stdout();
            assertTrue(info.contains("with 4:2 redundancy policy"), info);
            c.dog("vdi", "create", "v", "40M").assertOk();
            String list = c.dog("vdi", "list", "-r").assertOk().stdout();
            assertTrue(list.contains(" 4:2 "), "vdi list shows the policy: " + list);

            byte[] want = new byte[40 * MiB];
            Random rnd = new Random(42);
            byte[] a = new byte[9 * MiB + 123];
            rnd.nextBytes(a);
            write(c, want, 1000, a); // unaligned at both ends, across three objects
            assertArrayEquals(want, read(c, c.node(0)));
            Inode inode = StoredObjects.inode(c, c.node(0), "v");
            assertEquals(List.of(), stripProblems(c, inode, 6), "every object is 6 strips, one on each node of its placement");

            // two nodes gone: still 4 = d zones, reads rebuild what the parity holds, writes go on
            c.node(4).kill9();
            c.node(5).kill9();
            c.waitForNodes(4);
            assertArrayEquals(want, read(c, c.node(1)), "reads with two strips of every object gone");
            byte[] b = new byte[MiB + 5];
            rnd.nextBytes(b);
            write(c, want, 5 * MiB + 7, b);
            c.waitForRecovery();
            assertArrayEquals(want, read(c, c.node(2)));
            assertEquals(List.of(), stripProblems(c, StoredObjects.inode(c, c.node(0), "v"), 4),
                    "recovery rebuilt the strips of the new placement on the four nodes left");

            // back to six: the returning nodes' positions are rebuilt and the other strips put back in place
            bringBackAndCheck(c, want, 4, 5);

            // fewer zones than data strips: refused with the reason, nothing read or written wrong
            c.node(3).kill9();
            c.node(4).kill9();
            c.node(5).kill9();
            c.waitForNodes(3);
            CommandResult r = c.dog("vdi", "read", "v", "0", "4096");
            assertNotEquals(0, r.exitCode(), r.toString());
            assertTrue(r.stderr().contains("IO has halted as there are not enough living nodes"), r.stderr());

            // and nothing was lost: with the zones back, every strip is rebuilt and the data reads as written
            bringBackAndCheck(c, want, 3, 4, 5);
        }
    }

    @Test
    void twoPlusOneOverNbdWithUnalignedIoAndANodeKilled() {
        Tools.require("qemu-io");
        try (MiniCluster c = MiniCluster.builder().name("ec21").nodes(3).copies(3).build().start()) {
            c.dog("vdi", "create", "-c", "2:1", "e", "16M").assertOk();
            String uri = "nbd://127.0.0.1:" + c.node(0).nbdPort() + "/e";
            qemuIo(uri, "write -P 0xab 1000 5000", "write -P 0xcd 4096 64k", "write -P 0x5a 4194000 1000");
            qemuIo(uri, "read -P 0xab 1000 3096", "read -P 0xcd 4096 64k", "read -P 0x5a 4194000 1000",
                    "read -P 0 0 1000", "read -P 0 4195000 4096");
            assertTrue(c.dog("vdi", "list").assertOk().stdout().contains("2:1"));
            // a snapshot, then copy-on-write of partly written stripes into the working VDI's own objects
            c.dog("vdi", "snapshot", "-s", "before", "e").assertOk();
            qemuIo(uri, "write -P 0x99 3000 2000");
            qemuIo(uri + "@before", "read -P 0xab 1000 3096", "read -P 0xcd 4096 64k");
            qemuIo(uri, "read -P 0xab 1000 2000", "read -P 0x99 3000 2000", "read -P 0xcd 5000 64000");
            assertTrue(c.dog("vdi", "list").assertOk().stdout().lines().anyMatch(l -> l.startsWith("s ") && l.contains("2:1")));

            c.node(2).kill9();
            c.waitForNodes(2);
            String uri1 = "nbd://127.0.0.1:" + c.node(1).nbdPort() + "/e";
            // with 2 nodes (= d) left, every read needs both data strips or a rebuild from parity
            qemuIo(uri1, "read -P 0xab 1000 2000", "read -P 0x99 3000 2000", "read -P 0xcd 5000 64000",
                    "read -P 0x5a 4194000 1000");
            qemuIo(uri1, "write -P 0x77 70000 512");
            c.node(2).start();
            c.waitForNodes(3);
            c.waitForRecovery();
            String uri2 = "nbd://127.0.0.1:" + c.node(2).nbdPort() + "/e";
            qemuIo(uri2, "read -P 0x77 70000 512", "read -P 0xcd 5000 64000", "read -P 0x5a 4194000 1000");
            assertEquals(List.of(), stripProblems(c, StoredObjects.inode(c, c.node(0), "e"), 3));
        }
    }

    /** Strip files ({@code <oid>_<index>}) in the node's {@code obj/}. */
    private static long stripFiles(SheepNode n) {
        try (var files = Files.list(n.storeDir().resolve("obj"))) {
            return files.filter(f -> f.getFileName().toString().matches("[0-9a-f]{16}_[0-9]+")).count();
        } catch (IOException e) {
            return 0;
        }
    }

    @Test
    void vdiCheckRebuildsLostStrips() throws IOException {
        try (MiniCluster c = MiniCluster.builder().name("ecchk").nodes(4).format(false).nbd(false).build().start()) {
            c.dog("cluster", "format", "-c", "2").assertOk();
            c.waitUntilRunning();
            c.dog("vdi", "create", "-c", "2:1", "v", "12M").assertOk();
            byte[] want = new byte[12 * MiB];
            byte[] a = new byte[10 * MiB];
            new Random(9).nextBytes(a);
            write(c, want, 512, a);
            assertEquals("finish check&repair v\n", c.dog("vdi", "check", "v").assertOk().stdout(), "a sound VDI");

            // a node that holds none of the inode's 3 copies learns the VDI's code from its peers when it restarts
            Inode before = StoredObjects.inode(c, c.node(0), "v");
            SheepNode stranger = c.nodes().stream()
                    .filter(n -> !Files.exists(n.storeDir().resolve("obj").resolve(Oids.fileName(Oids.inodeOid(before.vdiId)))))
                    .findFirst().orElseThrow();
            stranger.stop();
            c.waitForNodes(3);
            stranger.start();
            c.waitForNodes(4);
            assertArrayEquals(want, read(c, stranger), "reads through a node that had not heard of the VDI");
            c.waitForRecovery();

            // strip files lost while the cluster is down (a whole-cluster restart brings back the same epoch, so no
            // recovery puts them back: only the check can)
            // the node (other than the stranger) that holds the most strips: with 3 objects of 3 strips on 4 nodes a
            // given node holds none of them about once in 64 placements
            SheepNode victim = c.nodes().stream().filter(n -> n != stranger)
                    .max(Comparator.comparingLong(ErasureCodeIT::stripFiles)).orElseThrow();
            c.dog("cluster", "shutdown").assertOk();
            c.waitUntil("every node stopped", () -> c.liveNodes().isEmpty());
            int lost = 0;
            try (var files = Files.list(victim.storeDir().resolve("obj"))) {
                for (Path f : files.filter(f -> f.getFileName().toString().matches("[0-9a-f]{16}_[0-9]+")).toList()) {
                    Files.delete(f);
                    lost++;
                }
            }
            c.nodes().parallelStream().forEach(SheepNode::start);
            c.waitForNodes(4);
            c.waitUntil("the cluster runs again", () -> c.nodes().stream().allMatch(n -> c.clusterStatus(n) == SdResult.SUCCESS));
            assertTrue(lost > 0, "the node held strips");
            Inode inode = StoredObjects.inode(c, c.node(0), "v");
            assertEquals(lost, stripProblems(c, inode, 3).size());

            String out = c.dog("vdi", "check", "v").assertOk().stdout();
            assertTrue(out.matches("(?s)(fixed missing [0-9a-f]{16}, copy index [0-2]\n){" + lost + "}finish check&repair v\n"), out);
            assertEquals(List.of(), stripProblems(c, inode, 3), "the check rebuilt every strip in its place");
            for (SheepNode n : c.liveNodes()) assertArrayEquals(want, read(c, n));
            assertEquals("finish check&repair v\n", c.dog("vdi", "check", "v").assertOk().stdout());

            c.dog("vdi", "delete", "v").assertOk();
            c.waitUntil("every strip is removed", () -> c.liveNodes().stream().allMatch(n -> strips(n) == 0));
        }
    }

    /**
     * A write that reached two of an object's three strips (its gateway died before the third), then a node's return
     * that makes recovery rebuild strips of that object elsewhere, then the loss of one node: the object still reads,
     * at once, as its last acknowledged bytes. (Recovery used to rebuild the moved strips at the new version alone;
     * with the lagging strip at the old one, no two strips then showed one version after the next loss, and I/O on
     * the object waited 60 s and failed.)
     */
    @Test
    void aWriteThatReachedTwoStripsStaysReadableAfterRecoveryAndALoss() throws IOException {
        try (MiniCluster c = MiniCluster.builder().name("ecpartial").nodes(4).format(false).nbd(false).build().start()) {
            c.dog("cluster", "format", "-c", "2").assertOk();
            c.waitUntilRunning();
            c.dog("vdi", "create", "-c", "2:1", "v", "64M").assertOk();
            byte[] image = new byte[64 * MiB];
            new Random(21).nextBytes(image);
            c.dogWithInput(image, "vdi", "write", "v", "0", Integer.toString(image.length)).assertOk();
            Inode inode = StoredObjects.inode(c, c.node(0), "v");
            var ec = io.sheepdog.proto.ErasureCode.of(inode.copyPolicy);

            // an object and a returning node (never node 0) such that the node's return keeps the object's strip 0
            // where it is and moves strip j (1 or 2) to another node: then the node holding strip 3-j is the one to lose
            List<SdNode> all = c.nodeList(c.node(0));
            VnodeRing ring4 = VnodeRing.build(all);
            SheepNode returning = null, lose = null;
            long oid = 0;
            search:
            for (int x = 1; x < 4; x++) {
                int port = c.node(x).port();
                VnodeRing ring3 = VnodeRing.build(all.stream().filter(m -> m.nid().port() != port).toList());
                for (int idx = 0; idx < 16; idx++) {
                    long o = Oids.dataOid(inode.vdiId, idx);
                    List<SdNode> before = ring3.targets(o, 3), after = ring4.targets(o, 3);
                    if (!before.get(0).nid().equals(after.get(0).nid())) continue;
                    for (int j = 1; j <= 2; j++) {
                        SheepNode other = StoredObjects.nodeOf(c, after.get(3 - j));
                        if (!before.get(j).nid().equals(after.get(j).nid()) && other != c.node(0)) {
                            returning = c.node(x);
                            lose = other;
                            oid = o;
                            break search;
                        }
                    }
                }
            }
            assertTrue(returning != null, "some node's return moves a strip of one of 16 objects");
            int idx = (int) Oids.index(oid);
            byte[] acked = java.util.Arrays.copyOfRange(image, idx * 4 * MiB, (idx + 1) * 4 * MiB);

            returning.stop();
            c.waitForNodes(3);
            c.waitForRecovery();
            // the write that reached strips 1 and 2 only, sent as a gateway sends it
            SheepNode via = c.node(0);
            List<SdNode> placement = VnodeRing.build(c.nodeList(via)).targets(oid, 3);
            int epoch = c.epoch(via);
            long base = stripState(c, placement.get(1), oid, ec, 1, epoch)[0];
            for (int j = 0; j < 3; j++) assertEquals(base, stripState(c, placement.get(j), oid, ec, j, epoch)[0], "strip " + j);
            byte[] unacked = acked.clone();
            new Random(22).nextBytes(unacked);
            byte[][] strips = ec.encode(unacked, 0, unacked.length);
            long next = io.sheepdog.proto.StripVersion.next(base);
            for (int j = 1; j <= 2; j++) writeStrip(c, placement.get(j), oid, ec, j, epoch, base, next, strips[j]);

            returning.start();
            c.waitForNodes(4);
            c.waitForRecovery();
            lose.kill9();
            c.waitForNodes(3);
            long t0 = System.nanoTime();
            byte[] got = c.dogAt(c.node(0), null, "vdi", "read", "v", Long.toString(idx * 4L * MiB), Integer.toString(4 * MiB))
                    .assertOk().stdoutBytes();
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertArrayEquals(acked, got, "the object reads as its last acknowledged bytes with " + lose + " gone");
            assertTrue(ms < 20_000, "the read took " + ms + " ms");
            // and takes writes again (its strips settle at one version)
            byte[] after = new byte[4096];
            java.util.Arrays.fill(after, (byte) 0x5c);
            c.dogWithInput(after, "vdi", "write", "v", Long.toString(idx * 4L * MiB), "4096").assertOk();
            System.arraycopy(after, 0, acked, 0, after.length);
            lose.start();
            c.waitForNodes(4);
            c.waitForRecovery();
            got = c.dogAt(c.node(0), null, "vdi", "read", "v", Long.toString(idx * 4L * MiB), Integer.toString(4 * MiB))
                    .assertOk().stdoutBytes();
            assertArrayEquals(acked, got, "the object after the lost node's return");
        }
    }

    /** The state of strip {@code index} at {@code holder}: {version, version it can be undone to}. */
    private static long[] stripState(MiniCluster c, SdNode holder, long oid, io.sheepdog.proto.ErasureCode ec, int index,
            int epoch) throws IOException {
        SdRequest r = stripRequest(io.sheepdog.proto.Opcodes.READ_PEER, oid, ec, index, epoch).dataLength(0)
                .objCowOid(io.sheepdog.proto.StripVersion.ANY);
        try (var conn = c.connect(StoredObjects.nodeOf(c, holder))) {
            var rep = new io.sheepdog.client.SheepClient(conn).execOk(r, null);
            var st = io.sheepdog.proto.StripVersion.State.decode(rep.data(), 0);
            return new long[] {st.version(), st.undoTo()};
        }
    }

    private static void writeStrip(MiniCluster c, SdNode holder, long oid, io.sheepdog.proto.ErasureCode ec, int index,
            int epoch, long base, long next, byte[] strip) throws IOException {
        byte[] payload = java.nio.ByteBuffer.allocate(16 + strip.length).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putLong(base).putLong(next).put(strip).array();
        SdRequest r = stripRequest(io.sheepdog.proto.Opcodes.WRITE_PEER, oid, ec, index, epoch).dataLength(payload.length);
        r.flags(r.flags() | io.sheepdog.proto.SdFlags.CMD_WRITE);
        try (var conn = c.connect(StoredObjects.nodeOf(c, holder))) {
            new io.sheepdog.client.SheepClient(conn).execOk(r, payload);
        }
    }

    private static SdRequest stripRequest(int op, long oid, io.sheepdog.proto.ErasureCode ec, int index, int epoch) {
        return new SdRequest().opcode(op).protoVer(io.sheepdog.proto.Proto.SHEEP_PROTO_VER).epoch(epoch).objOid(oid)
                .flags(io.sheepdog.proto.SdFlags.CMD_FWD | io.sheepdog.proto.SdFlags.CMD_VERSIONED)
                .objCopyPolicy(ec.policy()).objEcIndex(index).objOffset(0);
    }

    private static long strips(SheepNode n) {
        try (var files = Files.list(n.storeDir().resolve("obj"))) {
            return files.filter(f -> f.getFileName().toString().matches("[0-9a-f]{16}_[0-9]+")).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Starts the killed nodes {@code back} of the 6-node cluster again; once recovery is done, the VDI reads as
     * {@code want} through the first of them and every strip sits at its place.
     */
    private static void bringBackAndCheck(MiniCluster c, byte[] want, int... back) {
        for (int i : back) c.node(i).start();
        c.waitForNodes(6);
        c.waitForRecovery();
        assertArrayEquals(want, read(c, c.node(back[0])));
        assertEquals(List.of(), stripProblems(c, StoredObjects.inode(c, c.node(0), "v"), 6));
    }

    private static void qemuIo(String uri, String... cmds) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
        if (uri.contains("@")) cmd.add("-r"); // a snapshot is a read-only export
        for (String s : cmds) {
            cmd.add("-c");
            cmd.add(s);
        }
        cmd.add(uri);
        CommandResult r = Commands.run(cmd).assertOk();
        assertTrue(!r.stdout().contains("Pattern verification failed") && !r.stdout().contains("failed"), r.stdout());
    }

    private static void write(MiniCluster c, byte[] image, long offset, byte[] data) {
        c.dogWithInput(data, "vdi", "write", "v", Long.toString(offset), Integer.toString(data.length)).assertOk();
        System.arraycopy(data, 0, image, (int) offset, data.length);
    }

    private static byte[] read(MiniCluster c, SheepNode via) {
        return c.dogAt(via, null, "vdi", "read", "v").assertOk().stdoutBytes();
    }

    /**
     * For every allocated data object: the live nodes the ring names hold strip j at position j, of objectSize/d
     * bytes, and no live node holds a strip elsewhere or a whole copy.
     */
    private static List<String> stripProblems(MiniCluster c, Inode inode, int positions) {
        VnodeRing ring = StoredObjects.ring(c, c.liveNodes().getFirst());
        int d = io.sheepdog.proto.ErasureCode.dataStrips(inode.copyPolicy);
        long stripSize = (1L << inode.blockSizeShift) / d;
        List<String> problems = new ArrayList<>();
        int objects = 0;
        for (int idx = 0; idx < inode.dataVdiId.length; idx++) {
            if (inode.dataVdiId[idx] == 0) continue;
            objects++;
            long oid = Oids.dataOid(inode.dataVdiId[idx], idx);
            List<SdNode> targets = ring.targets(oid, Math.min(inode.nrCopies, ring.nrZones()));
            if (targets.size() != positions) problems.add(Oids.fileName(oid) + ": " + targets.size() + " positions");
            byte[][] strips = new byte[inode.nrCopies][];
            for (SheepNode n : c.liveNodes()) {
                int pos = -1;
                for (int j = 0; j < targets.size(); j++) if (targets.get(j).nid().port() == n.port()) pos = j;
                for (int j = 0; j < inode.nrCopies; j++) {
                    Path f = n.storeDir().resolve("obj").resolve(Oids.fileName(oid) + "_" + j);
                    boolean there = Files.exists(f);
                    if (j == pos && !there) problems.add(n + " lacks " + f.getFileName());
                    if (j != pos && there) problems.add(n + " holds " + f.getFileName() + " but is position " + pos);
                    // the strip's bytes, then its version trailer (StripStore): a 512-byte header, then undo slots
                    if (there && size(f) < stripSize + 512) problems.add(f + " is " + size(f) + " bytes");
                    if (there && !hasVersionTrailer(f, stripSize)) problems.add(f + " has no version trailer");
                    if (j == pos && there) strips[j] = java.util.Arrays.copyOf(bytes(f), (int) stripSize);
                }
                if (Files.exists(n.storeDir().resolve("obj").resolve(Oids.fileName(oid)))) {
                    problems.add(n + " holds a whole copy of " + Oids.fileName(oid));
                }
            }
            // every strip there is belongs to one version of the object: the parity is that of the data strips
            if (java.util.Arrays.stream(strips).limit(d).allMatch(x -> x != null && x.length == stripSize)) {
                var ec = io.sheepdog.proto.ErasureCode.of(inode.copyPolicy);
                byte[] data = new byte[(int) stripSize * d];
                ec.join(java.util.Arrays.copyOf(strips, d), data, 0);
                byte[][] encoded = ec.encode(data, 0, data.length);
                for (int j = d; j < strips.length; j++) {
                    if (strips[j] != null && !java.util.Arrays.equals(strips[j], encoded[j])) {
                        problems.add(Oids.fileName(oid) + "_" + j + " is not the parity of the data strips");
                    }
                }
            }
        }
        if (objects == 0) problems.add("the VDI has no data objects");
        return problems;
    }

    /** Whether the strip file has the "SDSTRIPV" magic of a version trailer right after its {@code stripSize} bytes. */
    private static boolean hasVersionTrailer(Path f, long stripSize) {
        byte[] b = bytes(f);
        return b.length >= stripSize + 8
                && new String(b, (int) stripSize, 8, java.nio.charset.StandardCharsets.US_ASCII).equals("SDSTRIPV");
    }

    private static byte[] bytes(Path f) {
        try {
            return Files.readAllBytes(f);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static long size(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
