package io.sheepdog.sheep.cluster.zookeeper;

import io.sheepdog.proto.SdNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Content of a member's ephemeral znode {@code <base>/member/<addr:port>-<key hex>}: it exists while the member's
 * session lives (its disappearance is how a crash is detected), tells joiners whether an older member exists, and
 * tells the garbage collector how far the member has read the queue.
 *
 * @param key      the member's incarnation key
 * @param joinSeq  sequence number of its JOIN event, -1 while it is being queued
 * @param consumed every queue event below this sequence number has been processed by the member (-1: unknown)
 * @param node     the member's node info (for operators reading ZooKeeper)
 */
record MemberZnode(long key, long joinSeq, long consumed, SdNode node) {

    byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(24 + SdNode.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(key).putLong(joinSeq).putLong(consumed);
        node.encode(b);
        return b.array();
    }

    static MemberZnode decode(byte[] data) {
        if (data == null || data.length < 24 + SdNode.SIZE) throw new IllegalArgumentException("bad member znode");
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        return new MemberZnode(b.getLong(), b.getLong(), b.getLong(), SdNode.decode(b));
    }

    static String name(SdNode node, long key) {
        return node.nid().toAddrPort() + "-" + String.format("%016x", key);
    }

    /** The key in a member znode name, or 0 if the name is not one of ours. */
    static long keyOf(String name) {
        int dash = name.lastIndexOf('-');
        if (dash < 0 || name.length() - dash - 1 != 16) return 0;
        try {
            return Long.parseUnsignedLong(name.substring(dash + 1), 16);
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
