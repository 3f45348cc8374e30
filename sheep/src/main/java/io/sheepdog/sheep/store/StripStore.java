package io.sheepdog.sheep.store;

import io.sheepdog.proto.StripVersion;
import io.sheepdog.proto.StripVersion.State;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.zip.CRC32C;

/**
 * Versioned strips of erasure-coded objects (see {@link StripVersion}) on top of the object store. A strip's file
 * holds the strip's {@code size} bytes, then a trailer: a 512-byte header and two undo slots of {@code size} bytes
 * (sparse: only what was written takes space).
 *
 * <pre>
 *   header (little endian): magic u64 | base u64 | next u64 | off u32 | len u32 | crc u32 | undoCrc u32 | slot u32
 * </pre>
 *
 * A write moving a strip from version {@code base} to {@code next} first saves the bytes it replaces in the slot
 * the header does not name, then writes the header (which names that slot, the range and the CRC32C of the new
 * bytes), syncs, and only then writes the new bytes and syncs again. Whatever the moment a process or machine
 * dies, the strip afterwards shows one version exactly:
 * <ul>
 *   <li>the range holds bytes whose CRC is the header's: the write is complete; the strip is at {@code next} and can
 *       show {@code base} by laying the undo slot over the range;
 *   <li>it does not, and the undo slot matches its CRC: the write was cut short; the strip is at {@code base}, and
 *       the undo slot is copied back before anything else is done with it (repair);
 *   <li>neither: the header became durable but the new bytes were never written; the strip is at {@code base}.
 * </ul>
 */
public final class StripStore {
    static final int HEADER = 512;
    private static final long MAGIC = 0x5650495254534453L; // "SDSTRIPV" little endian
    private static final int LOCKS = 256;
    /** Most strips whose last write this process has seen complete, so their CRC need not be checked again. */
    private static final int MAX_VERIFIED = 65_536;

    private final ObjectStore store;
    private final ReentrantReadWriteLock[] locks = new ReentrantReadWriteLock[LOCKS];
    /** key -> the {@code next} of a header whose write is known to be complete (live strips only). */
    private final ConcurrentHashMap<Long, Long> verified = new ConcurrentHashMap<>();

    public StripStore(ObjectStore store) {
        this.store = store;
        for (int i = 0; i < LOCKS; i++) locks[i] = new ReentrantReadWriteLock();
    }

    /** A versioned write found the strip at another version than its base. */
    public static final class VersionConflict extends IOException {
        private final State state;

        VersionConflict(long key, State state, long base) {
            super(String.format("strip %s is at version %x, not %x", StoreKey.display(key), state.version(), base));
            this.state = state;
        }

        public State state() { return state; }
    }

    /** What a read found: the strip's state, and the bytes at the version asked for (null if it cannot show it). */
    public record Versioned(State state, byte[] data) {}

    /** The header as found, and what it means (see the class comment). */
    private record Trailer(long base, long next, int off, int len, int crc, int undoCrc, int slot, boolean complete,
            boolean torn) {
        static final Trailer NONE = new Trailer(0, 0, 0, 0, 0, 0, 0, true, false);

        /** A clean strip at {@code version} (slot 0 named, no write to undo). */
        static Trailer at(long version) { return new Trailer(version, version, 0, 0, 0, 0, 0, true, false); }

        long version() { return complete ? next : base; }

        State state() { return new State(version(), complete && base != next ? base : 0); }
    }

    private interface Source {
        byte[] read(long off, int len) throws IOException;
    }

    // ------------------------------------------------------------------ reads

    /** The live strip's state. @throws NoSuchObjectException if absent */
    public State state(long key, long size) throws IOException {
        return read(key, size, StripVersion.ANY, 0, 0).state();
    }

    /** Reads the live strip at version {@code want} ({@link StripVersion#ANY}: as it is). */
    public Versioned read(long key, long size, long want, long off, int len) throws IOException {
        ReentrantReadWriteLock l = lockOf(key);
        l.readLock().lock();
        try {
            Trailer t = load(key, size, live(key));
            if (!t.torn) return readAt(live(key), size, t, want, off, len);
        } finally {
            l.readLock().unlock();
        }
        l.writeLock().lock();
        try {
            Trailer t = repairIfTorn(key, size, load(key, size, live(key)));
            return readAt(live(key), size, t, want, off, len);
        } finally {
            l.writeLock().unlock();
        }
    }

    /** Reads the stale copy kept at {@code epoch} (0: the newest) at version {@code want}; null if there is none. */
    public Versioned readStale(long key, int epoch, long size, long want, long off, int len) throws IOException {
        Source s = (o, n) -> {
            byte[] b = store.readStale(key, epoch, o, n);
            if (b == null) throw new NoSuchObjectException(key);
            return b;
        };
        try {
            return readAt(s, size, load(-1, size, s), want, off, len);
        } catch (NoSuchObjectException e) {
            return null;
        }
    }

    private Versioned readAt(Source s, long size, Trailer t, long want, long off, int len) throws IOException {
        State st = t.state();
        boolean current = want == StripVersion.ANY || want == st.version();
        if (!current && !(st.undoTo() != 0 && want == st.undoTo())) return new Versioned(st, null);
        byte[] data = s.read(off, len);
        // the version before a complete write, or a torn one's range: the undo slot laid over the range
        if (!current || t.torn) overlayUndo(s, size, t, off, data);
        return new Versioned(st, data);
    }

    private static void overlayUndo(Source s, long size, Trailer t, long off, byte[] data) throws IOException {
        long from = Math.max(off, t.off), to = Math.min(off + data.length, (long) t.off + t.len);
        if (from >= to) return;
        byte[] undo = s.read(slotAt(size, t.slot) + (from - t.off), (int) (to - from));
        System.arraycopy(undo, 0, data, (int) (from - off), undo.length);
    }

    // ------------------------------------------------------------------ writes

    /**
     * Writes {@code data} at {@code off} moving the strip from {@code base} to {@code next}. A strip already at
     * {@code next} is left as it is (a retry of this write). {@code base} {@link StripVersion#ANY} writes whatever
     * version the strip is at; {@code next} ANY keeps its version (an unversioned write, from a peer that does not
     * version strips). Returns the strip's state afterwards.
     * @throws VersionConflict if the strip is at another version than {@code base}
     * @throws NoSuchObjectException if absent
     */
    public State write(long key, long size, long base, long next, long off, byte[] data) throws IOException {
        check(size, off, data.length);
        ReentrantReadWriteLock l = lockOf(key);
        l.writeLock().lock();
        try {
            Trailer t = repairIfTorn(key, size, load(key, size, live(key)));
            long cur = t.version();
            if (next != StripVersion.ANY && cur == next) return t.state();
            if (base != StripVersion.ANY && cur != base) throw new VersionConflict(key, t.state(), base);
            return writeOver(key, size, t, next == StripVersion.ANY ? cur : next, off, data, store.read(key, off, data.length));
        } finally {
            l.writeLock().unlock();
        }
    }

    /**
     * Moves a strip whose trailer is {@code t} (not torn) to version {@code to}, {@code old} being the bytes
     * {@code data} replaces; the caller holds its write lock.
     */
    private State writeOver(long key, long size, Trailer t, long to, long off, byte[] data, byte[] old) throws IOException {
        long cur = t.version();
        int slot = 1 - t.slot;
        verified.remove(key);
        // the undo bytes and the header that names them are durable before the strip's bytes change
        store.write(key, slotAt(size, slot), old, false);
        store.write(key, size, header(cur, to, (int) off, data.length, crc(data), crc(old), slot), true);
        store.write(key, off, data, true);
        remember(key, to);
        return new State(to, cur != to ? cur : 0);
    }

    /**
     * Creates the strip at {@code version} holding {@code image}, able to show {@code undoTo} as {@code undoImage}
     * (as if the write from one to the other had happened here): recovery rebuilds a strip of an object whose strips
     * are not all at one version this way, so the older version keeps as many strips as it had. False if the strip
     * exists (nothing changed).
     */
    public boolean createWithUndo(long key, long size, long undoTo, byte[] undoImage, long version, byte[] image) throws IOException {
        if (undoImage.length != size || image.length != size) throw new IllegalArgumentException("a strip image of " + size + " bytes");
        ReentrantReadWriteLock l = lockOf(key);
        l.writeLock().lock();
        try {
            verified.remove(key);
            if (!store.create(key, size, undoImage, 0, null, header(undoTo, undoTo, 0, 0, 0, 0, 0))) return false;
            writeOver(key, size, Trailer.at(undoTo), version, 0, image, undoImage);
            return true;
        } finally {
            l.writeLock().unlock();
        }
    }

    /**
     * Creates the strip at {@code version} with {@code data} at {@code off} (zeros elsewhere, or {@code image}
     * whole when not null); false if it exists (nothing changed).
     */
    public boolean create(long key, long size, long version, byte[] image, long off, byte[] data) throws IOException {
        check(size, off, data == null ? 0 : data.length);
        ReentrantReadWriteLock l = lockOf(key);
        l.writeLock().lock();
        try {
            verified.remove(key);
            return store.create(key, size, image, off, data, header(version, version, 0, 0, 0, 0, 0));
        } finally {
            l.writeLock().unlock();
        }
    }

    private static void check(long size, long off, int len) {
        if (off < 0 || off + len > size) {
            throw new IllegalArgumentException("strip access [" + off + ", " + (off + len) + ") beyond its " + size + " bytes");
        }
    }

    // ------------------------------------------------------------------ the trailer

    private Source live(long key) { return (o, n) -> store.read(key, o, n); }

    /** The trailer of a strip ({@code key} -1: a stale copy, never remembered as verified). */
    private Trailer load(long key, long size, Source s) throws IOException {
        ByteBuffer h = ByteBuffer.wrap(s.read(size, 44)).order(ByteOrder.LITTLE_ENDIAN);
        if (h.getLong(0) != MAGIC) return Trailer.NONE; // a strip without a version
        long base = h.getLong(8), next = h.getLong(16);
        int off = h.getInt(24), len = h.getInt(28), crc = h.getInt(32), undoCrc = h.getInt(36), slot = h.getInt(40) & 1;
        if (len == 0) return new Trailer(base, next, off, len, crc, undoCrc, slot, true, false);
        Long seen = key >= 0 ? verified.get(key) : null;
        if (seen != null && seen == next) return new Trailer(base, next, off, len, crc, undoCrc, slot, true, false);
        if (crc(s.read(off, len)) == crc) {
            if (key >= 0) remember(key, next);
            return new Trailer(base, next, off, len, crc, undoCrc, slot, true, false);
        }
        // the new bytes are not all there: cut short (undo slot intact), or never begun (undo slot not durable)
        boolean torn = crc(s.read(slotAt(size, slot), len)) == undoCrc;
        return new Trailer(base, next, off, len, crc, undoCrc, slot, false, torn);
    }

    /** Puts back the bytes a write that was cut short replaced; the strip is then at its base version, clean. */
    private Trailer repairIfTorn(long key, long size, Trailer t) throws IOException {
        if (!t.torn) return t;
        byte[] undo = store.read(key, slotAt(size, t.slot), t.len);
        store.write(key, t.off, undo, true);
        store.write(key, size, header(t.base, t.base, 0, 0, 0, 0, t.slot), true);
        return new Trailer(t.base, t.base, 0, 0, 0, 0, t.slot, true, false);
    }

    private static byte[] header(long base, long next, int off, int len, int crc, int undoCrc, int slot) {
        return ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN).putLong(MAGIC).putLong(base).putLong(next)
                .putInt(off).putInt(len).putInt(crc).putInt(undoCrc).putInt(slot).array();
    }

    private static long slotAt(long size, int slot) { return size + HEADER + (long) slot * size; }

    private void remember(long key, long next) {
        if (verified.size() >= MAX_VERIFIED) verified.clear();
        verified.put(key, next);
    }

    private static int crc(byte[] b) {
        CRC32C c = new CRC32C();
        c.update(b);
        return (int) c.getValue();
    }

    private ReentrantReadWriteLock lockOf(long key) {
        return locks[(int) ((key ^ (key >>> 29)) & (LOCKS - 1))];
    }
}
