package io.sheepdog.sheep.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.LongFunction;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A write-ahead journal for one store directory: small object writes are made durable by appending them to one
 * preallocated file and syncing that, so that concurrent writes to any objects share one fdatasync (group commit)
 * instead of one each per object file. The object files are written after the record is durable, without a sync of
 * their own; a checkpoint, when the journal is full, syncs every object file written since the last one and starts
 * the journal over. After a crash, {@link #open} replays the records of the current window into the object files
 * before the store serves anything.
 *
 * <p>Layout: a 4 KiB header (magic, format, the window's generation) and then records, each a 40-byte header (magic,
 * type, generation, object id, offset, length, CRC32C of header and data) and its data. Replay reads records from the
 * start while magic, generation and checksum hold: a torn record, or one left from an earlier window, ends it. A
 * record is acknowledged only after a sync that started after it and every record before it had been written
 * (appends are written in order, under one lock), so every acknowledged record is replayed.
 *
 * <p>A change to an object that does not go through the journal (a large write, a create, a remove, a move) must not
 * be undone by replaying older records over it: {@link #settle} syncs the object's file and appends a durable
 * FORGET record for it first, and replay drops the object's earlier records when it meets one.
 *
 * <p>The file is preallocated with zeros, so appends change no file metadata and fdatasync is a data write and a
 * cache flush.
 */
final class WriteJournal implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WriteJournal.class);

    static final int FILE_HEADER = 4096;
    static final int RECORD_HEADER = 40;
    private static final int FILE_MAGIC = 0x53444a46;     // "SDJF"
    private static final int RECORD_MAGIC = 0x53444a52;   // "SDJR"
    private static final int FORMAT = 1;
    private static final byte WRITE = 1;
    private static final byte FORGET = 2;
    /** The most data one record may carry (the store journals writes of up to 256 KiB). */
    static final int MAX_RECORD_DATA = 1 << 20;

    /** Where an object's file is now, or null if it has none. */
    interface Locator extends LongFunction<Path> {}

    private final Path file;
    private final FileChannel ch;
    private final long capacity;
    /** Most object files a window may have written (each holds a descriptor until the checkpoint). */
    private final int maxDirty;
    private final Locator locator;

    /** Writers hold it shared from their append until their object write is done; a checkpoint holds it alone. */
    private final ReentrantReadWriteLock window = new ReentrantReadWriteLock();
    private final ReentrantLock appendLock = new ReentrantLock();
    private long generation;     // guarded by appendLock (changed only under the window lock held alone)
    private volatile long position;   // written under appendLock
    private long appended;       // records written, guarded by appendLock
    private final ReentrantLock syncLock = new ReentrantLock();
    private volatile long synced;
    /** Object files written through the journal in this window, each with a channel opened before its first record. */
    private final Map<Long, FileChannel> dirty = new ConcurrentHashMap<>();
    private volatile boolean closed;
    /** The background sync of this window's files has been started (see {@link #presyncIfHalfFull}). */
    private volatile boolean presyncStarted;
    private static final int FORCE_LANES = 16;

    private WriteJournal(Path file, FileChannel ch, long capacity, int maxDirty, Locator locator, long generation) {
        this.file = file;
        this.ch = ch;
        this.capacity = capacity;
        this.maxDirty = maxDirty;
        this.locator = locator;
        this.generation = generation;
        this.position = FILE_HEADER;
    }

    /**
     * Opens (making it if needed) the journal at {@code file} of {@code capacity} bytes, replays the records of its
     * last window into the object files {@code locator} finds, syncs them, and starts a new window. A window ends
     * when it is full or has written {@code maxDirty} object files.
     */
    static WriteJournal open(Path file, long capacity, int maxDirty, Locator locator) throws IOException {
        if (capacity < FILE_HEADER + (1 << 20)) throw new IllegalArgumentException("journal too small: " + capacity);
        FileChannel ch;
        try {
            Files.createDirectories(file.getParent());
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw noRoomOr(e, capacity, file);    // a journal that cannot even be made holds no record
        }
        try {
            long generation = 0;
            if (ch.size() >= FILE_HEADER) {
                generation = readGeneration(ch);
                if (generation > 0) replay(ch, generation, locator);
            }
            if (ch.size() < capacity) preallocate(ch, capacity, file);
            WriteJournal j = new WriteJournal(file, ch, Math.min(capacity, ch.size()), maxDirty, locator, generation);
            j.startWindow();
            return j;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** The generation the header names, or 0 if it is not a journal header (new, or torn while a window started). */
    private static long readGeneration(FileChannel ch) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(24);
        readFully(ch, h, 0);
        h.flip();
        if (h.getInt() != FILE_MAGIC || h.getInt() != FORMAT) return 0;
        long generation = h.getLong();
        CRC32C crc = new CRC32C();
        crc.update(h.array(), 0, 16);
        return h.getInt() == (int) crc.getValue() ? generation : 0;
    }

    /**
     * Grows the file to {@code capacity} with zeros. Runs after any replay, so a {@link NoSpaceException} from here
     * says only that the journal does not fit: it holds no record that still matters (the store then runs without).
     */
    private static void preallocate(FileChannel ch, long capacity, Path file) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
        try {
            for (long pos = ch.size(); pos < capacity; ) {
                zeros.clear().limit((int) Math.min(zeros.capacity(), capacity - pos));
                pos += ch.write(zeros, pos);
            }
            ch.force(true);
        } catch (IOException e) {
            throw noRoomOr(e, capacity, file);
        }
    }

    /** {@code e} as a {@link NoSpaceException} if the file system is full, else as it is. */
    private static IOException noRoomOr(IOException e, long capacity, Path file) {
        return FileObjectStore.isNoSpace(e) ? new NoSpaceException("a " + capacity + " byte journal " + file, e) : e;
    }

    /**
     * Records of {@code generation} from the start, in order, up to the first that is not whole and of it. Two passes
     * over the file, in bounded memory: the first finds where the valid records end and each object's last FORGET,
     * the second writes every later WRITE into its object's file; then the files written are synced.
     */
    private static void replay(FileChannel ch, long generation, Locator locator) throws IOException {
        Map<Long, Long> lastForget = new HashMap<>();
        Scan scan = new Scan(ch, generation);
        long records = 0;
        while (scan.next()) {
            if (scan.type == FORGET) lastForget.put(scan.oid, records);
            records++;
        }
        long end = scan.pos;
        // at most one window's objects are named (a window ends at MAX_DIRTY files), so their channels stay open here
        Map<Long, FileChannel> written = new LinkedHashMap<>();
        Set<Long> gone = new HashSet<>();
        long applied = 0;
        try {
            scan = new Scan(ch, generation);
            for (long i = 0; i < records && scan.next() && scan.pos <= end; i++) {
                if (scan.type != WRITE || i < lastForget.getOrDefault(scan.oid, -1L) || gone.contains(scan.oid)) continue;
                FileChannel obj = written.get(scan.oid);
                if (obj == null) {
                    Path p = locator.apply(scan.oid);
                    if (p == null) {          // removed since (its FORGET was not needed: the file is gone)
                        gone.add(scan.oid);
                        continue;
                    }
                    obj = FileChannel.open(p, StandardOpenOption.WRITE);
                    written.put(scan.oid, obj);
                }
                ByteBuffer data = ByteBuffer.wrap(scan.data);
                long at = scan.offset;
                while (data.hasRemaining()) at += obj.write(data, at);
                applied++;
            }
            IOException failed = forceAll(List.copyOf(written.values()));
            if (failed != null) throw failed;
        } finally {
            written.values().forEach(WriteJournal::closeQuietly);
        }
        if (records > 0) {
            LOG.info("journal: {} records found, {} writes replayed into {} objects", records, applied, written.size());
        }
    }

    /** Reads the records of one generation in order; {@link #next} is false at the first that is not whole and of it. */
    private static final class Scan {
        private final FileChannel ch;
        private final long generation;
        private final long size;
        private final ByteBuffer h = ByteBuffer.allocate(RECORD_HEADER);
        long pos = FILE_HEADER;     // after the last record read
        byte type;
        long oid;
        long offset;
        byte[] data;

        Scan(FileChannel ch, long generation) throws IOException {
            this.ch = ch;
            this.generation = generation;
            this.size = ch.size();
        }

        boolean next() throws IOException {
            if (pos + RECORD_HEADER > size) return false;
            h.clear();
            readFully(ch, h, pos);
            h.flip();
            int magic = h.getInt();
            byte t = h.get();
            h.position(8);
            long gen = h.getLong();
            long o = h.getLong();
            long off = h.getLong();
            int length = h.getInt();
            int crc = h.getInt();
            if (magic != RECORD_MAGIC || gen != generation || length < 0 || length > MAX_RECORD_DATA
                    || pos + RECORD_HEADER + length > size || (t != WRITE && t != FORGET)) {
                return false;
            }
            ByteBuffer d = ByteBuffer.allocate(length);
            readFully(ch, d, pos + RECORD_HEADER);
            if (crc != checksum(h.array(), d.array(), length)) return false;
            type = t;
            oid = o;
            offset = off;
            data = d.array();
            pos += RECORD_HEADER + length;
            return true;
        }
    }

    /** A new window: the next generation in the header, durably, before any record of it is written. */
    private void startWindow() throws IOException {
        long next = generation + 1;
        ByteBuffer h = ByteBuffer.allocate(24);
        h.putInt(FILE_MAGIC).putInt(FORMAT).putLong(next);
        CRC32C crc = new CRC32C();
        crc.update(h.array(), 0, 16);
        h.putInt((int) crc.getValue());
        h.flip();
        writeFully(ch, h, 0);
        ch.force(false);
        generation = next;
        position = FILE_HEADER;
        presyncStarted = false;
    }

    /**
     * Makes the write of {@code data} at {@code offset} of object {@code oid} durable through the journal, then runs
     * {@code apply} (the write into the object file). The object's lock must be held (shared).
     */
    void write(long oid, long offset, byte[] data, IoAction apply) throws IOException {
        if (data.length > MAX_RECORD_DATA || RECORD_HEADER + data.length > capacity - FILE_HEADER) {
            throw new IllegalArgumentException("a journal record of " + data.length + " bytes");
        }
        while (true) {
            window.readLock().lock();
            try {
                boolean known = dirty.containsKey(oid);
                boolean room = known || dirty.size() < maxDirty;
                if (room && !known) {
                    Path p = locator.apply(oid);
                    if (p == null) throw new NoSuchObjectException(oid);
                    // opened before the first record, so its sync at the checkpoint sees any write-back error since
                    FileChannel c = FileChannel.open(p, StandardOpenOption.WRITE);
                    if (dirty.putIfAbsent(oid, c) != null) c.close();
                }
                long seq = room ? append(WRITE, oid, offset, data) : -1;
                if (seq >= 0) {
                    presyncIfHalfFull(position);
                    syncUpTo(seq);
                    apply.run();
                    return;
                }
            } finally {
                window.readLock().unlock();
            }
            checkpoint();       // full, or too many files open: settle everything written so far, then try again
        }
    }

    /**
     * Before {@code oid} changes outside the journal (the caller holds its lock alone): its file is synced and a
     * durable FORGET record keeps replay from writing its older records over what comes next.
     */
    void settle(long oid) throws IOException {
        window.readLock().lock();
        try {
            FileChannel c = dirty.get(oid);
            if (c == null) return;
            c.force(false);         // failed: the object stays dirty, and its records in the journal
            dirty.remove(oid);
            closeQuietly(c);
            long seq = append(FORGET, oid, 0, new byte[0]);
            if (seq >= 0) {
                syncUpTo(seq);
                return;
            }
        } finally {
            window.readLock().unlock();
        }
        checkpoint();           // no room for the FORGET: a new window forgets everything
    }

    /** Writes one record after the others; its sequence number, or -1 if the window is full. */
    private long append(byte type, long oid, long offset, byte[] data) throws IOException {
        // one buffer, one pwrite: the header and the data
        ByteBuffer r = ByteBuffer.allocate(RECORD_HEADER + data.length);
        appendLock.lock();
        try {
            if (closed) throw new IOException("journal " + file + " is closed");
            if (position + RECORD_HEADER + data.length > capacity) return -1;
            r.putInt(RECORD_MAGIC).put(type).put((byte) 0).putShort((short) 0).putLong(generation).putLong(oid)
                    .putLong(offset).putInt(data.length);
            r.putInt(checksum(r.array(), data, data.length));
            r.put(data);
            r.flip();
            writeFully(ch, r, position);
            position += RECORD_HEADER + data.length;
            return ++appended;
        } finally {
            appendLock.unlock();
        }
    }

    /** Group commit: one fdatasync covers every record written before it started. */
    private void syncUpTo(long seq) throws IOException {
        if (synced >= seq) return;
        syncLock.lock();
        try {
            if (synced >= seq) return;
            long target;
            appendLock.lock();
            try {
                target = appended;
            } finally {
                appendLock.unlock();
            }
            ch.force(false);
            synced = target;
        } finally {
            syncLock.unlock();
        }
    }

    /** Syncs every object file written in this window and starts the next one (its records are no longer needed). */
    void checkpoint() throws IOException {
        window.writeLock().lock();
        try {
            if (position == FILE_HEADER && dirty.isEmpty()) return;    // nothing written in this window
            List<FileChannel> files = List.copyOf(dirty.values());
            // a file that could not be synced keeps its records: the window stays, and the error goes to the writer
            IOException failed = forceAll(files);
            if (failed != null) throw failed;
            newWindow();
        } finally {
            window.writeLock().unlock();
        }
    }

    /** Lets go of the window's files and starts the next window; the window lock is held alone. */
    private void newWindow() throws IOException {
        dirty.values().forEach(WriteJournal::closeQuietly);
        dirty.clear();
        appendLock.lock();
        try {
            startWindow();
        } finally {
            appendLock.unlock();
        }
    }

    /**
     * Syncs {@code files}, several at a time (the device serves concurrent flushes together, so a checkpoint of many
     * files costs a few flush times, not one per file); the first failure, or null.
     */
    private static IOException forceAll(List<FileChannel> files) {
        if (files.isEmpty()) return null;
        int lanes = Math.min(FORCE_LANES, files.size());
        IOException[] failed = new IOException[lanes];
        Thread[] threads = new Thread[lanes];
        for (int lane = 0; lane < lanes; lane++) {
            int me = lane;
            threads[lane] = Thread.ofVirtual().name("journal-sync").start(() -> {
                for (int i = me; i < files.size(); i += lanes) {
                    try {
                        files.get(i).force(false);
                    } catch (IOException e) {
                        if (failed[me] == null) failed[me] = e;
                    }
                }
            });
        }
        boolean interrupted = false;
        for (Thread t : threads) {
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;   // the syncs must finish before the window may end: wait, then re-assert
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        for (IOException e : failed) if (e != null) return e;
        return null;
    }

    /**
     * Half way through a window, the files it wrote are synced in the background, so that the checkpoint at its end
     * finds little left to write and holds writers up for less time.
     */
    private void presyncIfHalfFull(long at) {
        if (presyncStarted || at < FILE_HEADER + (capacity - FILE_HEADER) / 2) return;
        presyncStarted = true;
        Thread.ofVirtual().name("journal-presync").start(() -> {
            window.readLock().lock();
            try {
                forceAll(List.copyOf(dirty.values()));   // failures show again at the checkpoint, which must succeed
            } finally {
                window.readLock().unlock();
            }
        });
    }

    /** Forgets everything (the store is being emptied): a new window, with nothing synced. */
    void discard() throws IOException {
        window.writeLock().lock();
        try {
            newWindow();
        } finally {
            window.writeLock().unlock();
        }
    }

    /** Syncs what is outstanding and closes; the records stay, so a crash right after loses nothing either. */
    @Override
    public void close() {
        try {
            checkpoint();
        } catch (IOException e) {
            LOG.warn("journal {}: final checkpoint failed, it will be replayed at the next start: {}", file, e.toString());
        }
        abandon();
    }

    /** As a crash leaves it: closed without a checkpoint, every record still there (tests; and {@link #close}). */
    void abandon() {
        appendLock.lock();
        try {
            closed = true;
        } finally {
            appendLock.unlock();
        }
        dirty.values().forEach(WriteJournal::closeQuietly);
        closeQuietly(ch);
    }

    private static void closeQuietly(FileChannel c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // closing only lets go of the descriptor: what mattered was synced before, or is in the journal
        }
    }

    @FunctionalInterface
    interface IoAction {
        void run() throws IOException;
    }

    private static int checksum(byte[] header, byte[] data, int length) {
        CRC32C crc = new CRC32C();
        crc.update(header, 0, RECORD_HEADER - 4);
        crc.update(data, 0, length);
        return (int) crc.getValue();
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, pos);
            if (n < 0) break;
            pos += n;
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) pos += ch.write(b, pos);
    }

}
