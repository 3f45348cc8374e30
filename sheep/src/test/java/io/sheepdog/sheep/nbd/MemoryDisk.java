package io.sheepdog.sheep.nbd;

import io.netty.buffer.ByteBuf;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A RAM disk for tests: bytes plus an allocation map of 64 KiB chunks (never-written and trimmed chunks are holes
 * that read as zeroes), with counters the tests check.
 */
final class MemoryDisk {
    static final int CHUNK = 64 * 1024;

    final String name;
    final byte[] data;
    private final BitSet allocated = new BitSet();
    final boolean readOnly;
    final boolean multiConn;
    final boolean exclusiveWriter;
    final AtomicInteger flushes = new AtomicInteger();
    final AtomicInteger fuaWrites = new AtomicInteger();
    final AtomicInteger openCount = new AtomicInteger();
    final AtomicInteger writers = new AtomicInteger();
    /** Added to every request's service time, to force many requests in flight. */
    volatile long delayMillis;

    MemoryDisk(String name, int size, boolean readOnly, boolean multiConn, boolean exclusiveWriter) {
        this.name = name;
        this.data = new byte[size];
        this.readOnly = readOnly;
        this.multiConn = multiConn;
        this.exclusiveWriter = exclusiveWriter;
    }

    static MemoryDisk of(String name, int size) { return new MemoryDisk(name, size, false, true, false); }

    synchronized byte[] snapshot() { return data.clone(); }

    synchronized boolean isAllocated(long offset) { return allocated.get((int) (offset / CHUNK)); }

    /** Fills the disk with bytes and marks it all allocated. */
    synchronized void fill(byte[] content) {
        System.arraycopy(content, 0, data, 0, content.length);
        allocated.set(0, (int) ((content.length + CHUNK - 1L) / CHUNK));
    }

    void read(long offset, int length, ByteBuf dst) {
        pause();
        dst.writeBytes(data, (int) offset, length);
    }

    void write(long offset, ByteBuf src, boolean fua) {
        pause();
        int len = src.readableBytes();
        src.getBytes(src.readerIndex(), data, (int) offset, len);
        synchronized (this) {
            allocated.set((int) (offset / CHUNK), (int) ((offset + len + CHUNK - 1) / CHUNK));
        }
        if (fua) fuaWrites.incrementAndGet();
    }

    /** Zeroes a range; whole chunks inside it become holes unless {@code keepAllocated}. */
    void zero(long offset, long length, boolean keepAllocated) {
        pause();
        Arrays.fill(data, (int) offset, (int) (offset + length), (byte) 0);
        synchronized (this) {
            long first = (offset + CHUNK - 1) / CHUNK;
            long end = (offset + length) / CHUNK;
            if (!keepAllocated && first < end) allocated.clear((int) first, (int) end);
            if (keepAllocated) allocated.set((int) (offset / CHUNK), (int) ((offset + length + CHUNK - 1) / CHUNK));
        }
    }

    synchronized List<NbdExtent> allocation(long offset, long length) {
        List<NbdExtent> out = new ArrayList<>();
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            int chunk = (int) (pos / CHUNK);
            boolean a = allocated.get(chunk);
            long chunkEnd = Math.min(end, (chunk + 1L) * CHUNK);
            out.add(a ? NbdExtent.data(chunkEnd - pos) : NbdExtent.hole(chunkEnd - pos));
            pos = chunkEnd;
        }
        return out;
    }

    private void pause() {
        long d = delayMillis;
        if (d > 0) {
            try {
                Thread.sleep(d);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
