package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * One epoch record of a STAT_CLUSTER reply ({@code struct epoch_log}, docs/protocol.md §11.3): a 48-byte head and a
 * fixed stride of {@code nodesNr} node slots of which {@code nodes.size()} are valid.
 */
public final class EpochRecord {
    public static final int HEAD_SIZE = 48;

    public long ctime;
    public long time;
    public int epoch;
    public boolean disableRecovery;
    public int nrCopies;
    public int copyPolicy;
    public int flags;
    public String drvName = "";
    public List<SdNode> nodes = new ArrayList<>();

    public static int recordSize(int nodesNr) { return HEAD_SIZE + nodesNr * SdNode.SIZE; }

    public void encode(ByteBuffer out, int nodesNr) {
        ByteBuffer b = out.slice().order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, ctime);
        b.putLong(8, time);
        b.putInt(16, epoch);
        b.putInt(20, nodes.size());
        b.put(24, (byte) (disableRecovery ? 1 : 0));
        b.put(25, (byte) nrCopies);
        b.put(26, (byte) copyPolicy);
        b.putShort(30, (short) flags);
        Strings.write(b, 32, 16, drvName);
        b.position(HEAD_SIZE);
        for (int i = 0; i < nodes.size() && i < nodesNr; i++) nodes.get(i).encode(b);
        out.position(out.position() + recordSize(nodesNr));
    }

    public static EpochRecord decode(ByteBuffer in, int nodesNr) {
        ByteBuffer b = in.slice().order(ByteOrder.LITTLE_ENDIAN);
        EpochRecord r = new EpochRecord();
        r.ctime = b.getLong(0);
        r.time = b.getLong(8);
        r.epoch = b.getInt(16);
        int nr = b.getInt(20);
        r.disableRecovery = b.get(24) != 0;
        r.nrCopies = b.get(25) & 0xff;
        r.copyPolicy = b.get(26) & 0xff;
        r.flags = b.getShort(30) & 0xffff;
        r.drvName = Strings.read(b, 32, 16);
        b.position(HEAD_SIZE);
        r.nodes = SdNode.decodeAll(b, Math.min(nr, nodesNr));
        in.position(in.position() + recordSize(nodesNr));
        return r;
    }

    /** Epoch log file on disk: nr x sd_node followed by an 8-byte time_t. */
    public static byte[] encodeFile(List<SdNode> nodes, long time) {
        ByteBuffer b = ByteBuffer.allocate(nodes.size() * SdNode.SIZE + 8).order(ByteOrder.LITTLE_ENDIAN);
        for (SdNode n : nodes) n.encode(b);
        b.putLong(time);
        return b.array();
    }

    public static EpochRecord decodeFile(int epoch, byte[] file) {
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        EpochRecord r = new EpochRecord();
        r.epoch = epoch;
        int nr = (file.length - 8) / SdNode.SIZE;
        r.nodes = SdNode.decodeAll(b, nr);
        r.time = file.length >= 8 ? b.getLong(nr * SdNode.SIZE) : 0;
        return r;
    }
}
