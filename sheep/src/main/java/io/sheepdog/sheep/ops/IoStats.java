package io.sheepdog.sheep.ops;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Object I/O counters of one sheep since it started, as STAT reports them ({@code sd_stat}, docs/protocol.md §11): one
 * set for gateway requests (READ_OBJ, WRITE_OBJ, CREATE_AND_WRITE_OBJ, REMOVE_OBJ from clients, the NBD front end
 * included) and one for peer requests (the same operations on this node's copies, sent by gateways).
 */
public final class IoStats {
    /** The counters of one kind of request. */
    static final class Counters {
        final AtomicLong active = new AtomicLong(), total = new AtomicLong();
        final AtomicLong read = new AtomicLong(), write = new AtomicLong(), remove = new AtomicLong();
        final AtomicLong rx = new AtomicLong(), tx = new AtomicLong();

        /** Counts a request as it starts: {@code payload} bytes received with it. */
        void begin(Kind kind, int payload) {
            active.incrementAndGet();
            total.incrementAndGet();
            (switch (kind) {
                case READ -> read;
                case WRITE -> write;
                case REMOVE -> remove;
            }).incrementAndGet();
            rx.addAndGet(payload);
        }

        /** Counts a request as it ends: {@code payload} bytes sent with its reply (0 if it failed). */
        void end(int payload) {
            tx.addAndGet(payload);
            active.decrementAndGet();
        }
    }

    enum Kind { READ, WRITE, REMOVE }

    final Counters gateway = new Counters();
    final Counters peer = new Counters();

    /** The 120-byte {@code sd_stat} reply. Nothing flushes (every write is durable when it is answered): 0. */
    byte[] encode() {
        long[] v = {gateway.active.get(), peer.active.get(), gateway.total.get(), peer.total.get(),
                gateway.rx.get(), gateway.tx.get(), peer.rx.get(), peer.tx.get(),
                gateway.remove.get(), gateway.read.get(), gateway.write.get(), 0,
                peer.remove.get(), peer.read.get(), peer.write.get()};
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long x : v) b.putLong(x);
        return b.array();
    }
}
