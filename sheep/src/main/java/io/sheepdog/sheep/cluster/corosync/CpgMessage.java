package io.sheepdog.sheep.cluster.corosync;

import io.sheepdog.sheep.cluster.common.ClusterEvent;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A message multicast to the CPG group: a 24-byte header and a {@link ClusterEvent}.
 *
 * @param seq    the sender's message counter; with the sender's key it names this message in the total order
 * @param refKey for ACCEPT: the sender key of the message right after which the answer's state snapshot was taken
 * @param refSeq for ACCEPT: that message's counter
 */
record CpgMessage(long seq, long refKey, long refSeq, ClusterEvent event) {

    byte[] encode() {
        byte[] ev = event.encode();
        ByteBuffer b = ByteBuffer.allocate(24 + ev.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(seq).putLong(refKey).putLong(refSeq).put(ev);
        return b.array();
    }

    /** @throws IllegalArgumentException if {@code data} is not one of our messages */
    static CpgMessage decode(byte[] data) {
        if (data.length < 28) throw new IllegalArgumentException("short CPG message");
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        long seq = b.getLong(), refKey = b.getLong(), refSeq = b.getLong();
        byte[] ev = new byte[data.length - 24];
        b.get(ev);
        return new CpgMessage(seq, refKey, refSeq, ClusterEvent.decode(ev));
    }
}
