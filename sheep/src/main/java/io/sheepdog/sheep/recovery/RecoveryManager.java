package io.sheepdog.sheep.recovery;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.StripVersion;
import io.sheepdog.proto.VnodeRing;
import io.sheepdog.sheep.gateway.Gateway;
import io.sheepdog.sheep.gateway.PeerService;
import io.sheepdog.sheep.node.ClusterView;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.store.ObjectStore;
import io.sheepdog.sheep.store.StoreKey;
import io.sheepdog.sheep.store.StripStore;
import io.sheepdog.sheep.vdi.VdiRegistry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Brings every object back to its place after a membership change (docs/daemon.md §7). On each new epoch: objects
 * this node no longer holds go to the stale area (still readable by recovering peers); the object lists of all
 * members (live and stale) tell which objects belong here now and who has a copy; each missing one is fetched,
 * a live copy preferred over a stale one. A client request that touches an object still waiting here recovers it
 * first, so I/O goes on during recovery and nothing is reported missing.
 */
public final class RecoveryManager implements PeerService.RecoveryHook {
    private static final Logger LOG = LoggerFactory.getLogger(RecoveryManager.class);
    private static final int WORKERS = 8;

    private final NodeState state;
    private final ObjectStore store;
    private final Gateway gateway;
    private final StripStore strips;
    private final VdiRegistry vdis;
    private final Broadcast broadcast;
    private volatile Run current;
    /** Set by {@link #close}: no run starts after it. */
    private volatile boolean closed;
    private volatile boolean enabled = true;
    private volatile int throttleMax;
    private volatile long throttleIntervalMs;
    private final Map<Integer, Set<NodeId>> completions = new ConcurrentHashMap<>();
    /** Held (shared) while recovery stores an object, and (exclusively) by a new run before it reads the store. */
    private final ReentrantReadWriteLock placing = new ReentrantReadWriteLock();
    /** Held while copies become stale (recovery, a re-join) and while stale copies are purged. */
    private final ReentrantLock staleLock = new ReentrantLock();
    /** Slow store housekeeping (purging stale copies), one task at a time, off the cluster event thread. */
    private final ExecutorService housekeeping =
            Executors.newSingleThreadExecutor(Thread.ofVirtual().name("housekeeping").factory());

    /** Sends a message to every node in the cluster's order (here: this node's COMPLETE_RECOVERY). */
    @FunctionalInterface
    public interface Broadcast {
        void send(SdRequest req);
    }

    /**
     * @param strips    the versioned view of {@code store}'s erasure-coded strips (rebuilt strips are stored through it)
     * @param broadcast how this node tells every node it finished an epoch's recovery
     */
    public RecoveryManager(NodeState state, ObjectStore store, Gateway gateway, StripStore strips, VdiRegistry vdis,
                           Broadcast broadcast) {
        this.state = state;
        this.store = store;
        this.gateway = gateway;
        this.strips = strips;
        this.vdis = vdis;
        this.broadcast = broadcast;
    }

    /** One recovery pass for one epoch. */
    private final class Run {
        final int epoch;
        final int prevEpoch;
        final CountDownLatch prepared = new CountDownLatch(1);
        final Map<Long, List<Source>> pending = new ConcurrentHashMap<>();
        final Map<Long, Object> inProgress = new ConcurrentHashMap<>();
        volatile boolean cancelled;
        volatile int phase; // 0 preparing, 1 recovering, 2 notifying
        volatile long total;
        final AtomicLong done = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        /** Objects put back from a local stale copy whose SHA-1 matched a live copy's. */
        final AtomicLong restored = new AtomicLong();
        Thread thread;

        Run(int epoch, int prevEpoch) {
            this.epoch = epoch;
            this.prevEpoch = prevEpoch;
        }
    }

    /**
     * A copy of an object (or, erasure coded, one strip of it: {@code key}) that recovery may read: on {@code node}, live or stale; a stale one was kept at epoch {@code keptAt}
     * (the last epoch in which it was current, so a higher one is more recent).
     */
    private record Source(SdNode node, boolean stale, int keptAt, long key) {
        static Source live(SdNode node, long key) { return new Source(node, false, 0, key); }
    }

    /** Live before stale, stale ones most recent first, and within each the very copy or strip wanted first. */
    private static Comparator<Source> bestFirst(long wanted) {
        return Comparator.comparing(Source::stale)
                .thenComparing(Source::keptAt, Comparator.reverseOrder())
                .thenComparing(s -> s.key != wanted);
    }

    public void setEnabled(boolean on) {
        enabled = on;
        synchronized (this) { notifyAll(); }
    }

    /** Starts recovery for {@code epoch} (superseding any running one). Called on the cluster event thread. */
    public synchronized void start(int epoch, List<SdNode> prevNodes, int prevEpoch) {
        stop();
        if (closed) return;
        Run r = new Run(epoch, prevEpoch);
        current = r;
        r.thread = Thread.ofVirtual().name("recovery-" + epoch).start(() -> run(r));
    }

    /**
     * Recovers, at the current epoch, what this node should hold and does not (after it lost a disk): the placement is
     * unchanged, so only the missing objects are fetched. Requests for them wait for them meanwhile. A run for a newer
     * epoch about to start looks at the store afresh anyway.
     */
    public synchronized void startLocal(String why) {
        ClusterView v = state.view();
        if (v.status() != Proto.STATUS_OK) return;
        Run r = current;
        if (r != null && r.epoch > v.epoch()) return;
        LOG.info("{}: recovering its objects at epoch {}", why, v.epoch());
        start(v.epoch(), v.epochNodes(), v.epoch());
    }

    /** When {@link #missing} last started a run (it starts at most one every few seconds). */
    private final AtomicLong lastMissingRun = new AtomicLong();
    private static final long MISSING_RUN_INTERVAL_MS = 5_000;

    @Override
    public void missing(long oid) {
        if (current != null) return; // a run is going: it brings what is missing, or the next one will
        long now = System.currentTimeMillis();
        long last = lastMissingRun.get();
        if (now - last < MISSING_RUN_INTERVAL_MS || !lastMissingRun.compareAndSet(last, now)) return;
        startLocal("object " + StoreKey.display(oid) + " is missing from the store");
    }

    public synchronized void stop() {
        Run r = current;
        if (r != null) {
            r.cancelled = true;
            r.prepared.countDown();
            current = null;
        }
    }

    /** How long {@link #close} waits for a cancelled run's last store change and for housekeeping. */
    private static final long CLOSE_WAIT_MS = 10_000;

    /**
     * Stops recovery for good: cancels the running pass and waits (bounded) until it and the store change it may be
     * making are over, and until housekeeping ends, so that nothing recovery started touches the store after the
     * daemon closes it (a sheep in a test JVM is closed while the others, seeing it leave, go on).
     */
    public void close() {
        Run r;
        synchronized (this) {
            closed = true;
            r = current;
            stop();
        }
        housekeeping.shutdown();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(CLOSE_WAIT_MS);
        try {
            if (r != null && r.thread != null) r.thread.join(Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
            // a cancelled run's workers stop at their next check, but one may be storing an object under the lock
            if (placing.writeLock().tryLock(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                placing.writeLock().unlock();
            } else {
                LOG.warn("recovery still storing an object after {} ms; closing anyway", CLOSE_WAIT_MS);
            }
            if (!housekeeping.awaitTermination(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                LOG.warn("store housekeeping still running after {} ms; closing anyway", CLOSE_WAIT_MS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public void moveAllToStale(int epoch) {
        staleLock.lock();
        try {
            List<Long> all = store.list();
            for (long oid : all) store.moveToStale(oid, Math.max(epoch, 0));
            if (!all.isEmpty()) LOG.info("rejoining after missed epochs: kept {} objects as recovery sources only", all.size());
        } catch (IOException e) {
            LOG.error("cannot move objects to stale: {}", e.toString());
        } finally {
            staleLock.unlock();
        }
    }

    private void run(Run r) {
        try {
            // started just before the view of its epoch is published (see Membership.newEpoch)
            if (!state.awaitEpoch(r.epoch, 10_000)) LOG.warn("recovery for epoch {}: the view is late", r.epoch);
            if (r.cancelled) return;
            ClusterView v = state.view();
            VnodeRing ring = v.ring();
            NodeId self = state.self().nid();
            // a superseded run may still be writing what it fetched for the old placement: let it finish (or see
            // that it was cancelled) before this run looks at the store
            placing.writeLock().lock();
            placing.writeLock().unlock();
            // 0. where an object goes depends on its VDI's state: learn the VDIs this node has not heard of yet
            List<Long> local = store.list();
            learnVdis(local, v.members());
            // 1. what no longer belongs here becomes stale (not while a purge of the last epoch's stale copies runs:
            // it would take these for those)
            staleLock.lock();
            try {
                for (long key : local) {
                    if (r.cancelled) return;
                    if (StoreKey.isStrip(key) && gateway.sizes().codeOf(StoreKey.oid(key)) == null) {
                        LOG.warn("strip {} of a VDI no member knows: left in place", StoreKey.display(key));
                        continue;
                    }
                    if (StoreKey.isStrip(key) && tooFewZones(ring, StoreKey.oid(key))) continue;
                    if (wantedKey(ring, StoreKey.oid(key), self) != key) store.moveToStale(key, r.prevEpoch);
                }
            } finally {
                staleLock.unlock();
            }
            // 2. who has what (every strip of an erasure-coded object is a source for any of its strips)
            Map<Long, List<Source>> holders = new HashMap<>();
            for (SdNode n : v.members()) {
                if (n.nid().equals(self)) continue;
                for (long[] e : objectList(n, r.epoch)) {
                    Source s = e[1] == 0 ? Source.live(n, e[0]) : new Source(n, true, (int) e[1], e[0]);
                    holders.computeIfAbsent(StoreKey.oid(e[0]), k -> new ArrayList<>()).add(s);
                }
            }
            for (var c : store.listStaleCopies()) {
                holders.computeIfAbsent(StoreKey.oid(c.key()), k -> new ArrayList<>())
                        .add(new Source(state.self(), true, c.epoch(), c.key()));
            }
            learnVdis(holders.keySet(), v.members());
            for (var en : holders.entrySet()) {
                if (tooFewZones(ring, en.getKey())) continue;
                long key = wantedKey(ring, en.getKey(), self);
                if (key == NOTHING || store.exists(key)) continue;
                // a whole copy comes only from a whole copy, a strip only from strips: never one for the other
                List<Source> src = new ArrayList<>(en.getValue());
                src.removeIf(s -> StoreKey.isStrip(s.key) != StoreKey.isStrip(key));
                if (src.isEmpty()) continue;
                // A stale copy may be older than the live ones (a node back after missed epochs keeps its old
                // copies as stale), so a strip is rebuilt from d live ones rather than copied from a stale one of
                // the same index, and the most recent stale ones are taken first
                src.sort(bestFirst(key));
                r.pending.put(key, src);
            }
            r.total = r.pending.size();
            r.phase = 1;
            r.prepared.countDown();
            if (r.total > 0) LOG.info("recovery for epoch {}: {} objects to bring here", r.epoch, r.total);
            // 3. fetch
            List<Long> todo = new ArrayList<>(r.pending.keySet());
            Collections.sort(todo);
            Semaphore workers = new Semaphore(WORKERS);
            for (long oid : todo) {
                while (!enabled && !r.cancelled) {
                    synchronized (this) { wait(500); }
                }
                if (r.cancelled) return;
                throttle();
                workers.acquire();
                Thread.ofVirtual().start(() -> {
                    try {
                        if (!recoverOne(r, oid)) r.failed.incrementAndGet();
                    } finally {
                        workers.release();
                    }
                });
            }
            workers.acquire(WORKERS);
            if (r.cancelled) return;
            if (r.failed.get() > 0) {
                // Reporting completion would let every node purge its stale copies, which may be the last copies of
                // what could not be fetched: keep them, and let the next epoch (or cluster check) try again.
                LOG.warn("recovery for epoch {}: {} objects found no source; not reporting completion, stale copies kept",
                        r.epoch, r.failed.get());
                return;
            }
            r.phase = 2;
            LOG.info("recovery for epoch {} finished: {} objects, {} of them local copies checked by hash", r.epoch,
                    r.done.get(), r.restored.get());
            // no longer the running recovery before the completion goes out: this node's own completion (it may
            // be the last one) must find no recovery running here, or the stale copies are never purged
            synchronized (this) {
                if (current == r) current = null;
            }
            SdRequest done = SdRequest.of(Opcodes.COMPLETE_RECOVERY).objTgtEpoch(r.epoch);
            broadcast.send(done);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            LOG.error("recovery for epoch {} failed", r.epoch, e);
        } finally {
            r.prepared.countDown();
            synchronized (this) {
                if (current == r) current = null;
            }
        }
    }

    private void throttle() throws InterruptedException {
        if (throttleMax > 0 && throttleIntervalMs > 0) Thread.sleep(Math.max(1, throttleIntervalMs / throttleMax));
    }

    private static final long NOTHING = -1;
    /** Rounds over an object's sources before recovery gives up on it for this epoch. */
    private static final int FETCH_ROUNDS = 3;

    /** Asks the members for the VDI state of any of {@code keys} whose VDI this node does not know. */
    private void learnVdis(Collection<Long> keys, List<SdNode> members) {
        for (long key : keys) {
            long oid = StoreKey.oid(key);
            if (ErasureCode.appliesTo(oid) && vdis.state(Oids.vid(oid)) == null) {
                gateway.pullVdiStates(members, true);
                return;
            }
        }
    }

    /**
     * What this node should store of {@code oid} under {@code ring}: the oid if it holds a replica, strip j if it
     * is position j of an erasure-coded object's placement, else {@link #NOTHING}.
     */
    private long wantedKey(VnodeRing ring, long oid, NodeId self) {
        ErasureCode ec = gateway.sizes().codeOf(oid);
        if (ec == null) return ring.isTarget(oid, copiesOf(oid), self) ? oid : NOTHING;
        int position = ring.position(oid, ec.totalStrips(), self);
        return position >= 0 ? StoreKey.strip(oid, position) : NOTHING;
    }

    /**
     * With fewer zones than an erasure-coded object's data strips, its strips stay where they are: no placement of
     * that many nodes can serve it (I/O on it halts), and rebuilding strips for it would have to mix strips of
     * different epochs. Recovery takes it up again when the zones are back.
     */
    private boolean tooFewZones(VnodeRing ring, long oid) {
        ErasureCode ec = gateway.sizes().codeOf(oid);
        return ec != null && ring.nrZones() < ec.dataStrips();
    }

    private int copiesOf(long oid) {
        var s = vdis.state(Oids.vid(oid));
        int c = s != null && s.nrCopies != 0 ? s.nrCopies : state.settings().defaultCopies();
        return c;
    }

    /** Live and stale oids of a member: pairs {oid, stale?}. */
    private List<long[]> objectList(SdNode n, int epoch) {
        List<long[]> out = new ArrayList<>();
        long buf = 4L << 20;
        for (int attempt = 0; attempt < 8; attempt++) {
            SdRequest req = SdRequest.of(Opcodes.GET_OBJ_LIST).epoch(epoch).dataLength(buf).flags(SdFlags.CMD_WILDCARD);
            Reply rep = gateway.send(n, req, null);
            if (rep.result() == SdResult.BUFFER_SMALL) {
                buf *= 2;
                continue;
            }
            if (rep.result() != SdResult.SUCCESS) {
                LOG.warn("cannot get the object list of {}: {}", n.nid(), SdResult.message(rep.result()));
                return out;
            }
            ByteBuffer b = ByteBuffer.wrap(rep.data()).order(ByteOrder.LITTLE_ENDIAN);
            while (b.remaining() >= 8) {
                long oid = b.getLong();
                // the second word: 0 for a live copy, else STALE_MARK and the epoch the stale copy was kept at
                long flag = b.remaining() >= 8 ? b.getLong() : 0;
                out.add(new long[] {oid, flag});
            }
            return out;
        }
        return out;
    }

    private boolean recoverOne(Run r, long oid) {
        Object mark = new Object();
        Object other = r.inProgress.putIfAbsent(oid, mark);
        if (other != null) {
            synchronized (other) {
                while (r.inProgress.get(oid) == other) {
                    try { other.wait(200); } catch (InterruptedException e) { Thread.currentThread().interrupt(); return false; }
                }
            }
            return store.exists(oid);
        }
        try {
            List<Source> src = r.pending.get(oid);
            if (src == null || store.exists(oid)) return true;
            long size = gateway.sizes().of(oid);
            if (StoreKey.isStrip(oid)) {
                Rebuilt strip = recoverStrip(r, oid, (int) size, src);
                if (strip == null) {
                    LOG.warn("no strips of one version enough to rebuild strip {} at epoch {}", StoreKey.display(oid), r.epoch);
                    return false;
                }
                if (!unlessSuperseded(r, () -> {
                    if (strip.undoData() == null) strips.create(oid, size, strip.version(), strip.data(), 0, null);
                    else strips.createWithUndo(oid, size, strip.undoTo(), strip.undoData(), strip.version(), strip.data());
                    return true;
                })) return false;
                r.done.incrementAndGet();
                r.pending.remove(oid);
                return true;
            }
            if (restoredLocally(r, oid, size, src)) {
                r.done.incrementAndGet();
                r.pending.remove(oid);
                return true;
            }
            // A stale copy may be older than the live ones: while any live copy exists, only live copies are sources
            // (if none answers now, the object is tried again later rather than brought back from an older state).
            boolean anyLive = src.stream().anyMatch(s -> !s.stale);
            // a few rounds: the first request to a peer may meet a connection that died meanwhile (this node was
            // stopped, the peer restarted); the pool then makes a fresh one
            for (int round = 0; round < FETCH_ROUNDS && !r.cancelled; round++) {
                if (round > 0) Thread.sleep(200L * round);
                for (Source s : src) {
                    if (anyLive && s.stale) break; // sorted live first
                    byte[] data = fetch(r, s, (int) size);
                    if (data == null) continue;
                    if (!place(r, oid, size, data)) return false;
                    r.done.incrementAndGet();
                    r.pending.remove(oid);
                    return true;
                }
            }
            LOG.warn("no source for object {} at epoch {}", StoreKey.display(oid), r.epoch);
            return false;
        } catch (IOException e) {
            LOG.error("recovering {} failed: {}", StoreKey.display(oid), e.toString());
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            r.inProgress.remove(oid);
            synchronized (mark) { mark.notifyAll(); }
        }
    }

    /**
     * Stores what recovery fetched, unless the run was superseded meanwhile: the next run has decided (or is about
     * to decide) what belongs here under the new placement, and an object or strip written after that would sit at
     * a place it does not belong, where a later recovery could take it for current.
     */
    private boolean place(Run r, long key, long size, byte[] data) throws IOException {
        return unlessSuperseded(r, () -> {
            store.create(key, size, null, 0, data);
            return true;
        });
    }

    private interface StoreChange {
        boolean apply() throws IOException;
    }

    /** Makes {@code change} to the store unless {@code r} was superseded (see {@link #place}); false if not made. */
    private boolean unlessSuperseded(Run r, StoreChange change) throws IOException {
        placing.readLock().lock();
        try {
            return !r.cancelled && change.apply();
        } finally {
            placing.readLock().unlock();
        }
    }

    /** The whole copy {@code s} names, from this node's stale area or from its holder; null if it failed. */
    private byte[] fetch(Run r, Source s, int size) throws IOException {
        if (s.node.nid().equals(state.self().nid())) return store.readStale(s.key, s.keptAt, 0, size);
        Reply rep = gateway.send(s.node, recoveryRead(r, s, size), null);
        return rep.result() == SdResult.SUCCESS && rep.data().length == size ? rep.data() : null;
    }

    private static SdRequest recoveryRead(Run r, Source s, int size) {
        int flags = SdFlags.CMD_RECOVERY | (s.stale ? SdFlags.CMD_WILDCARD : 0);
        return SdRequest.of(Opcodes.READ_PEER).epoch(r.epoch).objOid(StoreKey.oid(s.key)).dataLength(size)
                .objTgtEpoch(s.stale ? s.keptAt : r.prevEpoch).flags(flags);
    }

    /** A strip as recovery read it: its state, and its bytes at the version asked for (null if it cannot show it). */
    private record StripCopy(StripVersion.State state, byte[] data) {}

    /**
     * Strip copy {@code s} at version {@code want} ({@link StripVersion#ANY}; {@code size} 0 asks for the state
     * alone), from this node's stale area or from its holder; null if it could not be read.
     */
    private StripCopy fetchStrip(Run r, Source s, ErasureCode ec, long want, int size) throws IOException {
        if (s.node.nid().equals(state.self().nid())) {
            long stripSize = gateway.sizes().of(s.key);
            StripStore.Versioned v = strips.readStale(s.key, s.keptAt, stripSize, want, 0, size);
            return v == null ? null : new StripCopy(v.state(), v.data());
        }
        SdRequest read = recoveryRead(r, s, size).objCopyPolicy(ec.policy()).objEcIndex(StoreKey.index(s.key))
                .objCowOid(want);
        read.flags(read.flags() | SdFlags.CMD_VERSIONED);
        Reply rep = gateway.send(s.node, read, null);
        byte[] b = rep.data();
        if (rep.result() != SdResult.SUCCESS || b.length < StripVersion.STATE_BYTES) return null;
        byte[] data = size > 0 && b.length == StripVersion.STATE_BYTES + size
                ? Arrays.copyOfRange(b, StripVersion.STATE_BYTES, b.length) : null;
        return new StripCopy(StripVersion.State.decode(b, 0), data);
    }

    /**
     * A strip recovery made: its bytes and the version they are; and, when the object's strips were not all at that
     * version, the bytes of the version before it ({@code undoTo} 0: none kept).
     */
    private record Rebuilt(byte[] data, long version, byte[] undoData, long undoTo) {}

    /**
     * Strip {@code key} of an erasure-coded object at the newest version that d of its strips show (live or stale):
     * copied from a copy of that very strip if one shows the version, else decoded from d strips of that version
     * (docs/daemon.md §7, docs/protocol.md §13). Strips of different versions are never mixed. Null if no version has
     * d strips.
     *
     * <p>When some strip cannot show that version (a write reached some strips and not others, and no gateway has
     * settled the object since), the newest older version d strips show is rebuilt too and kept as the strip's undo:
     * a strip rebuilt at the new version alone would take one strip from the older version, and a node lost next
     * could then leave neither version with d strips (a write failed part-way is not acknowledged, but everything
     * acknowledged before it lives on only in the older version).
     */
    private Rebuilt recoverStrip(Run r, long key, int size, List<Source> src) throws IOException {
        ErasureCode ec = gateway.sizes().codeOf(StoreKey.oid(key));
        if (ec == null) return null;
        int d = ec.dataStrips();
        List<Source> usable = new ArrayList<>();
        List<StripVersion.State> states = new ArrayList<>();
        for (Source s : src) { // best first: live, then the most recent stale
            int i = StoreKey.index(s.key);
            if (i < 0 || i >= ec.totalStrips()) continue;
            StripCopy c = fetchStrip(r, s, ec, StripVersion.ANY, 0);
            if (c == null) continue;
            usable.add(s);
            states.add(c.state());
        }
        int[] index = usable.stream().mapToInt(s -> StoreKey.index(s.key)).toArray();
        StripVersion.State[] st = states.toArray(StripVersion.State[]::new);
        Long at = StripVersion.choose(index, st, d);
        if (at == null) return null;
        byte[] data = stripAt(r, key, size, ec, usable, index, st, at);
        if (data == null) return null;
        if (!lagging(index, st, at)) return new Rebuilt(data, at, null, 0);
        Long before = StripVersion.chooseBefore(index, st, d, at);
        byte[] undo = before == null ? null : stripAt(r, key, size, ec, usable, index, st, before);
        if (undo == null) return new Rebuilt(data, at, null, 0);
        LOG.info("strip {}: its object's strips are not all at version {}; {} kept as the strip's undo",
                StoreKey.display(key), Long.toHexString(at), Long.toHexString(before));
        return new Rebuilt(data, at, undo, before);
    }

    /** Whether some strip index has copies here and none of them shows {@code at}. */
    private static boolean lagging(int[] index, StripVersion.State[] st, long at) {
        BitSet seen = new BitSet(), showing = new BitSet();
        for (int k = 0; k < index.length; k++) {
            seen.set(index[k]);
            if (st[k].shows(at)) showing.set(index[k]);
        }
        return !seen.equals(showing);
    }

    /** Strip {@code key} at version {@code at}: from a copy of that very strip, else decoded from d strips of it. */
    private byte[] stripAt(Run r, long key, int size, ErasureCode ec, List<Source> usable, int[] index,
            StripVersion.State[] st, long at) throws IOException {
        int want = StoreKey.index(key), d = ec.dataStrips();
        byte[][] strips = new byte[ec.totalStrips()][];
        int have = 0;
        // the very strip first, if a copy of it shows the version; then any d strips of that version
        for (int pass = 0; pass < 2 && have < d; pass++) {
            for (int k = 0; k < usable.size() && have < d; k++) {
                int i = index[k];
                if ((i == want) != (pass == 0) || strips[i] != null || !st[k].shows(at)) continue;
                StripCopy c = fetchStrip(r, usable.get(k), ec, at, size);
                if (c == null || c.data() == null) continue;
                if (i == want) return c.data();
                strips[i] = c.data();
                have++;
            }
        }
        if (have < d) return null;
        ec.reconstruct(strips);
        return strips[want];
    }

    /**
     * docs/daemon.md §7 step 3: when this node still has a stale copy of {@code oid} (it was away, or the object
     * moved off and back), ask a live copy's holder for its SHA-1 first; if they are the same, the stale copy goes
     * back in place by a rename, and no data crosses the network or is written again. A node returning after a
     * short absence so gets back most of its objects at the cost of reading them once.
     */
    private boolean restoredLocally(Run r, long oid, long size, List<Source> src) throws IOException {
        NodeId self = state.self().nid();
        boolean haveStale = false;
        SdNode live = null;
        for (Source s : src) {
            if (s.node.nid().equals(self)) haveStale = true;
            else if (!s.stale && live == null) live = s.node;
        }
        if (!haveStale || live == null) return false;
        byte[] mine = store.staleSha1(oid, size);
        if (mine == null) return false;
        SdRequest ask = SdRequest.of(Opcodes.GET_HASH).epoch(r.epoch).objOid(oid).objTgtEpoch(r.prevEpoch);
        Reply rep = gateway.send(live, ask, null);
        if (rep.result() != SdResult.SUCCESS || !Arrays.equals(mine, rep.header().hashDigest())) return false;
        if (!unlessSuperseded(r, () -> store.restoreStale(oid))) return false;
        r.restored.incrementAndGet();
        return true;
    }

    /** A request touches {@code oid}: if it is waiting to be recovered here, recover it now. */
    @Override
    public void awaitRecovered(long oid) throws InterruptedException {
        Run r = current;
        if (r == null || store.exists(oid)) return;
        if (!r.prepared.await(30, TimeUnit.SECONDS)) return;
        if (r.pending.containsKey(oid)) recoverOne(r, oid);
    }

    /**
     * Drops the stale copies once every node recovered {@code epoch}, unless the cluster moved on meanwhile: a newer
     * epoch's recovery may have kept copies as stale that it still needs (it makes them under the same lock).
     */
    private void purgeIfStill(int epoch) {
        staleLock.lock();
        try {
            if (state.epoch() != epoch || current != null) {
                LOG.info("every node recovered epoch {}, but the cluster moved on: stale copies kept", epoch);
                return;
            }
            store.purgeStale();
            LOG.info("every node recovered epoch {}: stale copies purged", epoch);
        } catch (IOException e) {
            LOG.warn("cannot purge stale objects: {}", e.toString());
        } finally {
            staleLock.unlock();
        }
    }

    public synchronized void onCompleted(SdNode sender, int epoch) {
        Set<NodeId> s = completions.computeIfAbsent(epoch, k -> ConcurrentHashMap.newKeySet());
        s.add(sender.nid());
        ClusterView v = state.view();
        if (epoch != v.epoch()) return;
        Set<NodeId> all = new HashSet<>();
        for (SdNode n : v.members()) all.add(n.nid());
        if (s.containsAll(all) && current == null) {
            int d = largestDataStrips();
            if (v.ring().nrZones() < d) {
                // fewer zones than an erasure code's data strips: the strips that fit nowhere now live only in the
                // stale areas, and they are needed to rebuild the objects when zones return
                LOG.warn("every node recovered epoch {}, but {} zones are fewer than the {} data strips in use: "
                        + "stale copies kept", epoch, v.ring().nrZones(), d);
                return;
            }
            // deleting many files can take seconds: not on the cluster event thread, which this runs on
            try {
                housekeeping.execute(() -> purgeIfStill(epoch));
            } catch (RejectedExecutionException closing) {
                LOG.debug("not purging the stale copies of epoch {}: closing", epoch);
            }
            completions.keySet().removeIf(e -> e <= epoch);
        }
    }

    /** The most data strips of any erasure-coded VDI (0 if there are none). */
    private int largestDataStrips() {
        int d = 0;
        for (var st : vdis.all()) {
            if (ErasureCode.isValidPolicy(st.copyPolicy)) d = Math.max(d, ErasureCode.dataStrips(st.copyPolicy));
        }
        return d;
    }

    /** STAT_RECOVERY reply ({@code recovery_state}, 24 bytes). */
    public byte[] encodeState() {
        Run r = current;
        ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        if (r != null) {
            b.put(0, (byte) 1);
            b.putInt(4, r.phase);
            b.putLong(8, r.done.get());
            b.putLong(16, r.total);
        }
        return b.array();
    }

    public byte[] encodeThrottle() {
        ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, throttleMax);
        b.putLong(8, throttleIntervalMs);
        b.put(16, (byte) (throttleMax > 0 && throttleIntervalMs > 0 ? 1 : 0));
        return b.array();
    }

    /** At most {@code max} objects recovered every {@code intervalMs} milliseconds; 0 and 0: no throttle. */
    public void setThrottle(int max, long intervalMs) {
        throttleMax = max;
        throttleIntervalMs = intervalMs;
    }

    public void decodeThrottle(byte[] d) {
        if (d.length < 16) return;
        ByteBuffer b = ByteBuffer.wrap(d).order(ByteOrder.LITTLE_ENDIAN);
        setThrottle(b.getInt(0), b.getLong(8));
    }

    public boolean inRecovery() { return current != null; }
}
