package io.sheepdog.sheep.gateway;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.StripVersion;
import io.sheepdog.proto.StripVersion.State;
import io.sheepdog.sheep.node.ClusterView;
import io.sheepdog.sheep.ops.SdError;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's I/O on erasure-coded objects (docs/protocol.md §13), with versioned strips ({@link StripVersion}).
 *
 * <p>A write covers whole 512-byte stripes: the stripes it only partly covers are read first and merged
 * (read-modify-write), then the stripes are cut into d data and p parity strips, and position j of the placement
 * writes strip j, moving every strip from the version the object is at to a new one. A strip refuses a write based
 * on another version than its own, so a write never lands on top of a strip that missed an earlier one. Before
 * writing, the gateway knows every position is at one version: from its last write of the object at the same epoch,
 * or else it asks them ({@link #settle}) and, if a failed write left them at different versions, rewrites the odd
 * ones from d strips of the newest version that d strips show.
 *
 * <p>A read asks the d data positions for their strips; if they are all at one version they are the answer.
 * Otherwise (a missing strip, a write under way or one that failed part-way) it asks every position, picks the
 * newest version d of them can show and decodes from strips of that version only. A write that failed part-way so
 * leaves every block with its old bytes or its new ones, never a mix.
 */
final class ErasureCodedIo {
    private static final Logger LOG = LoggerFactory.getLogger(ErasureCodedIo.class);
    /**
     * Read-modify-writes of one object through this gateway go one at a time, so two writes into the same stripe
     * cannot each merge the other's old bytes. (A client writing the same stripe through two gateways at once has
     * no order between the writes in any case.)
     */
    private static final int LOCKS = 256;
    /** Most objects whose version this gateway remembers; past that it forgets them all and asks again. */
    private static final int MAX_KNOWN = 100_000;

    private final Gateway gw;
    private final ReentrantLock[] locks = new ReentrantLock[LOCKS];
    /** oid -> {epoch, version}: every position of the placement at that epoch had the version after our write. */
    private final ConcurrentHashMap<Long, long[]> known = new ConcurrentHashMap<>();

    ErasureCodedIo(Gateway gw) {
        this.gw = gw;
        for (int i = 0; i < LOCKS; i++) locks[i] = new ReentrantLock();
    }

    /** One position's answer: its result, its strip's state (null unless it answered) and the bytes read, if any. */
    private record Answer(int result, State state, byte[] data) {
        boolean present() { return state != null; }
    }

    // ------------------------------------------------------------------ read

    byte[] read(long oid, ErasureCode ec, long offset, int len) throws SdError {
        long start = floor(offset);
        long end = ceil(offset + len);
        byte[] stripes = readStripes(oid, ec, start, (int) (end - start), true, null);
        if (start == offset && stripes.length == len) return stripes;
        byte[] out = new byte[len];
        System.arraycopy(stripes, (int) (offset - start), out, 0, len);
        return out;
    }

    /**
     * Whole stripes [start, start+len) of the object, from d strips of one version. {@code wait}: while too few
     * strips of one version answer, wait for membership or recovery to change that (until the retry deadline);
     * otherwise give up at once with NO_OBJ. {@code version}, when not null, receives the version read.
     */
    private byte[] readStripes(long oid, ErasureCode ec, long start, int len, boolean wait, long[] version) throws SdError {
        int d = ec.dataStrips();
        long stripOff = ec.stripOffset(start);
        int stripLen = ec.stripLength(len);
        long deadline = System.currentTimeMillis() + Gateway.RETRY_DEADLINE_MS;
        while (true) {
            ClusterView v = gw.usableView();
            List<SdNode> targets = placement(v, oid, ec);
            Answer[] got = new Answer[targets.size()];
            // the data strips first: at one version they are the answer, with nothing to decode
            fetch(oid, ec, v, targets, 0, d, StripVersion.ANY, stripOff, stripLen, got);
            Long at = StripVersion.choose(states(got), d);
            if (at == null || !allAt(got, 0, d, at)) {
                fetch(oid, ec, v, targets, d, targets.size(), StripVersion.ANY, stripOff, stripLen, got);
                at = StripVersion.choose(states(got), d);
            }
            if (at != null) {
                byte[][] strips = stripsAt(oid, ec, v, targets, got, at, stripOff, stripLen);
                if (strips != null) {
                    if (version != null) version[0] = at;
                    byte[] out = new byte[len];
                    ec.join(Arrays.copyOf(strips, d), out, 0);
                    return out;
                }
                if (System.currentTimeMillis() < deadline) continue; // a write moved the strips meanwhile: ask again
                throw new SdError(SdResult.EIO, String.format("read %016x: the strips kept moving", oid));
            }
            boolean anyPresent = false, unsure = false;
            int lastErr = SdResult.EIO;
            for (Answer a : got) {
                anyPresent |= a.present();
                if (!a.present() && a.result() != SdResult.NO_OBJ) {
                    unsure = true;
                    lastErr = a.result();
                }
            }
            if (!anyPresent && !unsure) throw new SdError(SdResult.NO_OBJ, String.format("read %016x", oid));
            if (!wait && !unsure) throw new SdError(SdResult.NO_OBJ, String.format("%016x: no d strips of one version", oid));
            // fewer than d strips of one version: a membership change or recovery is under way. Wait for it.
            if (!gw.awaitNextEpoch(v, deadline)) {
                throw new SdError(lastErr == SdResult.NETWORK_ERROR || !unsure ? SdResult.EIO : lastErr,
                        String.format("read %016x: fewer than %d strips of one version within %d s", oid, d,
                                Gateway.RETRY_DEADLINE_MS / 1000));
            }
        }
    }

    /**
     * The strips at version {@code at}: those read at it already, the rest (up to d) read again at that version
     * from positions that can show it; decoded where needed. Null if fewer than d could be had (the strips moved).
     */
    private byte[][] stripsAt(long oid, ErasureCode ec, ClusterView v, List<SdNode> targets, Answer[] got, long at,
            long stripOff, int stripLen) {
        int d = ec.dataStrips();
        byte[][] strips = new byte[ec.totalStrips()][];
        int have = 0;
        List<Integer> again = new ArrayList<>();
        for (int i = 0; i < got.length; i++) {
            Answer a = got[i];
            if (a == null || !a.present()) continue;
            if (a.state().version() == at && a.data() != null && a.data().length == stripLen) {
                if (have < d) {
                    strips[i] = a.data();
                    have++;
                }
            } else if (a.state().shows(at)) {
                again.add(i);
            }
        }
        if (have < d && !again.isEmpty()) {
            Answer[] more = new Answer[got.length];
            List<PeerCall> f = new ArrayList<>();
            for (int i : again) f.add(readAsync(oid, ec, v, targets.get(i), i, at, stripOff, stripLen));
            for (int k = 0; k < again.size(); k++) {
                int i = again.get(k);
                more[i] = answer(f.get(k).await()); // every call awaited: each gives its connection back only then
                if (have < d && more[i].data() != null && more[i].data().length == stripLen) {
                    strips[i] = more[i].data();
                    have++;
                }
            }
        }
        if (have < d) return null;
        boolean dataComplete = true;
        for (int i = 0; i < d; i++) dataComplete &= strips[i] != null;
        if (!dataComplete) ec.reconstructData(strips);
        return strips;
    }

    /** Reads positions [from, to) at {@code want} in parallel into {@code got}. */
    private void fetch(long oid, ErasureCode ec, ClusterView v, List<SdNode> targets, int from, int to, long want,
            long stripOff, int stripLen, Answer[] got) {
        List<PeerCall> replies = new ArrayList<>(Collections.nCopies(to - from, null));
        // the remote strips first, then the local one (read in this thread): the read takes as long as the slowest
        // strip, not the local read plus the remote ones
        for (int pass = 0; pass < 2; pass++) {
            for (int i = from; i < to; i++) {
                if (gw.isSelf(targets.get(i)) != (pass == 1)) continue;
                replies.set(i - from, readAsync(oid, ec, v, targets.get(i), i, want, stripOff, stripLen));
            }
        }
        for (int i = from; i < to; i++) got[i] = answer(replies.get(i - from).await());
    }

    private PeerCall readAsync(long oid, ErasureCode ec, ClusterView v, SdNode t, int index, long want,
            long stripOff, int stripLen) {
        SdRequest req = peer(Opcodes.READ_PEER, oid, ec, v, index).objOffset(stripOff).dataLength(stripLen).objCowOid(want);
        return gw.callOrLocal(t, req, null);
    }

    /** A versioned reply: its state and, after it, the bytes (none when the strip cannot show the version). */
    private static Answer answer(Reply r) {
        byte[] b = r.data();
        if (r.result() != SdResult.SUCCESS || b.length < StripVersion.STATE_BYTES) {
            State st = r.result() == SdResult.STRIP_VERSION && b.length >= StripVersion.STATE_BYTES ? State.decode(b, 0) : null;
            return new Answer(r.result(), st, null);
        }
        State st = State.decode(b, 0);
        byte[] data = b.length > StripVersion.STATE_BYTES ? Arrays.copyOfRange(b, StripVersion.STATE_BYTES, b.length) : null;
        return new Answer(SdResult.SUCCESS, st, data);
    }

    private static State[] states(Answer[] got) {
        State[] s = new State[got.length];
        for (int i = 0; i < got.length; i++) s[i] = got[i] == null ? null : got[i].state();
        return s;
    }

    private static boolean allAt(Answer[] got, int from, int to, long version) {
        for (int i = from; i < to; i++) {
            if (got[i] == null || !got[i].present() || got[i].state().version() != version || got[i].data() == null) return false;
        }
        return true;
    }

    // ------------------------------------------------------------------ write, create, remove

    /** Writes {@code data} at {@code offset} of an existing object. */
    void write(long oid, ErasureCode ec, long offset, byte[] data) throws SdError {
        ReentrantLock l = lockOf(oid);
        l.lock();
        try {
            long deadline = System.currentTimeMillis() + Gateway.RETRY_DEADLINE_MS;
            int conflicts = 0;
            while (true) {
                ClusterView v = gw.usableView();
                List<SdNode> targets = placement(v, oid, ec);
                gw.checkStrict(v, ec.totalStrips(), Opcodes.WRITE_PEER, oid);
                long[] k = known.get(oid);
                long base = k != null && k[0] == v.epoch() ? k[1] : settle(oid, ec, v, targets);
                int res;
                if (base == UNSETTLED) {
                    res = SdResult.NETWORK_ERROR;
                } else {
                    long start = floor(offset);
                    byte[] stripes = null;
                    try {
                        stripes = merged(oid, ec, offset, data, base);
                        res = SdResult.SUCCESS;
                    } catch (SdError e) {
                        if (e.result() != SdResult.STRIP_VERSION) throw e;
                        res = e.result();
                    }
                    if (res == SdResult.SUCCESS) {
                        long next = StripVersion.next(base);
                        res = send(Opcodes.WRITE_PEER, oid, ec, v, targets, start, stripes, base, next);
                        if (res == SdResult.SUCCESS) {
                            remember(oid, v.epoch(), next);
                            return;
                        }
                    }
                }
                known.remove(oid);
                if (res == SdResult.STRIP_VERSION && ++conflicts < 3) continue; // settle again at once
                if (!Gateway.isRetryable(res) && res != SdResult.NO_OBJ && res != SdResult.STRIP_VERSION) {
                    throw new SdError(res, String.format("write %016x", oid));
                }
                if (!gw.awaitNextEpoch(v, deadline)) {
                    throw new SdError(SdResult.EIO, String.format("write %016x: the strips did not settle at one version within %d s",
                            oid, Gateway.RETRY_DEADLINE_MS / 1000));
                }
                conflicts = 0;
            }
        } finally {
            l.unlock();
        }
    }

    /**
     * Creates the object with {@code data} at {@code offset} (zeros elsewhere), or as {@code fullImage}. Whatever a
     * failed create left of it is written over: the VDI does not name the object yet, so nothing it holds was ever
     * acknowledged.
     */
    void create(long oid, ErasureCode ec, long offset, byte[] data, byte[] fullImage) throws SdError {
        ReentrantLock l = lockOf(oid);
        l.lock();
        try {
            long deadline = System.currentTimeMillis() + Gateway.RETRY_DEADLINE_MS;
            while (true) {
                ClusterView v = gw.usableView();
                List<SdNode> targets = placement(v, oid, ec);
                gw.checkStrict(v, ec.totalStrips(), Opcodes.CREATE_AND_WRITE_PEER, oid);
                long start = fullImage != null ? 0 : floor(offset);
                // only the stripes the data touches: the rest of each strip is created as zeros, and zero stripes
                // have zero parity. A create that finds the object (a retry) merges with what it holds.
                byte[] stripes = fullImage != null ? fullImage : mergedForCreate(oid, ec, offset, data);
                long next = StripVersion.first();
                int res = send(Opcodes.CREATE_AND_WRITE_PEER, oid, ec, v, targets, start, stripes, StripVersion.ANY, next);
                if (res == SdResult.SUCCESS) {
                    remember(oid, v.epoch(), next);
                    return;
                }
                known.remove(oid);
                if (!Gateway.isRetryable(res)) throw new SdError(res, String.format("create %016x", oid));
                if (!gw.awaitNextEpoch(v, deadline)) {
                    throw new SdError(SdResult.EIO, String.format("create %016x: no stable membership", oid));
                }
            }
        } finally {
            l.unlock();
        }
    }

    void remove(long oid, ErasureCode ec) throws SdError {
        known.remove(oid);
        SdRequest req = new SdRequest().objOid(oid);
        gw.forward(Opcodes.REMOVE_PEER, req, ec.totalStrips(), ec, position -> null);
    }

    /** {@link #settle}: some position did not answer; try again once membership settles. */
    private static final long UNSETTLED = Long.MIN_VALUE;

    /**
     * Brings every position of the placement to one version and returns it: asks each for its strip's state; if
     * they differ (a write failed part-way, a position missed writes or lacks its strip), rewrites every position
     * not at the newest version d strips show with that version's strip. {@link #UNSETTLED} if a position did not
     * answer, no version has d strips or no position has a strip (wait: nodes or recovery may bring them).
     */
    private long settle(long oid, ErasureCode ec, ClusterView v, List<SdNode> targets) throws SdError {
        Answer[] got = new Answer[targets.size()];
        fetch(oid, ec, v, targets, 0, targets.size(), StripVersion.ANY, 0, 0, got);
        boolean anyPresent = false;
        for (Answer a : got) {
            if (!a.present() && a.result() != SdResult.NO_OBJ) return UNSETTLED;
            anyPresent |= a.present();
        }
        if (!anyPresent) {
            // a write names an object its VDI's table holds: no strip anywhere means its nodes are away (beyond the
            // redundancy, or recovery found no source yet), not that it does not exist. Wait, as for too few strips.
            LOG.warn("{}: no strip on any position at epoch {}: waiting", String.format("%016x", oid), v.epoch());
            return UNSETTLED;
        }
        Long at = StripVersion.choose(states(got), ec.dataStrips());
        if (at == null) {
            LOG.warn("{}: fewer than {} strips of one version at epoch {}: waiting", String.format("%016x", oid),
                    ec.dataStrips(), v.epoch());
            return UNSETTLED;
        }
        List<Integer> odd = new ArrayList<>();
        for (int i = 0; i < got.length; i++) if (!got[i].present() || got[i].state().version() != at) odd.add(i);
        if (odd.isEmpty()) return at;
        int stripLen = (int) (gw.sizes().of(oid) / ec.dataStrips());
        byte[][] strips = stripsAt(oid, ec, v, targets, got, at, 0, stripLen);
        if (strips == null) return UNSETTLED;
        ec.reconstruct(strips);
        List<PeerCall> f = new ArrayList<>();
        for (int i : odd) {
            f.add(gw.callOrLocal(targets.get(i), stripWrite(Opcodes.CREATE_AND_WRITE_PEER, oid, ec, v, i, 0,
                    stripLen), withVersions(StripVersion.ANY, at, strips[i])));
        }
        int res = SdResult.SUCCESS;
        for (var r : f) { // every call awaited: each gives its connection back only then
            int one = r.await().result();
            if (res == SdResult.SUCCESS) res = one;
        }
        if (res != SdResult.SUCCESS) return UNSETTLED;
        LOG.info("{}: {} of {} strips brought to version {} (a write had failed part-way, or strips were missing)",
                String.format("%016x", oid), odd.size(), got.length, Long.toHexString(at));
        return at;
    }

    /**
     * The whole stripes that {@code data} at {@code offset} falls in, with the bytes around it that those stripes
     * hold at version {@code base}.
     */
    private byte[] merged(long oid, ErasureCode ec, long offset, byte[] data, long base) throws SdError {
        return merge(offset, data, (stripe, buf, at) -> {
            long[] read = new long[1];
            byte[] s = readStripes(oid, ec, stripe, ErasureCode.STRIPE, true, read);
            if (read[0] != base) throw new SdError(SdResult.STRIP_VERSION, String.format("%016x moved on", oid));
            System.arraycopy(s, 0, buf, at, s.length);
        });
    }

    /** As {@link #merged}, for a create: what the object holds if d strips of one version are there, else zeros. */
    private byte[] mergedForCreate(long oid, ErasureCode ec, long offset, byte[] data) throws SdError {
        return merge(offset, data, (stripe, buf, at) -> {
            try {
                byte[] s = readStripes(oid, ec, stripe, ErasureCode.STRIPE, false, null);
                System.arraycopy(s, 0, buf, at, s.length);
            } catch (SdError e) {
                if (e.result() != SdResult.NO_OBJ) throw e;
            }
        });
    }

    private interface StripeReader {
        void readInto(long stripe, byte[] buf, int at) throws SdError;
    }

    private static byte[] merge(long offset, byte[] data, StripeReader r) throws SdError {
        long start = floor(offset);
        long end = ceil(offset + data.length);
        byte[] buf = new byte[(int) (end - start)];
        if (offset != start) r.readInto(start, buf, 0);
        long tail = end - ErasureCode.STRIPE;
        if (offset + data.length != end && (tail != start || offset == start)) r.readInto(tail, buf, (int) (tail - start));
        System.arraycopy(data, 0, buf, (int) (offset - start), data.length);
        return buf;
    }

    /**
     * Sends strip j of {@code stripes} to position j of {@code targets}, moving it from {@code base} to {@code next};
     * the remote ones first, then the local one. SUCCESS if every position took it, else the first failure (a
     * retryable one first).
     */
    private int send(int peerOp, long oid, ErasureCode ec, ClusterView v, List<SdNode> targets, long start,
            byte[] stripes, long base, long next) {
        byte[][] strips = ec.encode(stripes, 0, stripes.length);
        long stripOff = ec.stripOffset(start);
        List<PeerCall> f = new ArrayList<>(Collections.nCopies(targets.size(), null));
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < targets.size(); i++) {
                if (gw.isSelf(targets.get(i)) != (pass == 1)) continue;
                SdRequest req = stripWrite(peerOp, oid, ec, v, i, stripOff, strips[i].length);
                f.set(i, gw.callOrLocal(targets.get(i), req, withVersions(base, next, strips[i])));
            }
        }
        int err = SdResult.SUCCESS;
        for (var r : f) {
            int res = r.await().result();
            if (res == SdResult.SUCCESS) continue;
            if (err == SdResult.SUCCESS || (Gateway.isRetryable(res) && !Gateway.isRetryable(err))) err = res;
        }
        return err;
    }

    private SdRequest peer(int op, long oid, ErasureCode ec, ClusterView v, int index) {
        return new SdRequest().opcode(op).protoVer(Proto.SHEEP_PROTO_VER).epoch(v.epoch()).objOid(oid)
                .flags(SdFlags.CMD_FWD | SdFlags.CMD_VERSIONED).objCopyPolicy(ec.policy()).objEcIndex(index);
    }

    private SdRequest stripWrite(int op, long oid, ErasureCode ec, ClusterView v, int index, long stripOff, int len) {
        SdRequest r = peer(op, oid, ec, v, index).objOffset(stripOff).dataLength(2L * Long.BYTES + len);
        return r.flags(r.flags() | SdFlags.CMD_WRITE);
    }

    private static byte[] withVersions(long base, long next, byte[] strip) {
        return ByteBuffer.allocate(2 * Long.BYTES + strip.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(base).putLong(next).put(strip).array();
    }

    /** The placement of {@code oid} at {@code v}; HALT with fewer positions than data strips. */
    private static List<SdNode> placement(ClusterView v, long oid, ErasureCode ec) throws SdError {
        List<SdNode> targets = v.ring().targets(oid, v.ring().effectiveCopies(ec.totalStrips()));
        if (targets.size() < ec.dataStrips()) {
            throw new SdError(SdResult.HALT, String.format("%016x: %d zones for %d data strips", oid, targets.size(), ec.dataStrips()));
        }
        return targets;
    }

    private void remember(long oid, int epoch, long version) {
        if (known.size() >= MAX_KNOWN) known.clear();
        known.put(oid, new long[] {epoch, version});
    }

    private ReentrantLock lockOf(long oid) {
        return locks[(int) ((oid ^ (oid >>> 29)) & (LOCKS - 1))];
    }

    private static long floor(long off) { return off / ErasureCode.STRIPE * ErasureCode.STRIPE; }

    private static long ceil(long off) { return (off + ErasureCode.STRIPE - 1) / ErasureCode.STRIPE * ErasureCode.STRIPE; }
}
