package io.sheepdog.sheep.ops;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Object I/O counters of one sheep since it started, as STAT reports them ({@code sd_stat}, docs/protocol.md §11): one
 * set for gateway requests (READ_OBJ, WRITE_OBJ, CREATE_AND_WRITE_OBJ, REMOVE_OBJ from clients, the NBD front end
 * included) and one for peer requests (the same operations on this node's copies, sent by gateways).
 *
 * <p>Beyond {@code sd_stat}, where the writes' time goes (a sheep-JVM extension, sent only to a client that asks for
 * more than the 120 bytes, so the original dog sees what it always did; docs/protocol.md §11): the time of whole
 * gateway writes and whole peer writes, and inside a gateway write, of its local copy and of waiting for the remote
 * ones. A replicated write's latency splits into these (see {@link #encode(int)}).
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

        /** The time of every write (WRITE_OBJ, CREATE_AND_WRITE_OBJ and their peer forms), from start to reply. */
        final Stage writeTime = new Stage();
    }

    /** How often a stage ran and the nanoseconds it took in all: its mean is what a breakdown shows. */
    public static final class Stage {
        private final LongAdder count = new LongAdder(), nanos = new LongAdder();

        public void add(long elapsedNanos) {
            count.increment();
            nanos.add(elapsedNanos);
        }

        long count() { return count.sum(); }
        long nanos() { return nanos.sum(); }
    }

    enum Kind { READ, WRITE, REMOVE }

    final Counters gateway = new Counters();
    final Counters peer = new Counters();
    /** Inside gateway writes of replicated objects: the copy on this node (store write and sync). */
    public final Stage gatewayLocalCopy = new Stage();
    /**
     * Inside gateway writes: from sending the remote copies until the last of their replies is read. The request
     * thread reads them after its local copy, so this is at least as long as that copy.
     */
    public final Stage gatewayRemoteCopies = new Stage();

    /** Size of {@code sd_stat}. */
    public static final int SD_STAT_SIZE = 120;
    /** Version of the extension that follows {@code sd_stat}. */
    public static final long TIMES_VERSION = 1;
    /** The extension: version, number of stages, then (count, nanoseconds) of each. */
    public static final int TIMES_SIZE = 16 + 4 * 16;

    /** The 120-byte {@code sd_stat} reply. Nothing flushes (every write is durable when it is answered): 0. */
    byte[] encode() {
        return encode(SD_STAT_SIZE);
    }

    /**
     * {@code sd_stat}, followed by the write stages if the client asked for at least {@link #SD_STAT_SIZE} +
     * {@link #TIMES_SIZE} bytes: gateway writes, peer writes, gateway local copies, gateway remote copies.
     */
    byte[] encode(int wanted) {
        byte[] stat = encodeStat();
        if (wanted < SD_STAT_SIZE + TIMES_SIZE) return stat;
        Stage[] stages = {gateway.writeTime, peer.writeTime, gatewayLocalCopy, gatewayRemoteCopies};
        ByteBuffer b = ByteBuffer.allocate(SD_STAT_SIZE + TIMES_SIZE).order(ByteOrder.LITTLE_ENDIAN).put(stat);
        b.putLong(TIMES_VERSION).putLong(stages.length);
        for (Stage st : stages) b.putLong(st.count()).putLong(st.nanos());
        return b.array();
    }

    private byte[] encodeStat() {
        long[] v = {gateway.active.get(), peer.active.get(), gateway.total.get(), peer.total.get(),
                gateway.rx.get(), gateway.tx.get(), peer.rx.get(), peer.tx.get(),
                gateway.remove.get(), gateway.read.get(), gateway.write.get(), 0,
                peer.remove.get(), peer.read.get(), peer.write.get()};
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long x : v) b.putLong(x);
        return b.array();
    }
}
