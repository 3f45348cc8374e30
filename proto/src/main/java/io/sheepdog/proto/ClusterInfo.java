package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code struct cluster_info} (docs/protocol.md §11.4): 48-byte head followed by 6144 node slots. It is the join
 * message and the CLUSTER_INFO reply; {@link #encode(boolean)} can leave out the unused node slots for
 * cluster-driver messages.
 */
public final class ClusterInfo {
    public static final int HEAD_SIZE = 48;
    public static final int SIZE = HEAD_SIZE + Proto.MAX_NODES * SdNode.SIZE; // 491 568

    public int protoVer = Proto.SHEEP_PROTO_VER;
    public boolean disableRecovery;
    public int epoch;
    public long ctime;
    public int flags;
    public int nrCopies;
    public int copyPolicy;
    public int status = Proto.STATUS_WAIT;
    public int blockSizeShift;
    public String defaultStore = "";
    public List<SdNode> nodes = new ArrayList<>();

    public ClusterInfo copy() {
        ClusterInfo c = decode(ByteBuffer.wrap(encode(true)));
        return c;
    }

    /** @param full true for the fixed 491 568-byte layout, false for head + used node slots only */
    public byte[] encode(boolean full) {
        int size = full ? SIZE : HEAD_SIZE + nodes.size() * SdNode.SIZE;
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, (byte) protoVer);
        b.put(1, (byte) (disableRecovery ? 1 : 0));
        b.putShort(2, (short) nodes.size());
        b.putInt(4, epoch);
        b.putLong(8, ctime);
        b.putShort(16, (short) flags);
        b.put(18, (byte) nrCopies);
        b.put(19, (byte) copyPolicy);
        b.put(20, (byte) status);
        b.put(21, (byte) blockSizeShift);
        Strings.write(b, 25, 16, defaultStore);
        b.position(HEAD_SIZE);
        for (SdNode n : nodes) n.encode(b);
        return b.array();
    }

    public static ClusterInfo decode(ByteBuffer in) {
        ByteBuffer b = in.slice().order(ByteOrder.LITTLE_ENDIAN);
        ClusterInfo c = new ClusterInfo();
        c.protoVer = b.get(0) & 0xff;
        c.disableRecovery = b.get(1) != 0;
        int nr = b.getShort(2);
        c.epoch = b.getInt(4);
        c.ctime = b.getLong(8);
        c.flags = b.getShort(16) & 0xffff;
        c.nrCopies = b.get(18) & 0xff;
        c.copyPolicy = b.get(19) & 0xff;
        c.status = b.get(20) & 0xff;
        c.blockSizeShift = b.get(21) & 0xff;
        c.defaultStore = Strings.read(b, 25, 16);
        b.position(HEAD_SIZE);
        int avail = (b.remaining()) / SdNode.SIZE;
        c.nodes = SdNode.decodeAll(b, Math.max(0, Math.min(nr, avail)));
        return c;
    }
}
