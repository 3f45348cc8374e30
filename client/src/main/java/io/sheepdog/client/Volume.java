package io.sheepdog.client;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdResult;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A VDI opened for block I/O, the way QEMU's sheepdog driver used the protocol (docs/protocol.md §14).
 *
 * <p>The inode header and the {@code data_vdi_id} entries the VDI's size uses are cached (a 4 TiB VDI costs 4 MiB,
 * the 12 MiB inode object is never read whole). {@link #read} and {@link #write} split a request per object and
 * keep up to {@value #WINDOW} object requests in flight. A write to an object that the VDI does not own yet
 * creates it (CREATE_AND_WRITE_OBJ, with COW from the parent's object when the entry points at an ancestor) and
 * then records it in the inode with a WRITE_OBJ of the entries, contiguous created indexes in one request.
 *
 * <p>Thread-safe: many threads (an NBD server with queue depth 16) may read and write concurrently. Creating an
 * object is serialized per index: a writer first claims the index, and a second writer that finds it claimed
 * waits for the first to finish and then writes into the object the first one created. A writer releases its
 * claims before it waits for anyone else's, so two writers cannot deadlock.
 *
 * <p>When the VDI is snapshotted while it is open, the VID we write to becomes read-only and the server answers
 * READONLY; the volume then looks the name up again, reloads the inode of the new working VDI and redoes the
 * whole request there (docs/protocol.md §14 item 3). Redoing all of it is safe because a write is idempotent.
 *
 * <p>Limitations: hyper volumes (B-tree index, store_policy 1) are not supported. The protocol has no way to make
 * "create object, then record it in the inode" atomic against a snapshot taken between the two steps; against this
 * project's sheep it need not be: the VDI's writes pause on every node while a snapshot is made, until every created
 * object is recorded (the daemon's gateway/VdiWriteFence). Against the original sheep a write racing with a snapshot
 * may land in the snapshot only, as with the original clients.
 */
public final class Volume implements AutoCloseable {
    /** Object requests one call keeps in flight. */
    public static final int WINDOW = 16;
    private static final int MAX_READONLY_RETRIES = 5;

    private final SheepClient client;
    private final String name;
    private final boolean writable;
    private final int lockedVid;            // VID we hold a LOCK_VDI on, 0 if none
    private final ReentrantReadWriteLock rw = new ReentrantReadWriteLock();
    private volatile State state;
    private volatile boolean closed;

    /** Everything that changes when the VID changes (snapshot) or the size changes (resize). */
    private static final class State {
        final Inode header;                 // header fields only; the table lives in {@code table}
        final int vid;
        final long size;
        final int shift;
        final long objSize;
        final AtomicIntegerArray table;     // data_vdi_id[0 .. objectCount)
        final ConcurrentHashMap<Integer, CompletableFuture<Void>> claims = new ConcurrentHashMap<>();

        State(Inode n, AtomicIntegerArray table) {
            this.header = n;
            this.vid = n.vdiId;
            this.size = n.vdiSize;
            this.shift = n.blockSizeShift;
            this.objSize = 1L << n.blockSizeShift;
            this.table = table;
        }

        int objects() { return table.length(); }
    }

    private Volume(SheepClient client, String name, boolean writable, int lockedVid, State state) {
        this.client = client;
        this.name = name;
        this.writable = writable;
        this.lockedVid = lockedVid;
        this.state = state;
    }

    /**
     * Opens the working VDI {@code name} for reading and writing.
     *
     * @param lock take the VDI lock with LOCK_VDI (effective on clusters formatted with {@code -l}); released by
     *             {@link #close()}. Without it the VDI is looked up with GET_VDI_INFO.
     */
    public static Volume openWritable(SheepClient client, String name, boolean lock) throws IOException {
        SheepClient.VdiId id = lock ? client.lockVdi(name, 0, "", Proto.LOCK_TYPE_NORMAL) : client.getVdiInfo(name, 0, "");
        try {
            State st = load(client, id.vid());
            if (st.header.isSnapshot()) throw new SheepdogException(SdResult.READONLY);
            return new Volume(client, name, true, lock ? id.vid() : 0, st);
        } catch (IOException | RuntimeException e) {
            if (lock) releaseQuietly(client, id.vid());
            throw e;
        }
    }

    /** Opens a VDI read-only: the working VDI (snapId 0, empty tag) or a snapshot by id or tag. */
    public static Volume openReadOnly(SheepClient client, String name, int snapId, String tag) throws IOException {
        SheepClient.VdiId id = client.getVdiInfo(name, snapId, tag == null ? "" : tag);
        return new Volume(client, name, false, 0, load(client, id.vid()));
    }

    /** Opens the VDI with VID {@code vid} read-only (for tools that already know the VID). */
    public static Volume openReadOnly(SheepClient client, int vid) throws IOException {
        State st = load(client, vid);
        return new Volume(client, st.header.name, false, 0, st);
    }

    private static State load(SheepClient client, int vid) throws IOException {
        Inode n = client.readInodeHeader(vid);
        if (n.name.isEmpty()) throw new SheepdogException(SdResult.NO_VDI);
        // hyper volumes keep their index in a B-tree this client does not implement
        if (n.storePolicy != 0) throw new SheepdogException(SdResult.NO_SUPPORT);
        if (n.blockSizeShift < Proto.MIN_BLOCK_SIZE_SHIFT || n.blockSizeShift > Proto.MAX_BLOCK_SIZE_SHIFT) {
            throw new IOException("inode of VDI " + Integer.toHexString(vid) + " has a bad block_size_shift " + n.blockSizeShift);
        }
        int count = n.objectCount();
        AtomicIntegerArray table = new AtomicIntegerArray(count);
        if (count > 0) {
            byte[] t = client.readObj(Oids.inodeOid(vid), Inode.DATA_VDI_ID_OFFSET, 4 * count);
            ByteBuffer b = ByteBuffer.wrap(t).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < count; i++) table.set(i, b.getInt(4 * i));
        }
        n.dataVdiId = new int[0];
        n.grefGeneration = new int[0];
        n.grefCount = new int[0];
        return new State(n, table);
    }

    // ------------------------------------------------------------------ properties

    public String name() { return name; }
    public int vid() { return state.vid; }
    public long size() { return state.size; }
    public long objectSize() { return state.objSize; }
    public int blockSizeShift() { return state.shift; }
    public int nrCopies() { return state.header.nrCopies; }
    public int copyPolicy() { return state.header.copyPolicy; }
    public boolean isWritable() { return writable; }
    public boolean isSnapshot() { return state.header.isSnapshot(); }

    /** A copy of the cached inode (header fields and the current data_vdi_id entries). */
    public Inode inode() {
        State st = state;
        Inode h = st.header;
        Inode c = Inode.decode(h.encodeHeader());
        c.ensureCapacity(st.objects());
        for (int i = 0; i < st.objects(); i++) c.dataVdiId[i] = st.table.get(i);
        return c;
    }

    /** The VID owning object {@code idx} (0 = unallocated). */
    public int dataVid(int idx) {
        State st = state;
        return idx >= 0 && idx < st.objects() ? st.table.get(idx) : 0;
    }

    // ------------------------------------------------------------------ read

    /** Reads {@code len} bytes at {@code offset}; unallocated ranges read as zeros. */
    public byte[] read(long offset, int len) throws IOException {
        byte[] b = new byte[len];
        read(offset, b, 0, len);
        return b;
    }

    public void read(long offset, byte[] dst, int dstOff, int len) throws IOException {
        read(offset, len, new ReadSink() {
            @Override public void data(int at, byte[] src, int srcOff, int n) { System.arraycopy(src, srcOff, dst, dstOff + at, n); }
            @Override public void zeros(int at, int n) { Arrays.fill(dst, dstOff + at, dstOff + at + n, (byte) 0); }
        });
    }

    /**
     * Where {@link #read(long, int, ReadSink)} delivers the bytes it read. The calls come on the reading thread, in
     * order and without gaps: each one continues where the previous one ended. A sink may keep nothing it is given.
     */
    public interface ReadSink {
        /** The {@code n} bytes of the request starting at {@code at} are {@code src[srcOff .. srcOff+n)}. */
        void data(int at, byte[] src, int srcOff, int n);

        /** The {@code n} bytes of the request starting at {@code at} are unallocated: they read as zeros. */
        void zeros(int at, int n);
    }

    /**
     * Reads {@code len} bytes at {@code offset} into {@code sink}, object by object in order. The bytes of each object
     * go to the sink straight from the reply that carried them, so a front end with its own buffer (NBD) fills it
     * without an intermediate array. If a request fails, the sink has received a prefix of the range and the first
     * error is thrown once every request in flight has finished.
     */
    public void read(long offset, int len, ReadSink sink) throws IOException {
        ensureOpen();
        rw.readLock().lock();
        try {
            State st = state;
            checkRange(st, offset, len);
            List<Piece> pieces = split(st, offset, 0, len);
            for (int from = 0; from < pieces.size(); from += WINDOW) {
                List<Piece> chunk = pieces.subList(from, Math.min(pieces.size(), from + WINDOW));
                if (chunk.size() == 1) {
                    // one request (a small read): made on this thread, nothing to overlap it with
                    Piece p = chunk.getFirst();
                    int owner = st.table.get(p.idx);
                    if (owner == 0) sink.zeros(p.bufOff, p.len);
                    else sink.data(p.bufOff, client.readObj(Oids.dataOid(owner, p.idx), p.objOff, p.len,
                            st.header.nrCopies, st.header.copyPolicy, 0), 0, p.len);
                    continue;
                }
                List<CompletableFuture<byte[]>> fs = new ArrayList<>(chunk.size());
                for (Piece p : chunk) {
                    int owner = st.table.get(p.idx);
                    fs.add(owner == 0 ? null : client.readObjAsync(Oids.dataOid(owner, p.idx), p.objOff, p.len,
                            st.header.nrCopies, st.header.copyPolicy, 0));
                }
                IOException first = null;
                for (int i = 0; i < chunk.size(); i++) {
                    Piece p = chunk.get(i);
                    CompletableFuture<byte[]> f = fs.get(i);
                    if (f == null) {
                        if (first == null) sink.zeros(p.bufOff, p.len);
                        continue;
                    }
                    try {
                        byte[] d = SheepClient.join(f);
                        if (d.length < p.len) throw new IOException("short read of object " + p.idx + ": " + d.length + " of " + p.len + " bytes");
                        if (first == null) sink.data(p.bufOff, d, 0, p.len);
                    } catch (IOException e) {
                        if (first == null) first = e;
                    }
                }
                if (first != null) throw first;
            }
        } finally {
            rw.readLock().unlock();
        }
    }

    // ------------------------------------------------------------------ write

    /** Writes {@code data} at {@code offset}. */
    public void write(long offset, byte[] data) throws IOException { write(offset, data, 0, data.length); }

    public void write(long offset, byte[] src, int srcOff, int len) throws IOException {
        write(offset, len, (at, n) -> ByteBuffer.wrap(src, srcOff + at, n));
    }

    /**
     * Supplies the bytes of a write, per object: {@link #bytes} returns a buffer whose remaining bytes are the
     * {@code n} bytes of the request starting at {@code at}. It is called on the writing thread, possibly more than
     * once for the same range (a write redone after a snapshot). The volume sends what it gets as it is (a transport
     * may take a direct buffer without copying it), never changes it, and keeps it no longer than the write call, so
     * the source may lend a buffer for that call only and take it back when the call returns.
     */
    @FunctionalInterface
    public interface WriteSource {
        ByteBuffer bytes(int at, int n);
    }

    /**
     * Writes {@code len} bytes at {@code offset}, taking them from {@code src} object by object: a front end that
     * holds the data in its own buffer (NBD) copies each object's part once, straight into the request payload.
     */
    public void write(long offset, int len, WriteSource src) throws IOException {
        ensureWritable();
        for (int attempt = 0; ; attempt++) {
            int vidUsed;
            rw.readLock().lock();
            try {
                State st = state;
                checkRange(st, offset, len);
                if (writeOnce(st, split(st, offset, 0, len), src)) return;
                vidUsed = st.vid;
            } finally {
                rw.readLock().unlock();
            }
            if (attempt >= MAX_READONLY_RETRIES) throw new SheepdogException(SdResult.READONLY);
            reloadAfterSnapshot(vidUsed);
        }
    }

    /**
     * One pass of a write against the VDI state {@code st}.
     *
     * @return false if the server said READONLY (the VID became a snapshot): the caller reloads and redoes it all
     */
    private boolean writeOnce(State st, List<Piece> pieces, WriteSource src) throws IOException {
        boolean readonly = false;
        IOException firstError = null;
        List<Piece> todo = pieces;
        while (!todo.isEmpty()) {
            List<Piece> deferred = new ArrayList<>();
            List<CompletableFuture<Void>> othersClaims = new ArrayList<>();
            for (int from = 0; from < todo.size(); from += WINDOW) {
                List<Piece> chunk = todo.subList(from, Math.min(todo.size(), from + WINDOW));
                Round r = new Round();
                // a round of one request (a small write) makes it on this thread: nothing to overlap it with
                boolean inline = chunk.size() == 1;
                Throwable startFailure = null;
                try {
                    for (Piece p : chunk) startWrite(st, p, src, r, inline, deferred, othersClaims);
                } catch (RuntimeException | Error e) {
                    startFailure = e; // e.g. the source failed: still finish what was started and free the claims
                }
                // wait for every request of the chunk, then record the objects we created in the inode
                IOException err = r.await();
                IOException recErr = recordCreated(st, r.created, st.vid);
                r.releaseClaims(st);
                if (startFailure instanceof RuntimeException e) throw e;
                if (startFailure instanceof Error e) throw e;
                if (err == null) err = recErr;
                if (err != null) {
                    if (err instanceof SheepdogException se && se.result() == SdResult.READONLY) readonly = true;
                    else if (firstError == null) firstError = err;
                    break; // the remaining chunks are not started: the request fails or is redone anyway
                }
            }
            if (readonly || firstError != null) break;
            // pieces whose index someone else was creating: wait for them, then decide again
            for (CompletableFuture<Void> f : othersClaims) f.handle((v, t) -> null).join();
            todo = deferred;
        }
        if (readonly) return false;
        if (firstError != null) throw firstError;
        return true;
    }

    /** Starts the request for one piece: WRITE_OBJ into our own object, or claim the index and create it. */
    private void startWrite(State st, Piece p, WriteSource src, Round r, boolean inline, List<Piece> deferred,
                            List<CompletableFuture<Void>> othersClaims) {
        int copies = st.header.nrCopies, policy = st.header.copyPolicy;
        int owner = st.table.get(p.idx);
        if (owner == st.vid) {
            r.add(writePiece(inline, Oids.dataOid(st.vid, p.idx), p.objOff, pieceBytes(src, p), copies, policy));
            return;
        }
        CompletableFuture<Void> mine = r.claims.get(p.idx);
        if (mine != null) {
            // two pieces of one call never share an index (pieces are per object), but be safe
            deferred.add(p);
            return;
        }
        mine = new CompletableFuture<>();
        CompletableFuture<Void> other = st.claims.putIfAbsent(p.idx, mine);
        if (other != null) {
            deferred.add(p);
            othersClaims.add(other);
            return;
        }
        r.claims.put(p.idx, mine);
        owner = st.table.get(p.idx); // re-check under the claim: someone may have created it meanwhile
        if (owner == st.vid) {
            r.add(writePiece(inline, Oids.dataOid(st.vid, p.idx), p.objOff, pieceBytes(src, p), copies, policy));
            return;
        }
        long cow = owner == 0 ? 0 : Oids.dataOid(owner, p.idx);
        int idx = p.idx;
        byte[] data = ObjectTransport.arrayOf(pieceBytes(src, p)); // a creation: the gateway wants an array
        CompletableFuture<Void> f;
        if (inline) {
            f = now(() -> client.createAndWriteObj(Oids.dataOid(st.vid, idx), cow, p.objOff, data, copies, policy, 0));
        } else {
            f = client.createAndWriteObjAsync(Oids.dataOid(st.vid, idx), cow, p.objOff, data, copies, policy, 0);
        }
        r.add(f.thenRun(() -> { synchronized (r.created) { r.created.add(idx); } }));
    }

    private CompletableFuture<Void> writePiece(boolean inline, long oid, long objOff, ByteBuffer data, int copies, int policy) {
        if (!inline) return client.writeObjAsync(oid, objOff, data, copies, policy, 0);
        return now(() -> client.writeObj(oid, objOff, data, copies, policy, 0));
    }

    private interface Call { void run() throws IOException; }

    /** Makes a request on this thread; its outcome as a future, so that a round treats it like the others. */
    private static CompletableFuture<Void> now(Call c) {
        try {
            c.run();
            return CompletableFuture.completedFuture(null);
        } catch (IOException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private static ByteBuffer pieceBytes(WriteSource src, Piece p) {
        ByteBuffer b = src.bytes(p.bufOff, p.len);
        if (b == null || b.remaining() != p.len) {
            throw new IllegalStateException("write source gave " + (b == null ? "null" : b.remaining() + " bytes") + " for " + p.len);
        }
        return b;
    }

    /**
     * Writes {@code value} into data_vdi_id[i] of the inode for every index in {@code indexes} (which we hold
     * claims on), one WRITE_OBJ per contiguous run, then updates the cache. Returns the first error.
     */
    private IOException recordCreated(State st, List<Integer> indexes, int value) {
        if (indexes.isEmpty()) return null;
        List<int[]> runs = runs(indexes);
        List<CompletableFuture<?>> fs = new ArrayList<>(runs.size());
        for (int[] run : runs) {
            int from = run[0], to = run[1];
            byte[] entries = new byte[4 * (to - from)];
            ByteBuffer b = ByteBuffer.wrap(entries).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = from; i < to; i++) b.putInt(value);
            fs.add(client.writeObjAsync(Oids.inodeOid(st.vid), Inode.dataVdiIdOffset(from), entries, 0, 0, 0)
                    .thenRun(() -> { for (int i = from; i < to; i++) st.table.set(i, value); }));
        }
        try {
            awaitAll(fs);
            return null;
        } catch (IOException e) {
            return e;
        }
    }

    /** Sorted indexes → [from, to) runs of consecutive values. */
    static List<int[]> runs(List<Integer> indexes) {
        int[] a = indexes.stream().mapToInt(Integer::intValue).sorted().distinct().toArray();
        List<int[]> out = new ArrayList<>();
        int i = 0;
        while (i < a.length) {
            int j = i;
            while (j + 1 < a.length && a[j + 1] == a[j] + 1) j++;
            out.add(new int[] {a[i], a[j] + 1});
            i = j + 1;
        }
        return out;
    }

    /** The requests of one chunk of a write and the claims it holds. */
    private static final class Round {
        final List<CompletableFuture<Void>> futures = new ArrayList<>();
        final HashMap<Integer, CompletableFuture<Void>> claims = new HashMap<>();
        final List<Integer> created = new ArrayList<>();

        void add(CompletableFuture<Void> f) { futures.add(f); }

        /**
         * Waits for all requests, even when interrupted (the interrupt is kept for the caller): the write's sources
         * lend their buffers for the call only, so no request may still read one when the call returns. Returns the
         * first error, preferring READONLY (it decides whether to retry).
         */
        IOException await() {
            IOException first = null;
            boolean interrupted = false;
            for (CompletableFuture<Void> f : futures) {
                while (true) {
                    try {
                        f.get();
                    } catch (InterruptedException e) {
                        interrupted = true;
                        continue;
                    } catch (ExecutionException e) {
                        IOException io = SheepClient.unwrap(e.getCause());
                        if (first == null || (io instanceof SheepdogException se && se.result() == SdResult.READONLY)) first = io;
                    }
                    break;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
                if (first == null) first = new IOException("interrupted");
            }
            return first;
        }

        void releaseClaims(State st) {
            for (var e : claims.entrySet()) {
                st.claims.remove(e.getKey(), e.getValue());
                e.getValue().complete(null);
            }
            claims.clear();
        }
    }

    /** After READONLY: if nobody did it yet, look the name up again and switch to the new working VDI. */
    private void reloadAfterSnapshot(int vidUsed) throws IOException {
        rw.writeLock().lock();
        try {
            if (state.vid != vidUsed) return; // another writer already switched
            SheepClient.VdiId id = client.getVdiInfo(name, 0, "");
            if (id.vid() == vidUsed) throw new SheepdogException(SdResult.READONLY);
            State fresh = load(client, id.vid());
            if (fresh.header.isSnapshot()) throw new SheepdogException(SdResult.READONLY);
            state = fresh;
        } finally {
            rw.writeLock().unlock();
        }
    }

    // ------------------------------------------------------------------ discard, zeroes, allocation

    /**
     * Discards the objects fully covered by [offset, offset+len): their data_vdi_id entries are zeroed (the server
     * then drops or dereferences the objects) and they read as zeros afterwards. Partially covered objects are
     * left alone (a discard is a hint). Returns the number of objects released.
     */
    public int discard(long offset, long len) throws IOException {
        ensureWritable();
        rw.readLock().lock();
        try {
            State st = state;
            checkRange(st, offset, len);
            long first = (offset + st.objSize - 1) >>> st.shift;
            long end = (offset + len) >>> st.shift; // exclusive
            if (offset + len == st.size) end = st.objects(); // the tail object counts as covered at the VDI end
            int released = 0;
            for (long base = first; base < end; base += 1024) {
                released += discardRange(st, (int) base, (int) Math.min(end, base + 1024));
            }
            return released;
        } finally {
            rw.readLock().unlock();
        }
    }

    private int discardRange(State st, int from, int to) throws IOException {
        int released = 0;
        List<Integer> todo = new ArrayList<>();
        for (int i = from; i < to; i++) if (st.table.get(i) != 0) todo.add(i);
        while (!todo.isEmpty()) {
            Round r = new Round();
            List<Integer> deferred = new ArrayList<>();
            List<CompletableFuture<Void>> others = new ArrayList<>();
            for (int idx : todo) {
                CompletableFuture<Void> mine = new CompletableFuture<>();
                CompletableFuture<Void> other = st.claims.putIfAbsent(idx, mine);
                if (other != null) { deferred.add(idx); others.add(other); continue; }
                r.claims.put(idx, mine);
                if (st.table.get(idx) != 0) r.created.add(idx);
            }
            IOException err = recordCreated(st, r.created, 0);
            released += err == null ? r.created.size() : 0;
            r.releaseClaims(st);
            if (err != null) throw err;
            for (CompletableFuture<Void> f : others) f.handle((v, t) -> null).join();
            todo = new ArrayList<>();
            for (int idx : deferred) if (st.table.get(idx) != 0) todo.add(idx);
        }
        return released;
    }

    /**
     * Makes [offset, offset+len) read as zeros: fully covered objects are discarded, partially covered ones that
     * hold data get zeros written.
     */
    public void writeZeroes(long offset, long len) throws IOException {
        ensureWritable();
        State st = state;
        checkRange(st, offset, len);
        long end = offset + len;
        long pos = offset;
        while (pos < end) {
            long objStart = pos & ~(st.objSize - 1);
            long objEnd = Math.min(objStart + st.objSize, st.size);
            long n = Math.min(end, objEnd) - pos;
            boolean full = pos == objStart && pos + n == objEnd;
            int idx = (int) (pos >>> st.shift);
            if (full) {
                discard(pos, n);
            } else if (dataVid(idx) != 0) {
                write(pos, new byte[(int) n]);
            }
            pos += n;
        }
    }

    /** A run of the VDI that is either backed by objects or unallocated (reads as zeros). */
    public record Extent(long offset, long length, boolean allocated) { }

    /** The allocation status of [offset, offset+len), adjacent objects with the same status merged. */
    public List<Extent> allocationMap(long offset, long len) throws IOException {
        State st = state;
        checkRange(st, offset, len);
        List<Extent> out = new ArrayList<>();
        long end = offset + len;
        long pos = offset;
        while (pos < end) {
            int idx = (int) (pos >>> st.shift);
            boolean alloc = st.table.get(idx) != 0;
            long next = Math.min(end, (long) (idx + 1) << st.shift);
            if (!out.isEmpty() && out.getLast().allocated() == alloc) {
                Extent last = out.removeLast();
                out.add(new Extent(last.offset(), next - last.offset(), alloc));
            } else {
                out.add(new Extent(pos, next - pos, alloc));
            }
            pos = next;
        }
        return out;
    }

    /** Number of objects owned by this VDI and number shared with (owned by) other VDIs. */
    public long[] usage() {
        State st = state;
        long own = 0, shared = 0;
        for (int i = 0; i < st.objects(); i++) {
            int v = st.table.get(i);
            if (v == st.vid) own++;
            else if (v != 0) shared++;
        }
        return new long[] {own, shared};
    }

    // ------------------------------------------------------------------ size

    /** Largest size a flat VDI with this object size can have. */
    public long maxSize() { return state.objSize * Proto.OLD_MAX_DATA_OBJS; }

    /** Grows the VDI to {@code newSize} (shrinking is refused, as by the original tools). */
    public void resize(long newSize) throws IOException {
        ensureWritable();
        rw.writeLock().lock();
        try {
            State st = state;
            if (newSize < st.size) throw new IOException("Shrinking VDIs is not implemented");
            if (newSize > st.objSize * Proto.OLD_MAX_DATA_OBJS) {
                throw new IOException("New VDI size is too large. This volume's max size is " + st.objSize * Proto.OLD_MAX_DATA_OBJS);
            }
            if (newSize == st.size) return;
            byte[] sz = new byte[8];
            ByteBuffer.wrap(sz).order(ByteOrder.LITTLE_ENDIAN).putLong(0, newSize);
            client.writeObj(Oids.inodeOid(st.vid), 536, sz); // vdi_size field of the header
            Inode h = Inode.decode(st.header.encodeHeader());
            h.vdiSize = newSize;
            h.dataVdiId = new int[0];
            h.grefGeneration = new int[0];
            h.grefCount = new int[0];
            int count = Inode.objectCount(newSize, st.shift);
            AtomicIntegerArray t = new AtomicIntegerArray(count);
            for (int i = 0; i < st.objects(); i++) t.set(i, st.table.get(i));
            state = new State(h, t);
        } finally {
            rw.writeLock().unlock();
        }
    }

    /** Re-reads the inode (after another client changed the VDI). */
    public void refresh() throws IOException {
        rw.writeLock().lock();
        try {
            state = load(client, state.vid);
        } finally {
            rw.writeLock().unlock();
        }
    }

    /** Creates every object that is not allocated yet (zero-filled), as {@code vdi create -P}. */
    public void preallocate() throws IOException {
        ensureWritable();
        rw.readLock().lock();
        try {
            State st = state;
            for (int from = 0; from < st.objects(); from += WINDOW) {
                Round r = new Round();
                for (int i = from; i < Math.min(st.objects(), from + WINDOW); i++) {
                    if (st.table.get(i) == st.vid) continue;
                    CompletableFuture<Void> mine = new CompletableFuture<>();
                    if (st.claims.putIfAbsent(i, mine) != null) continue; // a writer is creating it right now
                    r.claims.put(i, mine);
                    int owner = st.table.get(i);
                    if (owner == st.vid) continue;
                    int idx = i;
                    long cow = owner == 0 ? 0 : Oids.dataOid(owner, i);
                    r.add(client.createAndWriteObjAsync(Oids.dataOid(st.vid, i), cow, 0, new byte[0],
                            st.header.nrCopies, st.header.copyPolicy, 0)
                            .thenRun(() -> { synchronized (r.created) { r.created.add(idx); } }));
                }
                IOException err = r.await();
                IOException rec = recordCreated(st, r.created, st.vid);
                r.releaseClaims(st);
                if (err != null) throw err;
                if (rec != null) throw rec;
            }
        } finally {
            rw.readLock().unlock();
        }
    }

    /** Nothing is cached on the client side: every acknowledged write is on the replicas already. */
    public void flush() { }

    /** Releases the VDI lock if this volume took one. */
    @Override
    public void close() throws IOException {
        if (closed) return;
        closed = true;
        if (lockedVid != 0) {
            client.releaseVdi(lockedVid, Proto.LOCK_TYPE_NORMAL);
            int cur = state.vid;
            if (cur != lockedVid) releaseQuietly(client, cur);
        }
    }

    // ------------------------------------------------------------------ helpers

    /** The part of a request that falls into one object. */
    record Piece(int idx, long objOff, int bufOff, int len) { }

    static List<Piece> split(long objSize, int shift, long offset, int bufOff, int len) {
        List<Piece> out = new ArrayList<>();
        long pos = offset;
        int done = 0;
        while (done < len) {
            int idx = (int) (pos >>> shift);
            long inObj = pos & (objSize - 1);
            int n = (int) Math.min(objSize - inObj, len - done);
            out.add(new Piece(idx, inObj, bufOff + done, n));
            pos += n;
            done += n;
        }
        return out;
    }

    private static List<Piece> split(State st, long offset, int bufOff, int len) {
        return split(st.objSize, st.shift, offset, bufOff, len);
    }

    private static void checkRange(State st, long offset, long len) throws IOException {
        if (offset < 0 || len < 0 || offset + len > st.size) {
            throw new IOException("range " + offset + "+" + len + " is beyond the end of the VDI (" + st.size + " bytes)");
        }
    }

    private void ensureOpen() throws IOException {
        if (closed) throw new IOException("volume " + name + " is closed");
    }

    private void ensureWritable() throws IOException {
        ensureOpen();
        if (!writable) throw new SheepdogException(SdResult.READONLY);
    }

    private static void awaitAll(List<? extends CompletableFuture<?>> fs) throws IOException {
        IOException first = null;
        for (CompletableFuture<?> f : fs) {
            try {
                SheepClient.join(f);
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }

    private static void releaseQuietly(SheepClient client, int vid) {
        try {
            client.releaseVdi(vid, Proto.LOCK_TYPE_NORMAL);
        } catch (IOException ignored) {
            // best effort: the lock dies with our gateway node's membership anyway
        }
    }
}
