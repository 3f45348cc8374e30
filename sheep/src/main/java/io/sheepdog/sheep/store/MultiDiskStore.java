package io.sheepdog.sheep.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The store of a node with several disks (docs/daemon.md §3.3, {@code sheep META,DISK1,DISK2,...}): a
 * {@link FileObjectStore} per disk, objects placed over them by a {@link DiskRing}. A node without extra disks has one,
 * {@code <store>/obj}.
 *
 * <ul>
 *   <li><b>Finding an object.</b> It is looked for on its home disk first; after the disk set changed it may still be
 *       on another one (until it is moved home), so a miss looks at the others.</li>
 *   <li><b>A failed disk</b> (an I/O error after which the disk fails its probe: EIO, read-only, its directory gone
 *       or replaced, its file system unmounted) is taken out at once, and the {@link Listener} is told, so that this
 *       node recovers the objects it held from their other copies; the operation that found it throws
 *       {@link DiskFailedException}. When the last disk fails, {@link #probe} throws: the node then leaves.</li>
 *   <li><b>Plug and unplug</b> ({@code dog node md plug|unplug}): a plugged disk is emptied and takes the objects
 *       its virtual disks now own (moved in the background); an unplugged one gives its objects to the others before
 *       it is let go. Moves copy the file (disks are separate file systems), then remove the old one, under the
 *       object's lock here, so no request sees it missing or in two places.</li>
 * </ul>
 */
public final class MultiDiskStore implements ObjectStore {
    private static final Logger LOG = LoggerFactory.getLogger(MultiDiskStore.class);
    private static final int STRIPES = 256;
    /** The extended attribute that keeps a disk's space, measured once (as the original's {@code user.md.size}). */
    private static final String SIZE_XATTR = "md.size";
    /** Where the space is kept when the file system has no user extended attributes. */
    private static final String SIZE_FILE = ".md_size";

    /** Told of disks that fail. */
    public interface Listener {
        /**
         * {@code disk} failed and is out of the store; {@code left} disks remain (0: the store failed). Called once
         * per disk, before the operation that found the failure throws.
         */
        void diskFailed(Path disk, String why, int left);
    }

    /** One disk: its directory, its objects and the space it was measured with. */
    public static final class Disk {
        final Path path;
        final FileObjectStore store;
        final long size;
        /** Set first when the disk fails: from then on no lookup uses it. */
        volatile boolean failed;

        Disk(Path path, FileObjectStore store, long size) {
            this.path = path;
            this.store = store;
            this.size = size;
        }

        public Path path() { return path; }
        public long size() { return size; }
    }

    /** What {@code dog node md info} shows of a disk. */
    public record DiskInfo(int index, Path path, long free, long used) {}

    /** The disks in use, the ring over them, and disks being emptied (unplugged, still searched). Immutable. */
    private record Disks(List<Disk> list, DiskRing ring, List<Disk> draining) {
        static Disks of(List<Disk> list, List<Disk> draining) {
            List<String> paths = new ArrayList<>();
            List<Long> sizes = new ArrayList<>();
            for (Disk d : list) {
                paths.add(d.path.toString());
                sizes.add(d.size);
            }
            return new Disks(List.copyOf(list), list.isEmpty() ? null : new DiskRing(paths, sizes), List.copyOf(draining));
        }

        Disk home(long key) throws IOException {
            if (list.isEmpty()) throw new IOException("every disk of this node failed");
            return list.size() == 1 ? list.getFirst() : list.get(ring.diskOf(StoreKey.oid(key)));
        }

        /** Every disk an object may be on: those in use, then those being emptied. */
        List<Disk> all() {
            if (draining.isEmpty()) return list;
            List<Disk> out = new ArrayList<>(list);
            out.addAll(draining);
            return out;
        }

        boolean holds(Disk d) { return !d.failed && (list.contains(d) || draining.contains(d)); }
    }

    private final boolean sync;
    private final long journalBytes;
    private final boolean directWrites;
    private final int maxOpenPerDisk;
    private volatile Disks disks;
    private volatile FileObjectStore.Layout layout = FileObjectStore.Layout.PLAIN;
    private volatile Listener listener = (disk, why, left) -> { };
    private final ReentrantReadWriteLock[] stripes = new ReentrantReadWriteLock[STRIPES];
    /** Plug, unplug and failures change the disk set one at a time. */
    private final Object changing = new Object();
    /** Disks failed since the store was opened (see {@link #diskFailures}). */
    private final AtomicLong failures = new AtomicLong();
    private volatile Thread rebalancer;
    /**
     * Set to stop the background moves under way (a newer run replaces them, or the store closes). A flag, not an
     * interrupt: an interrupt inside a move's file I/O closes the channel (ClosedByInterruptException), and the disk's
     * probe, run by the interrupted thread, would then fail too and take a healthy disk out.
     */
    private volatile AtomicBoolean rebalanceStop = new AtomicBoolean();

    /** Opens the store over {@code paths} (at least one), measuring the space of a disk seen for the first time. */
    public MultiDiskStore(List<Path> paths, boolean sync) throws IOException {
        this(paths, sync, FileObjectStore.DEFAULT_JOURNAL_BYTES);
    }

    public MultiDiskStore(List<Path> paths, boolean sync, long journalBytes) throws IOException {
        this(paths, sync, journalBytes, FileObjectStore.DIRECT_WRITES);
    }

    /**
     * @param journalBytes the write journal of each disk (0: none; see {@link FileObjectStore})
     * @param directWrites whether whole-block durable writes bypass the page cache ({@link DirectWrites})
     */
    public MultiDiskStore(List<Path> paths, boolean sync, long journalBytes, boolean directWrites) throws IOException {
        if (paths.isEmpty()) throw new IllegalArgumentException("no disks");
        this.sync = sync;
        this.journalBytes = journalBytes;
        this.directWrites = directWrites;
        this.maxOpenPerDisk = Math.max(64, FileObjectStore.defaultOpenFiles() / paths.size());
        for (int i = 0; i < STRIPES; i++) stripes[i] = new ReentrantReadWriteLock();
        List<Disk> list = new ArrayList<>();
        for (Path p : paths) list.add(open(p));
        disks = Disks.of(list, List.of());
    }

    private Disk open(Path p) throws IOException {
        try {
            Files.createDirectories(p);
            if (!Files.isWritable(p)) throw new IOException("not writable");
            FileObjectStore s = new FileObjectStore(p, sync, maxOpenPerDisk, journalBytes, directWrites);
            if (layout != FileObjectStore.Layout.PLAIN) s.useLayout(layout);
            return new Disk(p, s, sizeOf(p, s));
        } catch (NoSuchFileException e) {
            throw new IOException("cannot use disk " + p + ": no such directory, and it cannot be made", e);
        } catch (IOException e) {
            throw new IOException("cannot use disk " + p + ": " + e.getMessage(), e);
        }
    }

    public void setListener(Listener l) { this.listener = l; }

    // ------------------------------------------------------------------ space

    /** The disk's space: kept from its first use (free space then, plus what its objects used), else measured now. */
    private static long sizeOf(Path p, FileObjectStore s) throws IOException {
        long kept = keptSize(p);
        if (kept > 0) return kept;
        long size = Math.max(DiskRing.VDISK_BYTES, Files.getFileStore(p).getUsableSpace() + s.usedBytes());
        keepSize(p, size);
        return size;
    }

    private static long keptSize(Path p) {
        try {
            UserDefinedFileAttributeView v = Files.getFileAttributeView(p, UserDefinedFileAttributeView.class);
            if (v != null && v.list().contains(SIZE_XATTR)) {
                ByteBuffer b = ByteBuffer.allocate(v.size(SIZE_XATTR));
                v.read(SIZE_XATTR, b);
                return Long.parseLong(new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII).trim());
            }
        } catch (IOException | RuntimeException noXattrs) {
            // fall back to the file
        }
        try {
            Path f = p.resolve(SIZE_FILE);
            if (Files.exists(f)) return Long.parseLong(Files.readString(f).trim());
        } catch (IOException | RuntimeException e) {
            LOG.warn("cannot read the kept space of disk {}: {}", p, e.toString());
        }
        return 0;
    }

    private static void keepSize(Path p, long size) {
        byte[] v = Long.toString(size).getBytes(StandardCharsets.US_ASCII);
        try {
            UserDefinedFileAttributeView view = Files.getFileAttributeView(p, UserDefinedFileAttributeView.class);
            if (view != null) {
                view.write(SIZE_XATTR, ByteBuffer.wrap(v));
                return;
            }
        } catch (IOException | RuntimeException noXattrs) {
            // fall back to the file
        }
        try {
            Files.write(p.resolve(SIZE_FILE), v);
        } catch (IOException e) {
            LOG.warn("cannot keep the space of disk {}: {}", p, e.toString());
        }
    }

    /** The sum of the disks' space: the node's weight in the cluster. */
    public long space() {
        long s = 0;
        for (Disk d : disks.list) s += d.size;
        return s;
    }

    // ------------------------------------------------------------------ failures

    @FunctionalInterface
    private interface DiskCall<T> {
        T on(FileObjectStore s) throws IOException;
    }

    /** Runs {@code call} on {@code d}; an I/O error that the disk's probe confirms takes the disk out. */
    private <T> T on(Disk d, long key, DiskCall<T> call) throws IOException {
        try {
            return call.on(d.store);
        } catch (NoSuchObjectException | NoSpaceException e) {
            throw e;
        } catch (IOException e) {
            if (failed(d, e)) throw new DiskFailedException(d.path, key, e);
            throw e;
        }
    }

    /** Whether {@code d} failed (it is out of the store, or fails its probe now: then it is taken out). */
    private boolean failed(Disk d, IOException cause) {
        if (d.failed) {
            synchronized (changing) {
                // another thread is taking it out: once it is done, the recovery of its objects has started
                return true;
            }
        }
        if (!disks.holds(d)) return true;
        try {
            d.store.probe();
            return false;
        } catch (IOException probe) {
            fail(d, probe.getMessage() + (cause == null ? "" : " (after: " + cause + ")"));
            return true;
        }
    }

    /**
     * A miss on {@code home}: is it because the disk is gone (its directory removed or unmounted, which reads as
     * "no such file")? Checked by the directory's identity, a stat.
     */
    private void checkMiss(Disk home, long key, NoSuchObjectException miss) throws IOException {
        if (home.failed) throw new DiskFailedException(home.path, key, miss);
        try {
            home.store.checkIdentity();
        } catch (IOException e) {
            fail(home, e.getMessage());
            throw new DiskFailedException(home.path, key, miss);
        }
    }

    /**
     * Takes {@code d} out, in an order that lets no request take its objects for absent: first no lookup uses it,
     * then the listener starts the recovery of its objects (requests for them wait for it), then the count of
     * failures moves (a request that began before sees it moved and tries again), then the new placement is used.
     */
    private void fail(Disk d, String why) {
        synchronized (changing) {
            Disks ds = disks;
            if (d.failed || !ds.holds(d)) return;
            d.failed = true;
            List<Disk> list = new ArrayList<>(ds.list);
            List<Disk> draining = new ArrayList<>(ds.draining);
            list.remove(d);
            draining.remove(d);
            int left = list.size();
            LOG.error("disk {} failed and is unplugged: {}; {} disk(s) left", d.path, why, left);
            try {
                listener.diskFailed(d.path, why, left);
            } finally {
                failures.incrementAndGet();
                disks = Disks.of(list, draining);
            }
        }
        d.store.close();
    }

    /**
     * How many disks failed so far. A request that found an object absent after this moved may have looked for it
     * while its disk was being taken out: it should wait for the recovery of that disk's objects and look again.
     */
    @Override
    public long diskFailures() { return failures.get(); }

    /**
     * Probes every disk: failed ones are taken out; throws when none is left. On the disks that work, objects whose
     * files were removed under the node are made absent (their open files closed), so that recovery brings them back.
     */
    @Override
    public void probe() throws IOException {
        for (Disk d : disks.all()) {
            if (!failed(d, null) && d.store.dropVanished() > 0) vanished.run();
        }
        if (disks.list.isEmpty()) throw new IOException("every disk of this node failed");
    }

    private volatile Runnable vanished = () -> { };

    /** Told when the periodic probe found object files removed under a working disk. */
    public void setVanishedListener(Runnable r) { this.vanished = r; }

    // ------------------------------------------------------------------ objects

    private ReentrantReadWriteLock lockOf(long key) {
        return stripes[(int) ((key ^ (key >>> 32)) & (STRIPES - 1))];
    }

    /** The disk other than {@code home} that holds {@code key}, or null. */
    private Disk elsewhere(Disks ds, Disk home, long key) {
        for (Disk d : ds.all()) if (d != home && !d.failed && d.store.exists(key)) return d;
        return null;
    }

    /** Runs {@code call} on the disk holding {@code key}: its home, else another one that has it. */
    private <T> T onHolder(long key, DiskCall<T> call) throws IOException {
        ReentrantReadWriteLock l = lockOf(key);
        l.readLock().lock();
        try {
            Disks ds = disks;
            Disk home = ds.home(key);
            try {
                return on(home, key, call);
            } catch (NoSuchObjectException miss) {
                if (ds.list.size() == 1 && ds.draining.isEmpty()) {
                    checkMiss(home, key, miss);
                    throw miss;
                }
                Disk d = elsewhere(ds, home, key);
                if (d == null) {
                    checkMiss(home, key, miss);
                    throw miss;
                }
                return on(d, key, call);
            }
        } finally {
            l.readLock().unlock();
        }
    }

    @Override
    public boolean exists(long key) {
        Disks ds = disks;
        for (Disk d : ds.all()) if (!d.failed && d.store.exists(key)) return true;
        return false;
    }

    @Override
    public byte[] read(long key, long offset, int len) throws IOException {
        return onHolder(key, s -> s.read(key, offset, len));
    }

    @Override
    public void write(long key, long offset, byte[] data, boolean durable) throws IOException {
        onHolder(key, s -> {
            s.write(key, offset, data, durable);
            return null;
        });
    }

    @Override
    public void write(long key, long offset, ByteBuffer data, boolean durable) throws IOException {
        onHolder(key, s -> {
            s.write(key, offset, data, durable);
            return null;
        });
    }

    @Override
    public byte[] sha1(long key, long size) throws IOException {
        return onHolder(key, s -> s.sha1(key, size));
    }

    @Override
    public boolean create(long key, long size, byte[] base, long offset, byte[] data, byte[] tail) throws IOException {
        ReentrantReadWriteLock l = lockOf(key);
        l.readLock().lock();
        try {
            Disks ds = disks;
            Disk home = ds.home(key);
            if (ds.list.size() > 1 || !ds.draining.isEmpty()) {
                if (elsewhere(ds, home, key) != null) return false;
            }
            try {
                // a disk unmounted under the node shows its empty mount point, on another file system: an object
                // made there would be lost, so a create first checks that the disk is the one opened (a stat)
                return on(home, key, s -> {
                    s.checkIdentity();
                    return s.create(key, size, base, offset, data, tail);
                });
            } catch (NoSpaceException full) {
                // its home disk is full: any other with room will do (lookups find it there)
                List<Disk> others = new ArrayList<>(ds.list);
                others.remove(home);
                others.sort(Comparator.comparingLong(MultiDiskStore::freeOf).reversed());
                for (Disk d : others) {
                    try {
                        return on(d, key, s -> s.create(key, size, base, offset, data, tail));
                    } catch (NoSpaceException alsoFull) {
                        // next
                    }
                }
                throw full;
            }
        } finally {
            l.readLock().unlock();
        }
    }

    private static long freeOf(Disk d) {
        try {
            return Files.getFileStore(d.path).getUsableSpace();
        } catch (IOException e) {
            return 0;
        }
    }

    @Override
    public boolean remove(long key) throws IOException {
        ReentrantReadWriteLock l = lockOf(key);
        l.readLock().lock();
        try {
            boolean removed = false;
            for (Disk d : disks.all()) removed |= on(d, key, s -> s.remove(key));
            return removed;
        } finally {
            l.readLock().unlock();
        }
    }

    @Override
    public List<Long> list() throws IOException {
        Set<Long> out = new LinkedHashSet<>();
        for (Disk d : disks.all()) out.addAll(on(d, 0, FileObjectStore::list));
        return new ArrayList<>(out);
    }

    @Override
    public void moveToStale(long key, int epoch) throws IOException {
        ReentrantReadWriteLock l = lockOf(key);
        l.readLock().lock();
        try {
            for (Disk d : disks.all()) {
                on(d, key, s -> {
                    s.moveToStale(key, epoch);
                    return null;
                });
            }
        } finally {
            l.readLock().unlock();
        }
    }

    /** The disk with the stale copy of {@code key} that {@link #readStale} reads for {@code epoch}; null if none. */
    private Disk staleHolder(long key, int epoch) throws IOException {
        Disk best = null;
        int bestEpoch = -1;
        for (Disk d : disks.all()) {
            int e = on(d, key, s -> s.staleCopyEpoch(key, epoch));
            if (e < 0) continue;
            if (epoch > 0 && e == epoch) return d;
            if (e > bestEpoch) {
                bestEpoch = e;
                best = d;
            }
        }
        return best;
    }

    @Override
    public byte[] readStale(long key, int epoch, long offset, int len) throws IOException {
        Disk d = staleHolder(key, epoch);
        return d == null ? null : on(d, key, s -> s.readStale(key, epoch, offset, len));
    }

    @Override
    public byte[] staleSha1(long key, long size) throws IOException {
        Disk d = staleHolder(key, 0);
        return d == null ? null : on(d, key, s -> s.staleSha1(key, size));
    }

    @Override
    public boolean restoreStale(long key) throws IOException {
        ReentrantReadWriteLock l = lockOf(key);
        l.writeLock().lock();
        try {
            if (exists(key)) return false;
            Disk d = staleHolder(key, 0);
            return d != null && on(d, key, s -> s.restoreStale(key));
        } finally {
            l.writeLock().unlock();
        }
    }

    @Override
    public List<StaleCopy> listStaleCopies() throws IOException {
        List<StaleCopy> out = new ArrayList<>();
        for (Disk d : disks.all()) out.addAll(on(d, 0, FileObjectStore::listStaleCopies));
        return out;
    }

    @FunctionalInterface
    private interface DiskAction {
        void on(FileObjectStore s) throws IOException;
    }

    /** Does {@code action} on every disk, each failure checked as {@link #on} does. */
    private void onEveryDisk(DiskAction action) throws IOException {
        for (Disk d : disks.all()) {
            on(d, 0, s -> {
                action.on(s);
                return null;
            });
        }
    }

    @Override
    public void purgeStale() throws IOException { onEveryDisk(FileObjectStore::purgeStale); }

    @Override
    public void wipe() throws IOException { onEveryDisk(FileObjectStore::wipe); }

    @Override
    public long usedBytes() throws IOException {
        long sum = 0;
        for (Disk d : disks.all()) sum += d.store.usedBytes();
        return sum;
    }

    /** Sums over the file systems the disks are on, each counted once (two disk directories may share one). */
    @Override
    public long totalBytes() throws IOException {
        long sum = 0;
        for (FileStore fs : fileStores()) sum += fs.getTotalSpace();
        return sum;
    }

    @Override
    public long freeBytes() throws IOException {
        long sum = 0;
        for (FileStore fs : fileStores()) sum += fs.getUsableSpace();
        return sum;
    }

    private List<FileStore> fileStores() throws IOException {
        Set<FileStore> seen = new HashSet<>();
        List<FileStore> out = new ArrayList<>();
        for (Disk d : disks.list) {
            FileStore fs = Files.getFileStore(d.path);
            if (seen.add(fs)) out.add(fs);
        }
        return out;
    }

    public FileObjectStore.Layout layout() { return layout; }

    /** See {@link FileObjectStore#useLayout}: every disk. */
    public void useLayout(FileObjectStore.Layout l) throws IOException {
        synchronized (changing) {
            for (Disk d : disks.all()) d.store.useLayout(l);
            layout = l;
        }
    }

    @Override
    public void close() {
        rebalanceStop.set(true);
        for (Disk d : disks.all()) d.store.close();
    }

    // ------------------------------------------------------------------ the disk set

    /** The disks in use, in order (the index {@code dog node md info} shows). */
    public List<Path> paths() {
        List<Path> out = new ArrayList<>();
        for (Disk d : disks.list) out.add(d.path);
        return out;
    }

    public List<DiskInfo> info() {
        List<DiskInfo> out = new ArrayList<>();
        List<Disk> list = disks.list;
        for (int i = 0; i < list.size(); i++) {
            Disk d = list.get(i);
            long free = 0, used = 0;
            try {
                free = Files.getFileStore(d.path).getUsableSpace();
                used = d.store.usedBytes();
            } catch (IOException | RuntimeException e) {
                LOG.warn("disk {}: {}", d.path, e.toString());
            }
            out.add(new DiskInfo(i, d.path, free, used));
        }
        return out;
    }

    /**
     * Adds {@code paths} (each emptied first, as the original's plug purges them), then moves to them, in the
     * background, the objects their virtual disks now own. Refuses a path in use already or one that holds a store's
     * metadata (a {@code config} and an {@code epoch} directory).
     */
    public void plug(List<Path> paths) throws IOException {
        synchronized (changing) {
            Disks ds = disks;
            Set<Path> inUse = new HashSet<>();
            for (Disk d : ds.all()) inUse.add(d.path);
            for (Path p : paths) {
                if (inUse.contains(p)) throw new IOException(p + " is plugged already");
                if (Files.exists(p.resolve("config")) && Files.isDirectory(p.resolve("epoch"))) {
                    throw new IOException(p + " holds a sheep's store metadata, not a disk to plug");
                }
            }
            if (new HashSet<>(paths).size() != paths.size()) throw new IOException("a disk named twice");
            List<Disk> added = new ArrayList<>();
            for (Path p : paths) {
                Disk d = open(p);
                d.store.wipe();
                added.add(d);
            }
            List<Disk> list = new ArrayList<>(ds.list);
            list.addAll(added);
            disks = Disks.of(list, ds.draining);
            LOG.info("disks plugged: {}; {} disk(s) in use", paths, list.size());
        }
        rebalanceInBackground();
    }

    /**
     * Takes {@code paths} out: their objects move to the disks left (before this returns), then they are let go. The
     * last disk cannot be unplugged.
     */
    public void unplug(List<Path> paths) throws IOException {
        List<Disk> leaving = new ArrayList<>();
        synchronized (changing) {
            Disks ds = disks;
            for (Path p : paths) {
                Disk d = ds.list.stream().filter(x -> x.path.equals(p)).findFirst().orElse(null);
                if (d == null) throw new IOException(p + " is not a disk of this node");
                if (!leaving.contains(d)) leaving.add(d);
            }
            if (leaving.size() >= ds.list.size()) throw new IOException("cannot unplug every disk of a node");
            List<Disk> list = new ArrayList<>(ds.list);
            list.removeAll(leaving);
            List<Disk> draining = new ArrayList<>(ds.draining);
            draining.addAll(leaving);
            disks = Disks.of(list, draining);
        }
        // a create that read the disk list before it changed may still be making its object on a leaving disk: every
        // such request holds its object's stripe lock, so taking each stripe once waits for them all to finish
        for (ReentrantReadWriteLock l : stripes) {
            l.writeLock().lock();
            l.writeLock().unlock();
        }
        long moved = 0;
        try {
            for (Disk d : leaving) {
                for (long key : on(d, 0, FileObjectStore::list)) if (moveHome(key, d)) moved++;
            }
        } finally {
            synchronized (changing) {
                Disks ds = disks;
                List<Disk> draining = new ArrayList<>(ds.draining);
                draining.removeAll(leaving);
                disks = Disks.of(ds.list, draining);
            }
            for (Disk d : leaving) d.store.close();
        }
        LOG.info("disks unplugged: {}; {} objects moved to the {} disk(s) left", paths, moved, disks.list.size());
    }

    /**
     * Moves {@code key} from {@code from} to its home disk, under its lock; false if there is nothing to move (it is
     * home, or gone). A copy already at home wins (the one on {@code from} is a leftover).
     */
    private boolean moveHome(long key, Disk from) throws IOException {
        ReentrantReadWriteLock l = lockOf(key);
        l.writeLock().lock();
        try {
            Disks ds = disks;
            if (ds.list.isEmpty()) return false;
            Disk home = ds.home(key);
            if (home == from || !from.store.exists(key)) return false;
            on(home, key, s -> s.copyFrom(from.store, key));
            on(from, key, s -> s.remove(key));
            return true;
        } finally {
            l.writeLock().unlock();
        }
    }

    /**
     * Moves every object that is not on its home disk there (after a plug, or at start when the disk list changed
     * since the last one), one at a time, off the request path.
     */
    public void rebalanceInBackground() {
        synchronized (changing) {
            rebalanceStop.set(true);
            AtomicBoolean stop = new AtomicBoolean();
            rebalanceStop = stop;
            rebalancer = Thread.ofVirtual().name("md-rebalance").start(() -> {
                long moved = 0;
                try {
                    for (Disk d : disks.list) {
                        for (long key : d.store.list()) {
                            if (stop.get()) return;
                            if (disks.holds(d) && moveHome(key, d)) moved++;
                        }
                    }
                    LOG.info("disks rebalanced: {} objects moved to their disk", moved);
                } catch (IOException e) {
                    LOG.warn("rebalancing the disks stopped after {} objects: {}", moved, e.toString());
                }
            });
        }
    }

    /** Waits for the background moves after a plug (tests). */
    public void awaitRebalanced() throws InterruptedException {
        Thread t = rebalancer;
        if (t != null) t.join();
    }
}
