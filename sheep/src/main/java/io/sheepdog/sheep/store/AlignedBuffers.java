package io.sheepdog.sheep.store;

import java.nio.ByteBuffer;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The process's direct buffers aligned for O_DIRECT ({@link #BLOCK}): the ones a direct write copies a heap payload
 * into ({@link DirectWrites}), and the ones the I/O port reads a replica's payload into from its socket, so that the
 * bytes go from the socket to the disk in one buffer (net/IoPortServer). Two sizes: small ones (up to {@link #SMALL}
 * bytes), {@link #SMALL_POOLED} of them kept for reuse, and when all are out one of the payload's size is made
 * (dropped on return, for the collector); and large ones (up to {@link #LARGE}, an object), never more than {@link #LARGE_MADE}, so that the
 * direct memory they take stays bounded: a caller that finds none free does without (the page cache, a heap array).
 */
public final class AlignedBuffers {
    /** Alignment of offsets, lengths and buffers: a page, a multiple of any device's logical block. */
    public static final int BLOCK = 4096;
    /** The size of a small buffer. */
    public static final int SMALL = 256 << 10;
    /** The size of a large buffer: an object's 4 MiB (bench/RESULTS.md, "Direct writes", on why one pwrite). */
    public static final int LARGE = 4 << 20;
    private static final int SMALL_POOLED = 16;
    private static final int LARGE_MADE = 4;

    private static final ArrayBlockingQueue<ByteBuffer> SMALL_POOL = new ArrayBlockingQueue<>(SMALL_POOLED);
    private static final ArrayBlockingQueue<ByteBuffer> LARGE_POOL = new ArrayBlockingQueue<>(LARGE_MADE);
    private static final AtomicInteger LARGE_COUNT = new AtomicInteger();
    private static final AtomicInteger SMALL_COUNT = new AtomicInteger();

    private AlignedBuffers() {}

    /**
     * A buffer of at least {@code len} bytes (at most {@link #LARGE}), position 0 and limit {@code len}; null if
     * {@code len} needs a large one and all are in use. Give it back with {@link #release}.
     */
    public static ByteBuffer take(int len) {
        return take(len, true);
    }

    /**
     * As {@link #take}, but null rather than a buffer made for this payload alone when every pooled small one is in
     * use: for a caller that has an array to fall back on (the NBD front end), so that its payloads, already held in
     * the network's direct buffers, do not take direct memory twice in a burst.
     */
    public static ByteBuffer takePooled(int len) {
        return take(len, false);
    }

    private static ByteBuffer take(int len, boolean beyondPool) {
        if (len < 0 || len > LARGE) throw new IllegalArgumentException("aligned buffer of " + len + " bytes");
        ByteBuffer b;
        if (len <= SMALL) {
            b = SMALL_POOL.poll();
            if (b == null) {
                if (SMALL_COUNT.incrementAndGet() <= SMALL_POOLED) {
                    b = ByteBuffer.allocateDirect(SMALL + BLOCK).alignedSlice(BLOCK); // pooled on return
                } else if (!beyondPool) {
                    SMALL_COUNT.decrementAndGet();
                    return null;
                } else {
                    // all SMALL_POOLED out: one of the payload's own size (whole blocks), dropped on return, so that
                    // a burst of small writes takes about the memory admitted for its payloads, not SMALL each
                    SMALL_COUNT.decrementAndGet();
                    b = ByteBuffer.allocateDirect(Math.max(BLOCK, (len + BLOCK - 1) / BLOCK * BLOCK) + BLOCK).alignedSlice(BLOCK);
                }
            }
        } else {
            b = LARGE_POOL.poll();
            if (b == null) {
                if (LARGE_COUNT.incrementAndGet() > LARGE_MADE) {
                    LARGE_COUNT.decrementAndGet();
                    return null;
                }
                b = ByteBuffer.allocateDirect(LARGE + BLOCK).alignedSlice(BLOCK);
            }
        }
        return b.clear().limit(len);
    }

    /** Gives back a buffer from {@link #take}; null is ignored. */
    public static void release(ByteBuffer b) {
        if (b == null) return;
        if (b.capacity() >= LARGE) LARGE_POOL.offer(b); // one of the LARGE_MADE: there is always room
        else if (b.capacity() >= SMALL) SMALL_POOL.offer(b); // one of the SMALL_POOLED: there is always room
        // (smaller ones were made for one payload: dropped, for the collector)
    }

    /** Whether {@code b} is one a direct write can take as it is: direct, aligned, a whole number of blocks. */
    static boolean writable(ByteBuffer b) {
        return b.isDirect() && b.position() == 0 && b.alignmentOffset(0, BLOCK) == 0 && b.remaining() % BLOCK == 0;
    }
}
