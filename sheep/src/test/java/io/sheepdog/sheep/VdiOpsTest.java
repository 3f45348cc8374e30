package io.sheepdog.sheep;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.proto.VdiAttr;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Snapshots, clones, deletion with space reclaim, attributes and locks, on one in-JVM sheep over TCP. */
class VdiOpsTest {
    @TempDir Path dir;
    Sheep sheep;
    SheepConnection c;

    @BeforeEach void start() throws Exception {
        int port = SheepCoreTest.freePort();
        sheep = new Sheep(SheepOptions.builder(dir.resolve("store")).port(port).zone(0).bindAddr("127.0.0.1").cluster("solo").foreground(true).logDir(dir).noSync(true).build());
        sheep.start();
        c = SheepConnection.open("127.0.0.1", port);
        SdRequest f = SdRequest.of(Opcodes.MAKE_FS).clusterCopies(1).clusterCtime(1L << 40).clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES).flags(SdFlags.CMD_WRITE).dataLength(6);
        assertEquals(SdResult.SUCCESS, c.call(f, "plain\0".getBytes()).result());
    }

    @AfterEach void stop() {
        c.close();
        sheep.close();
    }

    private Reply newVdi(String name, long size, int base, int snap) throws Exception {
        SdRequest r = SdRequest.of(Opcodes.NEW_VDI).vdiSize(size).vdiBaseVid(base).vdiSnapId(snap).flags(SdFlags.CMD_WRITE).dataLength(256);
        return c.call(r, Strings.fixed(name, 256));
    }

    private void writeData(int vid, int idx, byte fill) throws Exception {
        byte[] d = new byte[4096];
        java.util.Arrays.fill(d, fill);
        Reply w = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(vid, idx)).flags(SdFlags.CMD_WRITE).dataLength(d.length), d);
        assertEquals(SdResult.SUCCESS, w.result());
        setEntry(vid, idx, vid);
    }

    private void setEntry(int vid, int idx, int value) throws Exception {
        byte[] e = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).array();
        Reply u = c.call(SdRequest.of(Opcodes.WRITE_OBJ).objOid(Oids.inodeOid(vid)).objOffset(Inode.dataVdiIdOffset(idx))
                .flags(SdFlags.CMD_WRITE).dataLength(4), e);
        assertEquals(SdResult.SUCCESS, u.result());
    }

    private Inode inode(int vid) throws Exception {
        return Inode.decode(c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.inodeOid(vid)).dataLength(Inode.HEADER_SIZE + 64)).data());
    }

    private boolean objectFile(long oid) { return Files.exists(dir.resolve("store/obj").resolve(Oids.fileName(oid))); }

    private Reply del(String name, int snapId) throws Exception {
        return c.call(SdRequest.of(Opcodes.DEL_VDI).vdiSnapId(snapId).flags(SdFlags.CMD_WRITE).dataLength(512), nameTag(name, ""));
    }

    private static byte[] nameTag(String name, String tag) {
        byte[] b = new byte[512];
        System.arraycopy(Strings.fixed(name, 256), 0, b, 0, 256);
        System.arraycopy(Strings.fixed(tag, 256), 0, b, 256, 256);
        return b;
    }

    @Test void snapshotCloneDeleteKeepsSharedData() throws Exception {
        int v1 = newVdi("vm", 64L << 20, 0, 0).header().vdiVid();
        writeData(v1, 0, (byte) 1);
        // snapshot: old VID becomes the snapshot, a new working VID shares the object
        Reply s = newVdi("vm", 64L << 20, v1, 1);
        assertEquals(SdResult.SUCCESS, s.result());
        int v2 = s.header().vdiVid();
        assertTrue(inode(v1).isSnapshot());
        assertFalse(inode(v2).isSnapshot());
        assertEquals(v1, inode(v2).dataVdiId[0]);
        // writing to the snapshot's data object is refused
        byte[] d = new byte[512];
        Reply ro = c.call(SdRequest.of(Opcodes.WRITE_OBJ).objOid(Oids.dataOid(v1, 0)).flags(SdFlags.CMD_WRITE).dataLength(512), d);
        assertEquals(SdResult.READONLY, ro.result());
        // clone from the snapshot
        Reply cl = newVdi("clone", 64L << 20, v1, 0);
        assertEquals(SdResult.SUCCESS, cl.result());
        int v3 = cl.header().vdiVid();
        assertEquals(v1, inode(v3).dataVdiId[0]);
        assertEquals(1, inode(v3).snapId);
        // lookups by snapshot id
        Reply bySnap = c.call(SdRequest.of(Opcodes.GET_VDI_INFO).vdiSnapId(1).flags(SdFlags.CMD_WRITE).dataLength(512), nameTag("vm", ""));
        assertEquals(v1, bySnap.header().vdiVid());
        // delete the working VDI and the snapshot: the clone still reads the object
        assertEquals(SdResult.SUCCESS, del("vm", 0).result());
        assertEquals(SdResult.SUCCESS, del("vm", 1).result());
        assertTrue(objectFile(Oids.dataOid(v1, 0)), "the clone still needs the snapshot's object");
        byte[] got = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(v1, 0)).dataLength(16)).data();
        assertEquals(1, got[0]);
        // deleting the clone frees it
        assertEquals(SdResult.SUCCESS, del("clone", 0).result());
        assertFalse(objectFile(Oids.dataOid(v1, 0)), "no reader left: space comes back");
        assertEquals(SdResult.NO_VDI, del("clone", 0).result());
        Reply bm = c.call(SdRequest.of(Opcodes.READ_DEL_VDIS).dataLength(Proto.VDI_BITMAP_BYTES));
        assertTrue((bm.data()[v3 / 8] & (1 << (v3 % 8))) != 0);
    }

    @Test void recreateAfterDeleteGetsNextVid() throws Exception {
        int a = newVdi("x", 1 << 30, 0, 0).header().vdiVid();
        assertEquals(SdResult.SUCCESS, del("x", 0).result());
        int b = newVdi("x", 1 << 30, 0, 0).header().vdiVid();
        assertEquals(a + 1, b);
    }

    @Test void attributesAndLocks() throws Exception {
        newVdi("att", 1 << 30, 0, 0);
        VdiAttr a = new VdiAttr();
        a.name = "att";
        a.key = "color";
        a.value = "blue".getBytes();
        a.valueLen = 4;
        Reply set = c.call(SdRequest.of(Opcodes.GET_VDI_ATTR).flags(SdFlags.CMD_WRITE | SdFlags.CMD_CREAT).dataLength(VdiAttr.SIZE), a.encode());
        assertEquals(SdResult.SUCCESS, set.result());
        Reply excl = c.call(SdRequest.of(Opcodes.GET_VDI_ATTR).flags(SdFlags.CMD_WRITE | SdFlags.CMD_CREAT | SdFlags.CMD_EXCL).dataLength(VdiAttr.SIZE), a.encode());
        assertEquals(SdResult.VDI_EXIST, excl.result());
        Reply get = c.call(SdRequest.of(Opcodes.GET_VDI_ATTR).flags(SdFlags.CMD_WRITE).dataLength(VdiAttr.SIZE), a.encode());
        assertEquals(SdResult.SUCCESS, get.result());
        long oid = Oids.attrOid(get.header().vdiVid(), get.header().vdiAttrId());
        VdiAttr back = VdiAttr.decode(ByteBuffer.wrap(c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(oid).dataLength(VdiAttr.SIZE)).data()));
        assertEquals("blue", new String(back.value));
        Reply d = c.call(SdRequest.of(Opcodes.GET_VDI_ATTR).flags(SdFlags.CMD_WRITE | SdFlags.CMD_DEL).dataLength(VdiAttr.SIZE), a.encode());
        assertEquals(SdResult.SUCCESS, d.result());
        assertEquals(SdResult.NO_OBJ, c.call(SdRequest.of(Opcodes.GET_VDI_ATTR).flags(SdFlags.CMD_WRITE).dataLength(VdiAttr.SIZE), a.encode()).result());

        // locks: first locker wins, a second connection is refused, dropping the first releases
        Reply l1 = c.call(SdRequest.of(Opcodes.LOCK_VDI).flags(SdFlags.CMD_WRITE).dataLength(512), nameTag("att", ""));
        assertEquals(SdResult.SUCCESS, l1.result());
        try (SheepConnection other = SheepConnection.open("127.0.0.1", sheep.options().port())) {
            assertEquals(SdResult.VDI_LOCKED, other.call(SdRequest.of(Opcodes.LOCK_VDI).flags(SdFlags.CMD_WRITE).dataLength(512), nameTag("att", "")).result());
            Reply vm = other.call(SdRequest.of(Opcodes.GET_VM_LIST).dataLength(280 * 16));
            assertEquals(280, vm.data().length);
            assertEquals("att", Strings.read(ByteBuffer.wrap(vm.data()), 0, 256));
            c.close();
            long deadline = System.currentTimeMillis() + 5000;
            int res;
            do {
                Thread.sleep(50);
                res = other.call(SdRequest.of(Opcodes.LOCK_VDI).flags(SdFlags.CMD_WRITE).dataLength(512), nameTag("att", "")).result();
            } while (res != SdResult.SUCCESS && System.currentTimeMillis() < deadline);
            assertEquals(SdResult.SUCCESS, res, "lock released when its connection went away");
        }
        c = SheepConnection.open("127.0.0.1", sheep.options().port());
    }
}
