package io.sheepdog.sheep.cluster.local;

import io.sheepdog.proto.SdNode;
import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * One entry of the event log.
 *
 * <p>On disk: {@code u32 magic, u32 bodyLength, body, u32 crc32c(body)}, little-endian. The body is
 * {@code u64 seq, u8 type, u64 senderId, u64 senderPid, sd_node sender (80 bytes)} followed by the type's fields:
 * <ul>
 *   <li>JOIN, NOTIFY, UNBLOCK: {@code u32 length, payload}</li>
 *   <li>ACCEPT, REFUSE: {@code u64 joinSeq, u32 n, n x u64 preLeaves, u32 length, payload}</li>
 *   <li>LEAVE: {@code u64 subjectId}</li>
 *   <li>UPDATE_NODE: {@code sd_node (80 bytes)}</li>
 *   <li>BLOCK: nothing</li>
 * </ul>
 * The CRC lets a reader that polls the file without the lock tell a record still being written (or torn by a
 * writer killed mid-write) from a complete one.
 *
 * @param seq       position in the total order, 1 for the first record after the file header
 * @param joinSeq   ACCEPT/REFUSE: the seq of the JOIN they answer
 * @param preLeaves ACCEPT/REFUSE: members found gone that are removed just before the answer takes effect
 * @param subject   LEAVE: id of the incarnation that left
 * @param node      UPDATE_NODE: the new node info
 * @param size      encoded size in the file (header and CRC included); 0 for records not yet written
 */
record LogRecord(long seq, RecordType type, Incarnation sender, SdNode senderNode, long joinSeq, long[] preLeaves,
                 long subject, SdNode node, byte[] payload, int size) {

    static final int MAGIC = 0x56454453; // "SDEV" read little-endian
    static final int MAX_JOIN_PAYLOAD = 1 << 20;
    static final int MAX_PAYLOAD = 128 << 10;
    /** A body longer than this cannot be ours: the length field is garbage from a torn write. */
    static final int MAX_BODY = MAX_JOIN_PAYLOAD + (64 << 10);
    private static final int COMMON = 8 + 1 + 8 + 8 + SdNode.SIZE;
    private static final long[] NONE = new long[0];
    private static final byte[] EMPTY = new byte[0];

    static LogRecord join(Incarnation s, SdNode n, byte[] msg) {
        return new LogRecord(0, RecordType.JOIN, s, n, 0, NONE, 0, null, msg, 0);
    }

    static LogRecord answer(boolean accept, Incarnation s, SdNode n, long joinSeq, long[] preLeaves, byte[] msg) {
        return new LogRecord(0, accept ? RecordType.ACCEPT : RecordType.REFUSE, s, n, joinSeq, preLeaves, 0, null,
                msg, 0);
    }

    static LogRecord leave(Incarnation s, SdNode n, long subject) {
        return new LogRecord(0, RecordType.LEAVE, s, n, 0, NONE, subject, null, EMPTY, 0);
    }

    static LogRecord notify(Incarnation s, SdNode n, byte[] msg) {
        return new LogRecord(0, RecordType.NOTIFY, s, n, 0, NONE, 0, null, msg, 0);
    }

    static LogRecord block(Incarnation s, SdNode n) {
        return new LogRecord(0, RecordType.BLOCK, s, n, 0, NONE, 0, null, EMPTY, 0);
    }

    static LogRecord unblock(Incarnation s, SdNode n, byte[] msg) {
        return new LogRecord(0, RecordType.UNBLOCK, s, n, 0, NONE, 0, null, msg, 0);
    }

    static LogRecord updateNode(Incarnation s, SdNode n, SdNode newNode) {
        return new LogRecord(0, RecordType.UPDATE_NODE, s, n, 0, NONE, 0, newNode, EMPTY, 0);
    }

    /** Encodes this record with sequence number {@code seq}, ready to be appended. */
    ByteBuffer encode(long seq) {
        int bodyLen = COMMON + switch (type) {
            case JOIN, NOTIFY, UNBLOCK -> 4 + payload.length;
            case ACCEPT, REFUSE -> 8 + 4 + 8 * preLeaves.length + 4 + payload.length;
            case LEAVE -> 8;
            case UPDATE_NODE -> SdNode.SIZE;
            case BLOCK -> 0;
        };
        ByteBuffer b = ByteBuffer.allocate(8 + bodyLen + 4).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(MAGIC).putInt(bodyLen);
        b.putLong(seq).put((byte) type.code).putLong(sender.id()).putLong(sender.pid());
        senderNode.encode(b);
        switch (type) {
            case JOIN, NOTIFY, UNBLOCK -> b.putInt(payload.length).put(payload);
            case ACCEPT, REFUSE -> {
                b.putLong(joinSeq).putInt(preLeaves.length);
                for (long id : preLeaves) b.putLong(id);
                b.putInt(payload.length).put(payload);
            }
            case LEAVE -> b.putLong(subject);
            case UPDATE_NODE -> node.encode(b);
            case BLOCK -> { }
        }
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 8, bodyLen);
        b.putInt((int) crc.getValue());
        return b.flip();
    }

    /**
     * Decodes a record from its body followed by its CRC ({@code rest}, {@code bodyLen + 4} bytes), or returns null
     * if the CRC does not match: the record is still being written or was torn by a writer that died.
     */
    static LogRecord decode(byte[] rest, int bodyLen) throws IOException {
        CRC32C crc = new CRC32C();
        crc.update(rest, 0, bodyLen);
        ByteBuffer b = ByteBuffer.wrap(rest).order(ByteOrder.LITTLE_ENDIAN);
        if ((int) crc.getValue() != b.getInt(bodyLen)) return null;
        b.limit(bodyLen);
        try {
            long seq = b.getLong();
            RecordType type = RecordType.of(b.get() & 0xff);
            if (type == null) throw new IOException("event log record " + seq + " has an unknown type");
            Incarnation sender = new Incarnation(b.getLong(), b.getLong());
            SdNode senderNode = SdNode.decode(b);
            long joinSeq = 0, subject = 0;
            long[] pre = NONE;
            SdNode node = null;
            byte[] payload = EMPTY;
            switch (type) {
                case JOIN, NOTIFY, UNBLOCK -> payload = bytes(b);
                case ACCEPT, REFUSE -> {
                    joinSeq = b.getLong();
                    int n = b.getInt();
                    if (n < 0 || n > b.remaining() / 8) throw new IOException("event log record " + seq + " is malformed");
                    pre = new long[n];
                    for (int i = 0; i < n; i++) pre[i] = b.getLong();
                    payload = bytes(b);
                }
                case LEAVE -> subject = b.getLong();
                case UPDATE_NODE -> node = SdNode.decode(b);
                case BLOCK -> { }
            }
            return new LogRecord(seq, type, sender, senderNode, joinSeq, pre, subject, node, payload, 8 + bodyLen + 4);
        } catch (BufferUnderflowException | IllegalArgumentException e) {
            throw new IOException("event log record is malformed", e);
        }
    }

    private static byte[] bytes(ByteBuffer b) throws IOException {
        int len = b.getInt();
        if (len < 0 || len > b.remaining()) throw new IOException("event log record has a bad payload length");
        byte[] out = new byte[len];
        b.get(out);
        return out;
    }

    static int minBody() { return COMMON; }

    @Override public String toString() {
        return "#" + seq + " " + type + " from " + senderNode + " (" + sender + ")";
    }
}
