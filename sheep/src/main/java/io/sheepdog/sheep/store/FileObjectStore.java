package io.sheepdog.sheep.store;

import io.sheepdog.proto.Oids;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileStore;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The file store: one file per object, named {@code %016x}, under {@code obj/} ("plain" layout) or in its
 * subdirectories ("tree" layout, see {@link Layout}); stale copies under {@code obj/.stale/<oid>.<epoch>}. Creation
 * goes through {@code <oid>.tmp} and an atomic rename, so a crash never leaves a half-made object. Writes are made
 * durable with fdatasync, batched per file: a writer whose bytes were covered by a sync another writer started after
 * them does not sync again (group commit).
 */
public final class FileObjectStore implements ObjectStore {
    private static final Logger LOG = LoggerFactory.getLogger(FileObjectStore.class);
    private static final int STRIPES = 256;
    /** Fewest object files kept open, whatever the descriptor limit. */
    private static final int MIN_OPEN = 64;
    /** Most object files kept open (each costs a descriptor and a few hundred bytes of heap). */
    private static final int MAX_OPEN = 32_768;

    private final Path dir;
    private final Path staleDir;
    /** The tree layout's directories: inode, vmstate and attribute objects; the others by the low byte of their VID. */
    private final Path metaDir;
    private final Path[] vidDirs = new Path[256];
    /** metaDir and the vidDirs: where the tree layout keeps object files. */
    private final List<Path> treeDirs;
    private volatile Layout layout = Layout.PLAIN;
    private final boolean sync;
    /** Small writes go through it (group commit); null with {@code -n} or when it is switched off. */
    private final WriteJournal journal;
    /**
     * The store directory's identity (device and inode) when it was opened: a directory removed and made again, or a
     * file system unmounted from under it (the empty mount point showing through), has another one.
     */
    private final Object dirKey;
    /** Open files looked at per {@link #dropVanished} call, and where the next call starts. */
    private static final int VANISHED_CHECKS = 4096;
    private long vanishedCursor;
    private final ReentrantReadWriteLock[] stripes = new ReentrantReadWriteLock[STRIPES];
    /** Open object files: a bounded LRU cache, so that the inodes and objects in use are not reopened per request. */
    private final HandleCache<Handle> open;

    /**
     * Where object files live. {@code PLAIN}: all in {@code obj/}. {@code TREE} (docs/daemon.md §3, {@code dog cluster
     * format -b tree}): inode, vmstate and attribute objects in {@code obj/meta/}, every other object in
     * {@code obj/<xx>/}, xx being the low byte of its VDI id in two hex digits, which keeps each directory small on a
     * store of millions of objects.
     */
    public enum Layout {
        PLAIN, TREE;

        /** The layout of a store driver name as {@code dog cluster format -b} gives it; null if there is none. */
        public static Layout ofDriver(String name) {
            return switch (name) {
                case "", "plain" -> PLAIN;
                case "tree" -> TREE;
                default -> null;
            };
        }
    }

    /** An open object file and its group-commit state. */
    private static final class Handle {
        final FileChannel ch;
        /** The same file opened with O_DIRECT, for whole-block writes; opened on first use, guarded by this. */
        FileChannel direct;
        final ReentrantLock syncLock = new ReentrantLock();
        long written;     // guarded by this
        volatile long synced;

        Handle(FileChannel ch) { this.ch = ch; }

        void close() {
            closeQuietly(ch);
            FileChannel d;
            synchronized (this) { d = direct; }
            if (d != null) closeQuietly(d);
        }

        synchronized long markWritten() { return ++written; }
        synchronized long currentWritten() { return written; }
    }

    /**
     * The journal's size when {@code sheep --journal} is not given: {@code -Dsheepdog.journalBytes}, else 0 (none).
     * Off by default because it did not win on the machines measured (bench/RESULTS.md, "The write journal"): there a
     * replicated write is bound by CPU, not by its syncs.
     */
    public static final long DEFAULT_JOURNAL_BYTES = Long.getLong("sheepdog.journalBytes", 0);
    /** Writes up to this size go through the journal; larger ones are written and synced in their object file. */
    static final int JOURNAL_MAX_WRITE = 256 << 10;

    public FileObjectStore(Path objDir, boolean sync) throws IOException {
        this(objDir, sync, defaultOpenFiles(), DEFAULT_JOURNAL_BYTES);
    }

    /** @param maxOpen how many object files to keep open at most (least recently used ones are closed) */
    FileObjectStore(Path objDir, boolean sync, int maxOpen) throws IOException {
        this(objDir, sync, maxOpen, DEFAULT_JOURNAL_BYTES);
    }

    /**
     * @param journalBytes the size of the write journal in {@code <objDir>/.journal/} (0: none, every write synced
     *                     in its object file); unused without {@code sync}
     */
    FileObjectStore(Path objDir, boolean sync, int maxOpen, long journalBytes) throws IOException {
        this(objDir, sync, maxOpen, journalBytes, DIRECT_WRITES);
    }

    /** @param directWrites whether durable whole-block writes may bypass the page cache ({@link DirectWrites}) */
    FileObjectStore(Path objDir, boolean sync, int maxOpen, long journalBytes, boolean directWrites) throws IOException {
        this.dir = objDir;
        this.staleDir = objDir.resolve(".stale");
        this.metaDir = objDir.resolve("meta");
        for (int i = 0; i < vidDirs.length; i++) vidDirs[i] = objDir.resolve(String.format("%02x", i));
        List<Path> tree = new ArrayList<>(List.of(vidDirs));
        tree.addFirst(metaDir);
        this.treeDirs = List.copyOf(tree);
        this.sync = sync;
        Files.createDirectories(staleDir);
        // direct writes: a second descriptor for each object written, so half as many objects are kept open
        this.direct = new DirectWrites(sync && journalBytes <= 0 && directWrites, objDir);
        this.open = new HandleCache<>(direct.enabled() ? Math.max(1, maxOpen / 2) : maxOpen);
        this.dirKey = Files.readAttributes(objDir, BasicFileAttributes.class).fileKey();
        for (int i = 0; i < STRIPES; i++) stripes[i] = new ReentrantReadWriteLock();
        cleanTmp();
        this.journal = sync && journalBytes > 0
                ? openJournal(objDir.resolve(".journal").resolve("records"), journalBytes, Math.max(16, Math.min(1024, maxOpen / 4)))
                : null;
    }

    /**
     * Whether durable writes of whole 4 KiB blocks bypass the page cache (see {@link DirectWrites}) when
     * {@code sheep --no-directio} does not say otherwise: on unless {@code -Dsheepdog.directWrites=false}. Never with
     * a journal or without syncs ({@code -n}).
     */
    public static final boolean DIRECT_WRITES = !"false".equals(System.getProperty("sheepdog.directWrites"));
    private final DirectWrites direct;

    /**
     * Opens the journal, replaying what a crash left in it. A file system too full for it leaves the store without
     * one (every write then synced in its object file, as with {@code --journal off}), said in the log.
     */
    private WriteJournal openJournal(Path file, long bytes, int maxDirty) throws IOException {
        try {
            WriteJournal j = WriteJournal.open(file, bytes, maxDirty, this::locate);
            LOG.info("write journal {} ({} MiB)", file, bytes >> 20);
            return j;
        } catch (NoSpaceException e) {
            // only making or growing the file says this, never a replay: nothing in it is needed any more
            Files.deleteIfExists(file);
            LOG.warn("no room for a {} byte journal in {}: writes are synced in their object files", bytes, dir);
            return null;
        }
    }

    /** The object's file under either layout (replay runs before the layout is known), or null if it has none. */
    private Path locate(long oid) {
        String name = StoreKey.fileName(oid);
        Path plain = dir.resolve(name);
        if (Files.exists(plain)) return plain;
        Path tree = treeParentOf(oid).resolve(name);
        return Files.exists(tree) ? tree : null;
    }

    /** Closes as a crash would: the journal keeps its records, nothing more is synced (tests). */
    void abandon() {
        if (journal != null) journal.abandon();
        closeAll(open.clear());
    }

    /** Whether the store writes through a journal. */
    public boolean journaled() { return journal != null; }

    /** Whether durable whole-block writes go past the page cache (tests). */
    boolean directWrites() { return direct.enabled(); }

    /** How many writes went past the page cache (tests). */
    long directWritesDone() { return direct.done(); }

    /**
     * Before {@code oid}'s file changes outside the journal: see {@link WriteJournal#settle}. The object's lock must be
     * held alone.
     */
    private void settle(long oid) throws IOException {
        if (journal != null) journal.settle(oid);
    }

    /**
     * Three quarters of the process's file descriptor limit (the JVM raises the soft limit to the hard one), the rest
     * left for sockets and the JVM's own files, within [{@link #MIN_OPEN}, {@link #MAX_OPEN}]. A cache smaller than the
     * set of objects read in turn misses on every read (`dog vdi list` reads every inode in order), so it should be
     * as large as the limit allows: with the common limits (4 096 to 1 048 576) that is 3 072 to 32 768 files.
     */
    static int defaultOpenFiles() {
        return (int) Math.max(MIN_OPEN, Math.min(MAX_OPEN, openFilesLimit() / 4 * 3));
    }

    /** The soft limit on open files from /proc/self/limits (Linux), 4 096 where that cannot be read. */
    static long openFilesLimit() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
                if (!line.startsWith("Max open files")) continue;
                String[] f = line.substring("Max open files".length()).trim().split("\\s+");
                return f[0].equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(f[0]);
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or an unexpected format
        }
        return 4096;
    }

    /** Objects being created when the process died are not objects: drop them (under either layout). */
    private void cleanTmp() throws IOException {
        for (Path d : allObjectDirs()) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(d, "*.tmp")) {
                for (Path p : ds) {
                    LOG.info("removing unfinished object {}", p.getFileName());
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    public Path dir() { return dir; }

    public Layout layout() { return layout; }

    /**
     * Stores objects with {@code l} from now on. Called at start-up with the layout the store was formatted with,
     * and by a format, after {@link #wipe}: objects are never moved from one layout to the other.
     */
    public void useLayout(Layout l) throws IOException {
        if (l == layout) return;
        List<Long> held = list();
        if (!held.isEmpty()) {
            throw new IOException("the store holds " + held.size() + " objects in the "
                    + layout.name().toLowerCase(Locale.ROOT) + " layout");
        }
        if (l == Layout.TREE) {
            for (Path d : treeDirs) Files.createDirectories(d);
        }
        layout = l;
    }

    /** The directories that hold object files under the current layout. */
    private List<Path> objectDirs() {
        return layout == Layout.PLAIN ? List.of(dir) : treeDirs;
    }

    /** Every directory that holds object files under either layout and exists. */
    private List<Path> allObjectDirs() {
        List<Path> out = new ArrayList<>();
        out.add(dir);
        for (Path d : treeDirs) if (Files.isDirectory(d)) out.add(d);
        return out;
    }

    private Path parentOf(long oid) {
        return layout == Layout.PLAIN ? dir : treeParentOf(oid);
    }

    /** Where the tree layout keeps {@code oid}'s file. */
    private Path treeParentOf(long oid) {
        if (Oids.isInode(oid) || Oids.isVmstate(oid) || Oids.isAttr(oid)) return metaDir;
        return vidDirs[(int) (oid >>> Oids.VDI_SPACE_SHIFT) & 0xff];
    }

    private ReentrantReadWriteLock lockOf(long oid) {
        return stripes[(int) ((oid ^ (oid >>> 32)) & (STRIPES - 1))];
    }

    private Path path(long oid) { return parentOf(oid).resolve(StoreKey.fileName(oid)); }

    private Handle handle(long oid) throws IOException {
        Handle h = open.get(oid);
        if (h != null) {
            if (h.ch.isOpen()) return h;
            // closed while cached: a thread interrupted in its I/O on it closes the channel for every user
            // (ClosedByInterruptException). Open the file anew rather than fail every later request on the object
            // with an I/O error. (Trims and removals take a handle out of the cache before they close it.)
            if (open.remove(oid, h)) h.close();
        }
        FileChannel ch = openChannel(oid);
        Handle fresh = new Handle(ch);
        Handle prev = open.putIfAbsent(oid, fresh);
        if (prev != null) {
            ch.close();
            return prev;
        }
        if (open.overCapacity()) closeAll(open.trim(this::idle));
        return fresh;
    }

    private FileChannel openChannel(long oid) throws IOException {
        for (int attempt = 0; ; attempt++) {
            try {
                return FileChannel.open(path(oid), StandardOpenOption.READ, StandardOpenOption.WRITE);
            } catch (NoSuchFileException e) {
                throw new NoSuchObjectException(oid);
            } catch (FileSystemException e) {
                // out of file descriptors (a lower limit than the cache was sized for, or many sockets): give back
                // half of the cached handles and try once more
                if (attempt > 0 || !String.valueOf(e.getMessage()).contains("Too many open files")) throw e;
                LOG.warn("out of file descriptors with {} object files open: closing half of them", open.size());
                closeAll(open.trimTo(open.size() / 2, this::idle));
            }
        }
    }

    /**
     * Whether the handle of {@code oid} may be closed now: nobody holds the object's lock. Readers and writers use a
     * handle only under the read lock, and take it from the cache under the cache's own lock, which the trim that
     * calls this holds, so a handle found idle here stays unused until it is out of the cache.
     */
    private boolean idle(long oid, Handle h) {
        ReentrantReadWriteLock l = lockOf(oid);
        // the trimming thread may hold this stripe's write lock itself (a buffered write beside direct ones), and
        // tryLock would then succeed: the object it is writing is not idle
        if (l.isWriteLockedByCurrentThread() || !l.writeLock().tryLock()) return false;
        l.writeLock().unlock();
        return true;
    }

    private static void closeAll(List<Handle> handles) {
        for (Handle h : handles) h.close();
    }

    private void dropHandle(long oid) {
        Handle h = open.remove(oid);
        if (h != null) h.close();
    }

    private static void closeQuietly(FileChannel ch) {
        try { ch.close(); } catch (IOException ignored) { }
    }

    @Override
    public boolean exists(long oid) {
        return open.contains(oid) || Files.exists(path(oid));
    }

    @Override
    public byte[] read(long oid, long offset, int len) throws IOException {
        ReentrantReadWriteLock l = lockOf(oid);
        l.readLock().lock();
        try {
            Handle h = handle(oid);
            byte[] out = new byte[len];
            readFully(h.ch, ByteBuffer.wrap(out), offset);
            return out;
        } finally {
            l.readLock().unlock();
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, pos);
            if (n < 0) break; // past EOF: the rest stays zero
            pos += n;
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) pos += ch.write(b, pos);
    }

    @Override
    public void write(long oid, long offset, byte[] data, boolean durable) throws IOException {
        ReentrantReadWriteLock l = lockOf(oid);
        boolean journaled = journal != null && data.length <= JOURNAL_MAX_WRITE;
        if (journal != null && !journaled) {
            // a large write goes to the object file: older journal records of the object must not be replayed over it
            l.writeLock().lock();
            try {
                settle(oid);
            } finally {
                l.writeLock().unlock();
            }
        }
        if (journaled) {
            l.readLock().lock();
            try {
                Handle h = handle(oid);
                // durable once its record is (whatever durable says: then no write of the file is ever only cached
                // when a later one is durable, which the erasure-coded strips' undo records rely on)
                journal.write(oid, offset, data, () -> writeFully(h.ch, ByteBuffer.wrap(data), offset));
            } catch (IOException e) {
                throw translate(e, oid);
            } finally {
                l.readLock().unlock();
            }
            return;
        }
        boolean synced = sync && (durable || journal != null);
        if (synced && direct.fits(offset, data.length) && writeDirect(oid, ch -> direct.write(ch, data, offset))) return;
        // Through the page cache. While direct writes are on, alone on the object: a page this dirties while a direct
        // write covers it could later be written back over that write's bytes. The sync runs beside the others.
        boolean alone = direct.enabled();
        (alone ? l.writeLock() : l.readLock()).lock();
        Handle h;
        long seq;
        try {
            h = handle(oid);
            writeFully(h.ch, ByteBuffer.wrap(data), offset);
            seq = h.markWritten();
        } catch (IOException e) {
            (alone ? l.writeLock() : l.readLock()).unlock();
            throw translate(e, oid);
        } catch (RuntimeException | Error e) {
            (alone ? l.writeLock() : l.readLock()).unlock();
            throw e;
        }
        if (alone) {
            l.readLock().lock(); // downgraded
            l.writeLock().unlock();
        }
        try {
            if (synced) syncUpTo(h, seq, oid);
        } finally {
            l.readLock().unlock();
        }
    }

    /**
     * From an aligned buffer ({@link AlignedBuffers}), a durable write of whole blocks goes to the disk as it is (no
     * copy); anything else as the byte[] form does, copied.
     */
    @Override
    public void write(long oid, long offset, ByteBuffer data, boolean durable) throws IOException {
        if (journal == null && sync && durable && direct.fits(offset, data.remaining()) && AlignedBuffers.writable(data)
                && writeDirect(oid, ch -> direct.write(ch, data, offset))) {
            return;
        }
        ObjectStore.super.write(oid, offset, data, durable);
    }

    private interface DirectWrite {
        boolean to(FileChannel ch) throws IOException;
    }

    /**
     * A write past the page cache, then the device's cache flushed (DirectWrites), beside other direct writes of the
     * object; false if it could not go that way (then it goes through the page cache).
     */
    private boolean writeDirect(long oid, DirectWrite how) throws IOException {
        ReentrantReadWriteLock l = lockOf(oid);
        l.readLock().lock();
        try {
            Handle h = handle(oid);
            boolean done;
            try {
                done = how.to(directChannel(h, oid));
            } catch (IOException e) {
                throw translate(e, oid);
            }
            if (done) syncUpTo(h, h.markWritten(), oid);
            return done;
        } finally {
            l.readLock().unlock();
        }
    }

    /** The object's O_DIRECT descriptor, opened on first use (null if the file system refuses O_DIRECT). */
    private FileChannel directChannel(Handle h, long oid) throws IOException {
        synchronized (h) {
            if (h.direct == null) h.direct = direct.open(path(oid));
            return h.direct;
        }
    }

    /** Group commit: one fdatasync covers every write that completed before it started. */
    private void syncUpTo(Handle h, long seq, long oid) throws IOException {
        if (h.synced >= seq) return;
        h.syncLock.lock();
        try {
            if (h.synced >= seq) return;
            long target = h.currentWritten();
            try {
                h.ch.force(false);
            } catch (IOException e) {
                throw translate(e, oid);
            }
            h.synced = target;
        } finally {
            h.syncLock.unlock();
        }
    }

    @Override
    public void probe() throws IOException {
        checkIdentity();
        if (!Files.isDirectory(staleDir)) restoreSubdirectory(staleDir);
        DirProbe.probe(dir);
    }

    /**
     * Closes the open files of objects whose file is no longer there (removed under the node while it had them open:
     * writes to them would go to a file nobody can read back). The objects then read as absent, and recovery brings
     * them back. Returns how many there were. One stat per open file, at most {@value #VANISHED_CHECKS} of them per
     * call (the next call goes on where this one stopped): called every few seconds.
     */
    public int dropVanished() {
        int n = 0;
        long[] keys = open.keys();
        int from = keys.length == 0 ? 0 : (int) (vanishedCursor % keys.length);
        int count = Math.min(keys.length, VANISHED_CHECKS);
        vanishedCursor = from + count;
        for (int i = 0; i < count; i++) {
            long key = keys[(from + i) % keys.length];
            if (Files.exists(path(key))) continue;
            ReentrantReadWriteLock l = lockOf(key);
            l.writeLock().lock();
            try {
                if (Files.exists(path(key))) continue; // made again meanwhile
                try {
                    settle(key);
                } catch (IOException e) {
                    LOG.warn("cannot settle the journal records of vanished {}: {}", StoreKey.fileName(key), e.toString());
                }
                dropHandle(key);
                n++;
            } finally {
                l.writeLock().unlock();
            }
        }
        if (n > 0) LOG.warn("{} object files were removed under {} while open: their objects are absent now", n, dir);
        return n;
    }

    /**
     * Makes a subdirectory of the store again ({@code .stale}, a tree layout directory) that was removed under the
     * node, when the store directory itself is still the one opened (never a store directory that was replaced).
     */
    private void restoreSubdirectory(Path sub) throws IOException {
        checkIdentity();
        try {
            Files.createDirectory(sub);
            LOG.warn("{} was removed under the store: made again", sub);
        } catch (FileAlreadyExistsException raced) {
            // another thread made it
        }
    }

    /**
     * Throws if the store directory is gone or is no longer the one opened (removed and made again, or its file system
     * unmounted): objects still open there would take writes that nobody can read back.
     */
    public void checkIdentity() throws IOException {
        Object now;
        try {
            now = Files.readAttributes(dir, BasicFileAttributes.class).fileKey();
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(dir + " (the store directory is gone)");
        }
        if (dirKey != null && !dirKey.equals(now)) {
            throw new FileSystemException(dir + " (not the directory the store opened: removed, replaced or unmounted)");
        }
    }

    /**
     * Copies object {@code key} from {@code src} (another disk of this node) as a new object here, atomically and
     * durably, keeping holes: blocks of zeros are not written. False if it exists here already; throws
     * {@link NoSuchObjectException} if {@code src} does not have it.
     */
    public boolean copyFrom(FileObjectStore src, long key) throws IOException {
        return createAtomically(key, out -> {
            try (FileChannel in = src.openForCopy(key)) {
                long size = in.size();
                ByteBuffer b = ByteBuffer.allocate(64 << 10);
                for (long pos = 0; pos < size; ) {
                    b.clear();
                    b.limit((int) Math.min(b.capacity(), size - pos));
                    readFully(in, b, pos);
                    b.flip();
                    int n = b.limit();
                    for (int blk = 0; blk < n; blk += 4096) {
                        int end = Math.min(n, blk + 4096);
                        if (allZero(b, blk, end)) continue;
                        writeFully(out, b.duplicate().limit(end).position(blk), pos + blk);
                    }
                    pos += n;
                }
                return size;
            }
        });
    }

    private FileChannel openForCopy(long key) throws IOException {
        try {
            return FileChannel.open(path(key), StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new NoSuchObjectException(key);
        }
    }

    private static boolean allZero(ByteBuffer b, int from, int to) {
        for (int i = from; i < to; i++) if (b.get(i) != 0) return false;
        return true;
    }

    private static IOException translate(IOException e, long oid) {
        return isNoSpace(e) ? new NoSpaceException(StoreKey.fileName(oid), e) : e;
    }

    /** ENOSPC or EDQUOT (the JDK reports them only in the message). */
    static boolean isNoSpace(IOException e) {
        String m = String.valueOf(e.getMessage());
        return m.contains("No space left") || m.contains("Disk quota");
    }

    @Override
    public boolean create(long oid, long size, byte[] base, long offset, byte[] data, byte[] tail) throws IOException {
        return createAtomically(oid, ch -> {
            if (base != null) writeFully(ch, ByteBuffer.wrap(base, 0, (int) Math.min(base.length, size)), 0);
            if (data != null && data.length > 0) writeFully(ch, ByteBuffer.wrap(data), offset);
            if (tail != null) writeFully(ch, ByteBuffer.wrap(tail), size);
            return size;
        });
    }

    /** Writes the content of a new object file; returns the size the file must have at least (it is extended sparsely). */
    @FunctionalInterface
    private interface Content {
        long writeTo(FileChannel tmp) throws IOException;
    }

    /**
     * Creates object {@code key} with {@code content}: written to {@code <key>.tmp}, synced, renamed into place, the
     * directory synced, under the object's lock, so a crash leaves either no object or the whole one. False if it
     * exists already (nothing changed).
     */
    private boolean createAtomically(long key, Content content) throws IOException {
        ReentrantReadWriteLock l = lockOf(key);
        l.writeLock().lock();
        try {
            Path parent = parentOf(key);
            Path target = parent.resolve(StoreKey.fileName(key));
            if (Files.exists(target)) return false;
            settle(key);       // a file of it removed under the store may have left records
            Path tmp = parent.resolve(StoreKey.fileName(key) + ".tmp");
            if (parent != dir && !Files.isDirectory(parent)) restoreSubdirectory(parent);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                    StandardOpenOption.WRITE, StandardOpenOption.READ)) {
                long size = content.writeTo(ch);
                if (ch.size() < size) {
                    // extend sparsely to the full object size so reads past the written part are zeros
                    ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
                }
                if (sync) ch.force(true);
            } catch (IOException e) {
                Files.deleteIfExists(tmp);
                throw translate(e, key);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target);
            }
            if (sync) syncDir(parent);
            return true;
        } finally {
            l.writeLock().unlock();
        }
    }

    private static void syncDir(Path d) throws IOException {
        try (FileChannel ch = FileChannel.open(d, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    @Override
    public boolean remove(long oid) throws IOException {
        ReentrantReadWriteLock l = lockOf(oid);
        l.writeLock().lock();
        try {
            settle(oid);
            dropHandle(oid);
            Path p = path(oid);
            boolean existed = Files.deleteIfExists(p);
            if (existed && sync) syncDir(p.getParent());
            return existed;
        } finally {
            l.writeLock().unlock();
        }
    }

    @Override
    public List<Long> list() throws IOException {
        List<Long> out = new ArrayList<>();
        for (Path d : objectDirs()) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(d)) {
                for (Path p : ds) {
                    String n = p.getFileName().toString();
                    if (n.length() >= 16 && !n.endsWith(".tmp")) {
                        try {
                            out.add(StoreKey.parse(n));
                        } catch (NumberFormatException notAnObject) {
                            // not an object file
                        }
                    }
                }
            }
        }
        return out;
    }

    @Override
    public byte[] sha1(long oid, long size) throws IOException {
        ReentrantReadWriteLock l = lockOf(oid);
        l.readLock().lock();
        try {
            return sha1Of(handle(oid).ch, size);
        } finally {
            l.readLock().unlock();
        }
    }

    private static byte[] sha1Of(FileChannel ch, long size) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-1");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
        ByteBuffer b = ByteBuffer.allocate(1 << 20);
        long pos = 0;
        while (pos < size) {
            b.clear();
            b.limit((int) Math.min(b.capacity(), size - pos));
            readFully(ch, b, pos);
            // zero-extend what the file does not have
            while (b.hasRemaining()) b.put((byte) 0);
            b.flip();
            md.update(b);
            pos += b.limit();
        }
        return md.digest();
    }

    @Override
    public void moveToStale(long oid, int epoch) throws IOException {
        ReentrantReadWriteLock l = lockOf(oid);
        l.writeLock().lock();
        try {
            settle(oid);
            dropHandle(oid);
            Path src = path(oid);
            if (!Files.exists(src)) return;
            if (!Files.isDirectory(staleDir)) restoreSubdirectory(staleDir);
            Files.move(src, staleDir.resolve(StoreKey.fileName(oid) + "." + epoch), StandardCopyOption.REPLACE_EXISTING);
        } finally {
            l.writeLock().unlock();
        }
    }

    /** The stale copy of {@code oid} kept at {@code epoch}, or the newest one if {@code epoch} is 0 or has none. */
    private Path stalePath(long oid, int epoch) throws IOException {
        if (epoch > 0) {
            Path c = staleDir.resolve(StoreKey.fileName(oid) + "." + epoch);
            if (Files.exists(c)) return c;
        }
        Path p = null;
        int best = -1;
        String prefix = StoreKey.fileName(oid) + ".";
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(staleDir, prefix + "*")) {
            for (Path c : ds) {
                try {
                    int e = Integer.parseInt(c.getFileName().toString().substring(prefix.length()));
                    if (e > best) { best = e; p = c; }
                } catch (NumberFormatException ignored) { }
            }
        }
        return p;
    }

    /**
     * The epoch of the stale copy of {@code key} that {@link #readStale} would read for {@code epoch} (that epoch's,
     * else the newest); -1 if there is none.
     */
    public int staleCopyEpoch(long key, int epoch) throws IOException {
        Path p = stalePath(key, epoch);
        if (p == null) return -1;
        String n = p.getFileName().toString();
        return Integer.parseInt(n.substring(n.lastIndexOf('.') + 1));
    }

    @Override
    public byte[] staleSha1(long oid, long size) throws IOException {
        Path p = stalePath(oid, 0);
        if (p == null) return null;
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            return sha1Of(ch, size);
        } catch (NoSuchFileException e) {
            return null; // purged meanwhile
        }
    }

    @Override
    public boolean restoreStale(long oid) throws IOException {
        ReentrantReadWriteLock l = lockOf(oid);
        l.writeLock().lock();
        try {
            Path target = path(oid);
            Path p = stalePath(oid, 0);
            if (p == null || Files.exists(target)) return false;
            settle(oid);
            try {
                Files.move(p, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (NoSuchFileException e) {
                return false; // purged meanwhile
            }
            if (sync) syncDir(target.getParent());
            return true;
        } finally {
            l.writeLock().unlock();
        }
    }

    @Override
    public byte[] readStale(long oid, int epoch, long offset, int len) throws IOException {
        Path p = stalePath(oid, epoch);
        if (p == null) return null;
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            byte[] out = new byte[len];
            readFully(ch, ByteBuffer.wrap(out), offset);
            return out;
        }
    }

    @Override
    public List<StaleCopy> listStaleCopies() throws IOException {
        List<StaleCopy> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(staleDir)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                int dot = n.lastIndexOf('.');
                if (dot < 16) continue;
                try {
                    out.add(new StaleCopy(StoreKey.parse(n.substring(0, dot)), Integer.parseInt(n.substring(dot + 1))));
                } catch (NumberFormatException notAnObject) {
                    // not a stale object file
                }
            }
        }
        return out;
    }

    @Override
    public void purgeStale() throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(staleDir)) {
            for (Path p : ds) Files.deleteIfExists(p);
        }
    }

    @Override
    public void wipe() throws IOException {
        if (journal != null) journal.discard();   // every object goes: none of their records may come back
        closeAll(open.clear());
        for (Path d : allObjectDirs()) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(d)) {
                for (Path p : ds) if (!Files.isDirectory(p)) Files.deleteIfExists(p);
            }
            if (sync) syncDir(d);
        }
        purgeStale();
    }

    @Override
    public long usedBytes() throws IOException {
        long sum = 0;
        try {
            for (Path d : objectDirs()) {
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(d)) {
                    for (Path p : ds) {
                        if (Files.isRegularFile(p)) {
                            Object blocks = Files.getAttribute(p, "unix:size");
                            sum += blocks instanceof Long v ? v : 0;
                        }
                    }
                }
            }
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
            return 0;
        }
        return sum;
    }

    @Override
    public long totalBytes() throws IOException {
        FileStore fs = Files.getFileStore(dir);
        return fs.getTotalSpace();
    }

    @Override
    public long freeBytes() throws IOException {
        return Files.getFileStore(dir).getUsableSpace();
    }

    @Override
    public void close() {
        if (journal != null) journal.close();
        closeAll(open.clear());
    }
}
