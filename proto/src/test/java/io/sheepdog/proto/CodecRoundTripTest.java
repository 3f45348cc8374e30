package io.sheepdog.proto;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every codec of {@code proto} decodes what it encodes, at the sizes and offsets the wire fixes (docs/protocol.md
 * §3, §5, §10, §11); the byte vectors of placement are in {@link PlacementVectorsTest}.
 */
class CodecRoundTripTest {
    private static final SdNode A = new SdNode(NodeId.of("10.0.0.1", 7000), 128, 3, 1L << 40);
    private static final SdNode B = new SdNode(NodeId.of("10.0.0.2", 7001), 64, 4, 1L << 39);

    @Test
    void nodes() {
        byte[] all = SdNode.encodeAll(List.of(A, B));
        assertEquals(2 * SdNode.SIZE, all.length);
        assertEquals(List.of(A, B), SdNode.decodeAll(ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN), 2));
        ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        A.nid().encode(b);
        b.flip();
        assertEquals(A.nid(), NodeId.decode(b));
        assertTrue(A.compareTo(B) < 0, "nodes order by address, then port");
    }

    @Test
    void requestAndResponseHeaders() {
        SdRequest r = new SdRequest().opcode(Opcodes.WRITE_PEER).protoVer(Proto.SHEEP_PROTO_VER).epoch(7)
                .objOid(0x0042000000000003L).objCowOid(5).objCopies(3).objCopyPolicy(0x22).objEcIndex(4)
                .objTgtEpoch(6).objOffset(4096).dataLength(512).flags(SdFlags.CMD_WRITE | SdFlags.CMD_VERSIONED);
        byte[] bytes = r.bytes();
        assertEquals(48, bytes.length);
        assertEquals(Proto.SHEEP_PROTO_VER, bytes[0] & 0xff);
        assertEquals(Opcodes.WRITE_PEER, bytes[1] & 0xff);
        ByteBuffer le = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(SdFlags.CMD_WRITE | SdFlags.CMD_VERSIONED, le.getShort(2) & 0xffff);
        assertEquals(7, le.getInt(4));
        assertEquals(512, le.getInt(12));
        assertEquals(0x0042000000000003L, le.getLong(16));
        assertEquals(4096, le.getInt(40));
        SdRequest back = new SdRequest(bytes.clone());
        assertEquals(r.objOid(), back.objOid());
        assertEquals(5, back.objCowOid());
        assertEquals(3, back.objCopies());
        assertEquals(0x22, back.objCopyPolicy());
        assertEquals(4, back.objEcIndex());
        assertEquals(4096, back.objOffset());
        assertEquals(512, back.dataLength());

        SdResponse rsp = SdResponse.replyTo(r, SdResult.OLD_NODE_VER).epoch(9);
        ByteBuffer rb = ByteBuffer.wrap(rsp.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(Opcodes.WRITE_PEER, rb.get(1) & 0xff);
        assertEquals(9, rb.getInt(4));
        assertEquals(r.id(), rb.getInt(8));
        assertEquals(SdResult.OLD_NODE_VER, rb.getInt(16));
    }

    @Test
    void clusterInfo() {
        ClusterInfo c = new ClusterInfo();
        c.epoch = 12;
        c.ctime = 0x1234_5678_9abcL;
        c.flags = Proto.CLUSTER_FLAG_AUTO_VNODES;
        c.nrCopies = 3;
        c.copyPolicy = 0x21;
        c.status = Proto.STATUS_OK;
        c.blockSizeShift = 22;
        c.defaultStore = "tree";
        c.disableRecovery = true;
        c.nodes = List.of(A, B);
        byte[] full = c.encode(true);
        assertEquals(ClusterInfo.SIZE, full.length, "the full structure: 491 568 bytes");
        ClusterInfo d = ClusterInfo.decode(ByteBuffer.wrap(full));
        assertEquals(12, d.epoch);
        assertEquals(c.ctime, d.ctime);
        assertEquals(c.flags, d.flags);
        assertEquals(3, d.nrCopies);
        assertEquals(0x21, d.copyPolicy);
        assertEquals(Proto.STATUS_OK, d.status);
        assertEquals("tree", d.defaultStore);
        assertTrue(d.disableRecovery);
        assertEquals(List.of(A, B), d.nodes);
        assertEquals(d.nodes, ClusterInfo.decode(ByteBuffer.wrap(c.encode(false))).nodes, "the short form carries the nodes");
    }

    @Test
    void epochRecords() {
        EpochRecord r = new EpochRecord();
        r.epoch = 4;
        r.ctime = 99;
        r.time = 1234;
        r.nrCopies = 2;
        r.flags = 1;
        r.drvName = "plain";
        r.nodes = List.of(A, B);
        ByteBuffer b = ByteBuffer.allocate(EpochRecord.recordSize(3)).order(ByteOrder.LITTLE_ENDIAN);
        r.encode(b, 3);
        b.flip();
        EpochRecord d = EpochRecord.decode(b, 3);
        assertEquals(4, d.epoch);
        assertEquals(99, d.ctime);
        assertEquals(1234, d.time);
        assertEquals(2, d.nrCopies);
        assertEquals("plain", d.drvName);
        assertEquals(List.of(A, B), d.nodes);
        EpochRecord f = EpochRecord.decodeFile(4, EpochRecord.encodeFile(List.of(B, A), 777));
        assertEquals(List.of(B, A), f.nodes);
        assertEquals(777, f.time);
    }

    @Test
    void inodes() {
        Inode i = new Inode();
        i.name = "Alice";
        i.tag = "monday";
        i.createTime = 1L << 33;
        i.snapCtime = 5;
        i.vdiSize = 10L << 30;
        i.nrCopies = 3;
        i.copyPolicy = 0x22;
        i.snapId = 2;
        i.vdiId = 0x7c2b25;
        i.parentVdiId = 0x7c2b24;
        i.ensureCapacity(i.objectCount());
        assertEquals(2560, i.objectCount(), "10 GiB of 4 MiB objects");
        i.dataVdiId[0] = 0x7c2b25;
        i.dataVdiId[2559] = 0x7c2b24;
        byte[] b = i.encode(Inode.SIZE);
        Inode d = Inode.decode(b);
        assertEquals("Alice", d.name);
        assertEquals("monday", d.tag);
        assertEquals(i.createTime, d.createTime);
        assertEquals(10L << 30, d.vdiSize);
        assertEquals(0x22, d.copyPolicy);
        assertEquals(0x7c2b24, d.parentVdiId);
        assertTrue(d.isSnapshot());
        assertEquals(0x7c2b25, d.dataVid(0));
        assertEquals(0, d.dataVid(1));
        assertEquals(0x7c2b24, d.dataVid(2559));
        assertEquals(0, d.dataVid(2560), "nothing past the VDI's end");
        ByteBuffer le = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x7c2b24, le.getInt((int) Inode.dataVdiIdOffset(2559)), "the data_vdi_id table where QEMU's driver writes it");
    }

    @Test
    void vdiAttributesAndStripStates() {
        VdiAttr a = new VdiAttr();
        a.name = "Alice";
        a.tag = "t";
        a.key = "owner";
        a.value = "bob".getBytes();
        a.valueLen = 3;
        byte[] b = a.encode();
        assertEquals(VdiAttr.SIZE, b.length);
        VdiAttr d = VdiAttr.decode(ByteBuffer.wrap(b));
        assertEquals("Alice", d.name);
        assertEquals("owner", d.key);
        assertEquals(3, d.valueLen);
        assertArrayEquals("bob".getBytes(), java.util.Arrays.copyOf(d.value, d.valueLen));

        StripVersion.State s = new StripVersion.State(StripVersion.next(0), 77);
        byte[] e = s.encode();
        assertEquals(StripVersion.STATE_BYTES, e.length);
        assertEquals(s, StripVersion.State.decode(e, 0));
        assertTrue(s.shows(77) && s.shows(s.version()) && !s.shows(78));
    }
}
