package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code struct sd_node} (80 bytes): 24 bytes of rb-tree link (zero on our wire), node id, vnode count,
 * zone and contributed space.
 */
public record SdNode(NodeId nid, int nrVnodes, long zone, long space) implements Comparable<SdNode> {
    public static final int SIZE = 80;

    public SdNode withVnodes(int v) { return new SdNode(nid, v, zone, space); }

    public SdNode withSpace(long s) { return new SdNode(nid, nrVnodes, zone, s); }

    public boolean isGateway() { return nrVnodes == 0 && space == 0; }

    public void encode(ByteBuffer b) {
        ByteBuffer le = b.order() == ByteOrder.LITTLE_ENDIAN ? b : b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int start = le.position();
        le.put(new byte[24]);
        nid.encode(le);
        le.putShort((short) nrVnodes).putShort((short) 0).putInt((int) zone).putLong(space);
        if (le != b) b.position(start + SIZE);
    }

    public byte[] toBytes() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        encode(b);
        return b.array();
    }

    public static SdNode decode(ByteBuffer in) {
        ByteBuffer b = in.order() == ByteOrder.LITTLE_ENDIAN ? in : in.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int start = b.position();
        b.position(start + 24);
        NodeId nid = NodeId.decode(b);
        int vn = b.getShort() & 0xffff;
        b.getShort();
        long zone = b.getInt() & 0xffffffffL;
        long space = b.getLong();
        if (b != in) in.position(start + SIZE);
        return new SdNode(nid, vn, zone, space);
    }

    public static byte[] encodeAll(List<SdNode> nodes) {
        ByteBuffer b = ByteBuffer.allocate(nodes.size() * SIZE).order(ByteOrder.LITTLE_ENDIAN);
        for (SdNode n : nodes) n.encode(b);
        return b.array();
    }

    public static List<SdNode> decodeAll(ByteBuffer b, int count) {
        List<SdNode> out = new ArrayList<>(count);
        ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < count; i++) out.add(decode(le));
        b.position(le.position());
        return out;
    }

    @Override public int compareTo(SdNode o) { return nid.compareTo(o.nid); }

    @Override public String toString() { return nid + "(z" + zone + ",v" + nrVnodes + ")"; }
}
