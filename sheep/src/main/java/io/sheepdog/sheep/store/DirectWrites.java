package io.sheepdog.sheep.store;

import com.sun.nio.file.ExtendedOpenOption;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Durable writes of whole blocks past the page cache (O_DIRECT), then an fdatasync that has no dirty pages to write
 * and only flushes the device's cache. A buffered 4 KiB write costs the kernel a page-cache update (and, in the large
 * folios a sequential fill leaves, a walk over every block of the folio) and its fdatasync a write-back; measured
 * on the machine of bench/RESULTS.md, qemu-nbd with O_DIRECT and a flush per write did 4x the 4 KiB random writes of
 * qemu-nbd writing through the page cache, at a quarter of its CPU per write.
 *
 * <p>Only whole, aligned blocks go this way, each write in one pwrite (a large one through one of a few large buffers,
 * or through the page cache when all are in use); anything else is written through the page cache as before. Direct
 * writes to an object run beside each other, but while they are on a write through the page cache takes the
 * object's exclusive lock (FileObjectStore.write), so it never runs at the same time as a direct one: a page it
 * dirtied while a direct write covers it could be written back over the direct write's bytes. A file system that
 * refuses O_DIRECT turns this off for the store, once, said in the log.
 */
final class DirectWrites {
    private static final Logger LOG = LoggerFactory.getLogger(DirectWrites.class);
    /** Alignment of offsets, lengths and buffers: a page, a multiple of any device's logical block. */
    static final int BLOCK = AlignedBuffers.BLOCK;
    /**
     * The largest write that goes this way, in one pwrite (so that the device sees it whole): an object's 4 MiB, as in
     * the bench run of record (bench/RESULTS.md, "Direct writes"). 1 MiB buffers (4 MiB less direct memory each) were
     * tried: 1 MiB sequential writes were no faster in two A/B runs. The buffers are {@link AlignedBuffers}'s.
     */
    static final int LARGE = AlignedBuffers.LARGE;

    private volatile boolean enabled;

    /**
     * @param enabled whether to try at all (a store with a journal or without syncs does not)
     * @param dir     the store's directory: its file system's block size must divide {@link #BLOCK}
     */
    DirectWrites(boolean enabled, Path dir) {
        if (enabled) {
            try {
                long bs = Files.getFileStore(dir).getBlockSize();
                if (bs <= 0 || bs > BLOCK || BLOCK % bs != 0) {
                    LOG.info("direct writes are off: {} has {} byte blocks", dir, bs);
                    enabled = false;
                }
            } catch (IOException | UnsupportedOperationException e) {
                LOG.info("direct writes are off: the block size of {} is unknown ({})", dir, e.toString());
                enabled = false;
            }
        }
        this.enabled = enabled;
    }

    boolean enabled() { return enabled; }

    /** Writes done this way so far. */
    long done() { return done.sum(); }

    private final LongAdder done = new LongAdder();

    /** Whether a write of {@code len} bytes at {@code offset} may go past the page cache. */
    boolean fits(long offset, int len) {
        return enabled && len > 0 && len <= LARGE && (offset % BLOCK) == 0 && (len % BLOCK) == 0;
    }

    /**
     * Opens {@code file} for direct writes. Null if its file system refuses O_DIRECT (then direct writes are off from
     * now on) or the open failed otherwise (out of descriptors, say: this write goes through the page cache).
     */
    FileChannel open(Path file) throws IOException {
        if (!enabled) return null;
        try {
            return FileChannel.open(file, StandardOpenOption.WRITE, ExtendedOpenOption.DIRECT);
        } catch (NoSuchFileException e) {
            throw e;
        } catch (UnsupportedOperationException | IOException e) {
            if (refusal(e)) {
                disable(file.getParent() + " refuses O_DIRECT (" + e + ")");
            } else {
                LOG.debug("cannot open {} for direct writes: {}", file, e.toString());
            }
            return null;
        }
    }

    /**
     * Writes {@code data} at {@code offset} through {@code ch}, copied into an aligned buffer; false if it cannot (no
     * channel, every large buffer in use, or the file system refused the direct write: then the caller writes through
     * the page cache, and after a refusal so does every later write).
     */
    boolean write(FileChannel ch, byte[] data, long offset) throws IOException {
        if (ch == null) return false;
        ByteBuffer b = AlignedBuffers.take(data.length);
        if (b == null) return false; // every large buffer is in use: through the page cache
        try {
            b.put(data).flip();
            return write(ch, b, offset);
        } finally {
            AlignedBuffers.release(b);
        }
    }

    /**
     * Writes {@code b} (aligned, from {@link AlignedBuffers}: {@link AlignedBuffers#writable}) at {@code offset}
     * through {@code ch} as it is, without a copy; false as for the byte[] form. {@code b}'s position is left as it
     * was.
     */
    boolean write(FileChannel ch, ByteBuffer b, long offset) throws IOException {
        if (ch == null) return false;
        ByteBuffer d = b.duplicate();
        try {
            long pos = offset;
            while (d.hasRemaining()) pos += ch.write(d, pos);
            done.increment();
            return true;
        } catch (IOException e) {
            // nothing was written if the kernel refused the alignment; an I/O error is the disk's and is reported
            if (!refusal(e)) throw e;
            disable("a direct write was refused (" + e + ")");
            return false;
        }
    }

    /** EINVAL from open or write: O_DIRECT (or its alignment) is not for this file system. */
    private static boolean refusal(Exception e) {
        return e instanceof UnsupportedOperationException || String.valueOf(e.getMessage()).contains("Invalid argument")
                || String.valueOf(e.getMessage()).contains("multiple of the block size");
    }

    private void disable(String why) {
        if (enabled) LOG.info("direct writes are off: {}", why);
        enabled = false;
    }
}
