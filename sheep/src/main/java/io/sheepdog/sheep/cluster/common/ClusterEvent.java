package io.sheepdog.sheep.cluster.common;

import io.sheepdog.proto.SdNode;
import java.io.ByteArrayOutputStream;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

/**
 * One event of a driver's totally ordered stream, as stored in a ZooKeeper queue znode or sent as a corosync
 * message. Only Java sheep read it, so the layout is ours: a 4-byte head (magic, version, kind, flags) and a
 * little-endian body that is deflated when it is large (join messages and member lists are mostly zero bytes, and
 * ZooKeeper refuses znodes over about 1 MB).
 *
 * @param kind      what happened
 * @param senderKey the sending member's driver key (for LEAVE: the reporter)
 * @param sender    the sending node's info as the sender knew it
 * @param arg       kind-specific: block id (BLOCK, UNBLOCK), key of the member that left (LEAVE), 1 for a
 *                  self-elected ACCEPT (corosync), else 0
 * @param message   join message, decided message (ACCEPT), notify or unblock payload, or empty
 * @param members   ACCEPT: the member list after the join
 * @param blocks    ACCEPT: the block FIFO at the point of the join
 * @param pending   ACCEPT (corosync): joins waiting to be handled, with their join messages
 */
public record ClusterEvent(Kind kind, long senderKey, SdNode sender, long arg, byte[] message, List<Member> members,
                           List<BlockFifo.Block> blocks, List<Pending> pending) {

    /** TICK: no state change; corosync uses it to mark a point in the total order. */
    public enum Kind { JOIN, ACCEPT, REFUSE, LEAVE, NOTIFY, BLOCK, UNBLOCK, UPDATE_NODE, TICK }

    /** A join request not yet answered: who asked and with what message. */
    public record Pending(Member member, byte[] message) {}

    private static final int MAGIC = 0x5d;
    private static final int VERSION = 1;
    private static final int FLAG_DEFLATED = 1;
    private static final int DEFLATE_ABOVE = 64 * 1024;

    public ClusterEvent {
        message = message == null ? new byte[0] : message;
        members = members == null ? List.of() : List.copyOf(members);
        blocks = blocks == null ? List.of() : List.copyOf(blocks);
        pending = pending == null ? List.of() : List.copyOf(pending);
    }

    public static ClusterEvent simple(Kind kind, Member sender, long arg, byte[] message) {
        return new ClusterEvent(kind, sender.key(), sender.node(), arg, message, null, null, null);
    }

    public Member senderMember() { return new Member(senderKey, sender); }

    public byte[] encode() {
        int size = 8 + SdNode.SIZE + 8 + 4 + message.length + 4 + members.size() * (8 + SdNode.SIZE) + 4
                + blocks.size() * 16 + 4;
        for (Pending p : pending) size += 8 + SdNode.SIZE + 4 + p.message().length;
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(senderKey);
        sender.encode(b);
        b.putLong(arg);
        b.putInt(message.length).put(message);
        b.putInt(members.size());
        for (Member m : members) {
            b.putLong(m.key());
            m.node().encode(b);
        }
        b.putInt(blocks.size());
        for (BlockFifo.Block k : blocks) b.putLong(k.owner()).putLong(k.id());
        b.putInt(pending.size());
        for (Pending p : pending) {
            b.putLong(p.member().key());
            p.member().node().encode(b);
            b.putInt(p.message().length).put(p.message());
        }
        byte[] body = b.array();
        int flags = 0;
        if (body.length > DEFLATE_ABOVE) {
            body = deflate(body);
            flags |= FLAG_DEFLATED;
        }
        byte[] out = new byte[4 + body.length];
        out[0] = (byte) MAGIC;
        out[1] = (byte) VERSION;
        out[2] = (byte) kind.ordinal();
        out[3] = (byte) flags;
        System.arraycopy(body, 0, out, 4, body.length);
        return out;
    }

    /** @throws IllegalArgumentException if {@code data} is not an event of this version */
    public static ClusterEvent decode(byte[] data) {
        if (data == null || data.length < 4 || (data[0] & 0xff) != MAGIC || data[1] != VERSION
                || (data[2] & 0xff) >= Kind.values().length) {
            throw new IllegalArgumentException("not a sheepdog cluster event");
        }
        Kind kind = Kind.values()[data[2]];
        byte[] body = new byte[data.length - 4];
        System.arraycopy(data, 4, body, 0, body.length);
        if ((data[3] & FLAG_DEFLATED) != 0) body = inflate(body);
        try {
            ByteBuffer b = ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
            long senderKey = b.getLong();
            SdNode sender = SdNode.decode(b);
            long arg = b.getLong();
            byte[] message = bytes(b);
            int n = count(b, 8 + SdNode.SIZE);
            List<Member> members = new ArrayList<>(n);
            for (int i = 0; i < n; i++) members.add(new Member(b.getLong(), SdNode.decode(b)));
            n = count(b, 16);
            List<BlockFifo.Block> blocks = new ArrayList<>(n);
            for (int i = 0; i < n; i++) blocks.add(new BlockFifo.Block(b.getLong(), b.getLong()));
            n = count(b, 8 + SdNode.SIZE + 4);
            List<Pending> pending = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                Member m = new Member(b.getLong(), SdNode.decode(b));
                pending.add(new Pending(m, bytes(b)));
            }
            return new ClusterEvent(kind, senderKey, sender, arg, message, members, blocks, pending);
        } catch (BufferUnderflowException | IllegalArgumentException e) {
            throw new IllegalArgumentException("truncated sheepdog cluster event", e);
        }
    }

    private static int count(ByteBuffer b, int minEach) {
        int n = b.getInt();
        if (n < 0 || (long) n * minEach > b.remaining()) throw new IllegalArgumentException("bad count " + n);
        return n;
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] m = new byte[count(b, 1)];
        b.get(m);
        return m;
    }

    private static byte[] deflate(byte[] in) {
        Deflater d = new Deflater(Deflater.BEST_SPEED);
        try {
            d.setInput(in);
            d.finish();
            ByteArrayOutputStream out = new ByteArrayOutputStream(in.length / 4 + 64);
            byte[] buf = new byte[64 * 1024];
            while (!d.finished()) out.write(buf, 0, d.deflate(buf));
            return out.toByteArray();
        } finally {
            d.end();
        }
    }

    private static byte[] inflate(byte[] in) {
        Inflater inf = new Inflater();
        try {
            inf.setInput(in);
            ByteArrayOutputStream out = new ByteArrayOutputStream(in.length * 4 + 64);
            byte[] buf = new byte[64 * 1024];
            while (!inf.finished()) {
                int n = inf.inflate(buf);
                if (n == 0 && (inf.needsInput() || inf.needsDictionary())) {
                    throw new IllegalArgumentException("truncated deflated cluster event");
                }
                out.write(buf, 0, n);
                if (out.size() > 64 * 1024 * 1024) throw new IllegalArgumentException("cluster event too large");
            }
            return out.toByteArray();
        } catch (DataFormatException e) {
            throw new IllegalArgumentException("corrupt deflated cluster event", e);
        } finally {
            inf.end();
        }
    }
}
