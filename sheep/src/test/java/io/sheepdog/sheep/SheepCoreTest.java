package io.sheepdog.sheep;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One sheep in this JVM (solo driver) driven over real TCP with the client library. */
class SheepCoreTest {
    @TempDir Path dir;
    Sheep sheep;
    SheepConnection c;
    int port;

    static int freePort() throws Exception {
        return TestPorts.free();
    }

    @BeforeEach void start() throws Exception {
        port = freePort();
        startOn(port);
    }

    private void startOn(int port) throws Exception {
        startOn(port, 0);
    }

    private void startOn(int port, int vnodes) throws Exception {
        sheep = new Sheep(SheepOptions.builder(dir.resolve("store")).port(port).zone(0).bindAddr("127.0.0.1").cluster("solo").foreground(true).logDir(dir).noSync(true)
                .vnodes(vnodes).build());
        sheep.start();
        c = SheepConnection.open("127.0.0.1", port);
    }

    @AfterEach void stop() {
        if (c != null) c.close();
        if (sheep != null) sheep.close();
    }

    private Reply format(int copies) throws Exception {
        return format(copies, "plain");
    }

    private Reply format(int copies, String store) throws Exception {
        return format(copies, store, 0);
    }

    private Reply format(int copies, String store, int flags) throws Exception {
        byte[] name = (store + "\0").getBytes();
        SdRequest r = SdRequest.of(Opcodes.MAKE_FS).clusterCopies(copies).clusterCtime(System.currentTimeMillis() << 22)
                .clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES | flags).flags(SdFlags.CMD_WRITE).dataLength(name.length);
        return c.call(r, name);
    }

    @Test void reweightMovesToANewEpochOnlyWhenTheSpaceChanged() throws Exception {
        format(1);
        int vid = newVdi("test", 1L << 30);
        long oid = Oids.dataOid(vid, 0);
        byte[] data = writeObject(oid, 5);
        // the store's space as the cluster knows it: as if the disk had been 1 MiB when the node first started
        c.close();
        sheep.close();
        Path cfgFile = dir.resolve("store/config");
        io.sheepdog.sheep.node.StoreConfig cfg = io.sheepdog.sheep.node.StoreConfig.load(cfgFile);
        cfg.space = 1 << 20;
        cfg.save(cfgFile);
        startOn(port);
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (sheep.state().status() != Proto.STATUS_OK && System.nanoTime() < deadline) Thread.sleep(50);
        int epoch = sheep.state().epoch();
        assertEquals(1 << 20, sheep.state().self().space());

        Reply rw = c.call(SdRequest.of(Opcodes.REWEIGHT));
        assertEquals(SdResult.SUCCESS, rw.result(), SdResult.message(rw.result()));
        deadline = System.nanoTime() + 20_000_000_000L;
        while (sheep.state().epoch() == epoch && System.nanoTime() < deadline) Thread.sleep(50);
        assertEquals(epoch + 1, sheep.state().epoch(), "the new weight makes a new epoch");
        long space = sheep.state().self().space();
        assertTrue(space > 1 << 20, "measured again: " + space);
        assertEquals(space, sheep.state().view().members().get(0).space());
        assertEquals(space, io.sheepdog.sheep.node.StoreConfig.load(cfgFile).space, "and kept for the next start");
        assertArrayEquals(data, readObject(oid));

        // nothing changed since: no new epoch
        assertEquals(SdResult.SUCCESS, c.call(SdRequest.of(Opcodes.REWEIGHT)).result());
        Thread.sleep(300);
        assertEquals(epoch + 1, sheep.state().epoch());

        // vnodes follow the space in this cluster: they cannot be set by hand
        byte[] vn = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 64).array();
        Reply set = c.call(SdRequest.of(Opcodes.SET_VNODES).flags(SdFlags.CMD_WRITE).dataLength(8), vn);
        assertEquals(SdResult.INVALID_VNODES_STRATEGY, set.result());
    }

    private int nodeListVnodes() throws Exception {
        Reply nodes = c.call(SdRequest.of(Opcodes.GET_NODE_LIST).dataLength(80 * 16));
        return SdNode.decode(ByteBuffer.wrap(nodes.data())).nrVnodes();
    }

    @Test void fixedVnodesAreKeptSetByHandAndMustMatchAtARestart() throws Exception {
        c.close();
        sheep.close();
        startOn(port, 32);
        // as dog cluster format -V: without AUTO_VNODES
        byte[] name = "plain\0".getBytes();
        Reply f = c.call(SdRequest.of(Opcodes.MAKE_FS).clusterCopies(1).clusterCtime(System.currentTimeMillis() << 22)
                .clusterFlags(0).flags(SdFlags.CMD_WRITE).dataLength(name.length), name);
        assertEquals(SdResult.SUCCESS, f.result());
        assertEquals(32, nodeListVnodes(), "the node's -V, not a count from its space");
        int epoch = sheep.state().epoch();

        byte[] vn = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 48).array();
        Reply set = c.call(SdRequest.of(Opcodes.SET_VNODES).flags(SdFlags.CMD_WRITE).dataLength(8), vn);
        assertEquals(SdResult.SUCCESS, set.result(), SdResult.message(set.result()));
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (sheep.state().epoch() == epoch && System.nanoTime() < deadline) Thread.sleep(50);
        assertEquals(epoch + 1, sheep.state().epoch(), "new vnodes make a new epoch");
        assertEquals(48, nodeListVnodes());
        Reply bad = c.call(SdRequest.of(Opcodes.SET_VNODES).flags(SdFlags.CMD_WRITE).dataLength(8),
                ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 0).array());
        assertEquals(SdResult.INVALID_PARMS, bad.result());

        // a fixed-vnodes cluster's node restarted without -V is refused, and with -V it comes back
        c.close();
        sheep.close();
        java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class, () -> startOn(port, 0));
        assertTrue(e.getMessage().startsWith("Designation of before a restart and a vnodes option is different"), e.getMessage());
        startOn(port, 32);
    }

    @Test void strictClusterHaltsWritesWithFewerZonesThanCopies() throws Exception {
        // one node is one zone: two copies cannot be written
        assertEquals(SdResult.SUCCESS, format(2, "plain", Proto.CLUSTER_FLAG_STRICT).result());
        Reply create = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1L << 30).flags(SdFlags.CMD_WRITE).dataLength(256),
                Strings.fixed("test", 256));
        // as the original reports it: the inode could not be written
        assertEquals(SdResult.VDI_WRITE, create.result(), SdResult.message(create.result()));
        Reply copies1 = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(0x7c2b25, 1)).objCopies(1)
                .flags(SdFlags.CMD_WRITE).dataLength(512), new byte[512]);
        assertEquals(SdResult.SUCCESS, copies1.result(), "an object of one copy has its zone");

        // options this version does not implement are refused, not ignored
        assertEquals(SdResult.NO_SUPPORT, format(1, "plain", Proto.CLUSTER_FLAG_RECYCLE_VID).result());
        assertEquals(SdResult.NO_SUPPORT, format(1, "plain", Proto.CLUSTER_FLAG_AVOID_DISKFULL).result());

        // the same without -t: the objects get the copies there are zones for
        assertEquals(SdResult.SUCCESS, format(2, "plain").result());
        int vid = newVdi("test", 1L << 30);
        writeObject(Oids.dataOid(vid, 3), 4);
    }

    /** Stops and starts the sheep on the same store, and waits until it serves I/O again (it rejoins first). */
    private void restart(long oid) throws Exception {
        c.close();
        sheep.close();
        startOn(port); // the same node: a restarted cluster waits for the members of its last epoch
        long deadline = System.nanoTime() + 20_000_000_000L;
        int result;
        do {
            Thread.sleep(50);
            result = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(oid).dataLength(1)).result();
        } while (result == SdResult.WAIT_FOR_JOIN && System.nanoTime() < deadline);
    }

    private byte[] writeObject(long oid, int seed) throws Exception {
        byte[] data = new byte[4096];
        new Random(seed).nextBytes(data);
        Reply w = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(oid).flags(SdFlags.CMD_WRITE).dataLength(data.length), data);
        assertEquals(SdResult.SUCCESS, w.result(), SdResult.message(w.result()));
        return data;
    }

    private byte[] readObject(long oid) throws Exception {
        Reply r = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(oid).dataLength(4096));
        assertEquals(SdResult.SUCCESS, r.result(), SdResult.message(r.result()));
        return r.data();
    }

    @Test void treeStoreKeepsItsLayoutAcrossARestartAndAFormatBackToPlain() throws Exception {
        assertEquals(SdResult.SUCCESS, format(1, "tree").result());
        int vid = newVdi("test", 1L << 30);
        long oid = Oids.dataOid(vid, 3);
        byte[] data = writeObject(oid, 1);
        Path obj = dir.resolve("store/obj");
        assertTrue(Files.exists(obj.resolve("meta/807c2b2500000000")), "the inode is under meta/");
        assertTrue(Files.exists(obj.resolve("25/007c2b2500000003")), "data objects by the VID's low byte");
        assertTrue(Files.notExists(obj.resolve("007c2b2500000003")));

        restart(oid);
        assertArrayEquals(data, readObject(oid), "the layout comes back from the config");
        assertEquals(vid, lookupVdi("test"));

        assertEquals(SdResult.SUCCESS, format(1, "plain").result());
        vid = newVdi("test", 1L << 30);
        writeObject(Oids.dataOid(vid, 3), 2);
        assertTrue(Files.exists(obj.resolve("007c2b2500000003")));
        assertTrue(Files.notExists(obj.resolve("25/007c2b2500000003")), "the format removed the tree's objects");
        Reply bad = format(1, "dummy");
        assertEquals(SdResult.NO_STORE, bad.result());
    }

    @Test void nodeConfigChoosesThisNodesStoreDriver() throws Exception {
        // as `dog node format STORE tree` writes it: 16 bytes, the driver's name padded with NULs
        c.close();
        sheep.close();
        byte[] cfg = new byte[16];
        System.arraycopy("tree".getBytes(), 0, cfg, 0, 4);
        Files.write(dir.resolve("store/node_config"), cfg);
        start();
        format(1, "plain");
        int vid = newVdi("test", 1L << 30);
        writeObject(Oids.dataOid(vid, 3), 3);
        assertTrue(Files.exists(dir.resolve("store/obj/25/007c2b2500000003")), "node_config wins over the cluster's store");

        c.close();
        sheep.close();
        System.arraycopy("zzzz".getBytes(), 0, cfg, 0, 4);
        Files.write(dir.resolve("store/node_config"), cfg);
        java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class, this::start);
        assertTrue(e.getMessage().contains("'zzzz': expected plain or tree"), e.getMessage());
        sheep = null;
        c = null;
    }

    private int lookupVdi(String name) throws Exception {
        byte[] nt = new byte[512];
        System.arraycopy(Strings.fixed(name, 256), 0, nt, 0, 256);
        Reply info = c.call(SdRequest.of(Opcodes.GET_VDI_INFO).flags(SdFlags.CMD_WRITE).dataLength(512), nt);
        assertEquals(SdResult.SUCCESS, info.result(), SdResult.message(info.result()));
        return info.header().vdiVid();
    }

    private int newVdi(String name, long size) throws Exception {
        SdRequest r = SdRequest.of(Opcodes.NEW_VDI).vdiSize(size).flags(SdFlags.CMD_WRITE).dataLength(256);
        Reply rep = c.call(r, Strings.fixed(name, 256));
        assertEquals(SdResult.SUCCESS, rep.result(), SdResult.message(rep.result()));
        return rep.header().vdiVid();
    }

    @Test void waitsForFormatThenRuns() throws Exception {
        Reply before = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1 << 30).flags(SdFlags.CMD_WRITE).dataLength(256), Strings.fixed("x", 256));
        assertEquals(SdResult.WAIT_FOR_FORMAT, before.result());
        assertEquals(SdResult.SUCCESS, format(1).result());
        Reply nodes = c.call(SdRequest.of(Opcodes.GET_NODE_LIST).dataLength(80 * 6144));
        assertEquals(1, nodes.header().nodeNrNodes());
        SdNode n = SdNode.decode(ByteBuffer.wrap(nodes.data()));
        assertEquals(port, n.nid().port());
        assertEquals(128, n.nrVnodes());
    }

    @Test void vdiLifecycleAndObjectIo() throws Exception {
        format(1);
        int vid = newVdi("test", 1L << 30);
        assertEquals(0x7c2b25, vid);
        Reply dup = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1 << 30).flags(SdFlags.CMD_WRITE).dataLength(256), Strings.fixed("test", 256));
        assertEquals(SdResult.VDI_EXIST, dup.result());
        // lookup
        Reply info = c.call(SdRequest.of(Opcodes.GET_VDI_INFO).flags(SdFlags.CMD_WRITE).dataLength(512), new byte[512]);
        assertEquals(SdResult.NO_VDI, info.result()); // empty name: nothing to find
        byte[] nt = new byte[512];
        System.arraycopy(Strings.fixed("test", 256), 0, nt, 0, 256);
        info = c.call(SdRequest.of(Opcodes.GET_VDI_INFO).flags(SdFlags.CMD_WRITE).dataLength(512), nt);
        assertEquals(SdResult.SUCCESS, info.result());
        assertEquals(vid, info.header().vdiVid());
        // inode readable in QEMU's size
        Reply ino = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.inodeOid(vid)).dataLength(Inode.QEMU_SIZE));
        assertEquals(SdResult.SUCCESS, ino.result());
        Inode i = Inode.decode(ino.data());
        assertEquals("test", i.name);
        assertEquals(1L << 30, i.vdiSize);
        // write a data object and read it back
        byte[] data = new byte[1 << 20];
        new Random(1).nextBytes(data);
        long oid = Oids.dataOid(vid, 3);
        Reply w = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(oid).objOffset(4096).flags(SdFlags.CMD_WRITE).dataLength(data.length), data);
        assertEquals(SdResult.SUCCESS, w.result());
        Reply r = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(oid).objOffset(4096).dataLength(data.length));
        assertArrayEquals(data, r.data());
        Reply z = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(oid).objOffset(0).dataLength(4096));
        assertArrayEquals(new byte[4096], z.data());
        // pipelined: many reads in flight on one connection
        var fs = new java.util.ArrayList<java.util.concurrent.CompletableFuture<Reply>>();
        for (int k = 0; k < 64; k++) fs.add(c.submit(SdRequest.of(Opcodes.READ_OBJ).objOid(oid).objOffset(4096 + k).dataLength(16), null));
        for (int k = 0; k < 64; k++) {
            byte[] exp = java.util.Arrays.copyOfRange(data, k, k + 16);
            assertArrayEquals(exp, fs.get(k).get().data());
        }
        // bitmap shows the VDI
        Reply bm = c.call(SdRequest.of(Opcodes.READ_VDIS).dataLength(Proto.VDI_BITMAP_BYTES));
        assertTrue((bm.data()[vid / 8] & (1 << (vid % 8))) != 0);
        // object file is where the spec says
        assertTrue(Files.exists(dir.resolve("store/obj/007c2b2500000003")));
        assertTrue(Files.exists(dir.resolve("store/obj/807c2b2500000000")));
    }

    @Test void unixSocketServesTheSameProtocol() throws Exception {
        format(1);
        try (SheepConnection u = SheepConnection.openUnix(dir.resolve("store/sock"))) {
            Reply nodes = u.call(SdRequest.of(Opcodes.GET_NODE_LIST).dataLength(80 * 6144));
            assertEquals(SdResult.SUCCESS, nodes.result());
            assertEquals(1, nodes.header().nodeNrNodes());
        }
    }

    @Test void badInputGetsErrorsNotCrashes() throws Exception {
        format(1);
        // wrong proto version on an internal op
        Reply v = c.call(new SdRequest().opcode(Opcodes.GET_NODE_LIST).protoVer(1).dataLength(100));
        assertEquals(SdResult.VER_MISMATCH, v.result());
        // unknown opcode
        Reply u = c.call(new SdRequest().opcode(0x7f).protoVer(2));
        assertEquals(SdResult.INVALID_PARMS, u.result());
        // read past object end
        int vid = newVdi("a", 1 << 30);
        Reply p = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(vid, 0)).objOffset(4 << 20).dataLength(4096));
        assertEquals(SdResult.INVALID_PARMS, p.result());
        // name of the wrong size
        Reply nm = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1 << 20).flags(SdFlags.CMD_WRITE).dataLength(10), new byte[10]);
        assertEquals(SdResult.INVALID_PARMS, nm.result());
        // READ_VDIS with a wrong buffer size
        Reply bm = c.call(SdRequest.of(Opcodes.READ_VDIS).dataLength(100));
        assertEquals(SdResult.INVALID_PARMS, bm.result());
        // FLUSH_VDI keeps the original's answer
        assertEquals(SdResult.INVALID_PARMS, c.call(SdRequest.of(Opcodes.FLUSH_VDI).objOid(Oids.inodeOid(vid))).result());
        // still alive
        assertEquals(SdResult.SUCCESS, c.call(SdRequest.of(Opcodes.GET_NODE_LIST).dataLength(80 * 6144)).result());
    }
}
