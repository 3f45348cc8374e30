package io.sheepdog.sheep.gateway;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.node.ClusterView;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.IoStats;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.ops.SdError;
import io.sheepdog.sheep.store.ObjectSizes;
import io.sheepdog.sheep.vdi.VdiRegistry;
import io.sheepdog.sheep.vdi.VdiState;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway: a client may send object I/O to any sheep; this places the object on the vnode ring and sends the
 * replica operation to every node that holds a copy (writes, in parallel; acknowledged when all copies are durable)
 * or to one of them (reads, the local copy first). Epoch changes and peer failures make it wait for the next epoch
 * and retry with the new placement, so a client does not see them.
 */
public final class Gateway {
    private static final Logger LOG = LoggerFactory.getLogger(Gateway.class);
    /** Failures that repeat as often as clients or a dead peer make them. */
    private static final RateLimitedLog WARN = new RateLimitedLog(LOG);
    /**
     * How long a request keeps retrying through membership changes before it fails. The system properties
     * ({@code -Dsheepdog.retryDeadlineMs}, {@code -Dsheepdog.peerTimeoutMs}) let tests of hung peers use seconds.
     */
    static final long RETRY_DEADLINE_MS = Long.getLong("sheepdog.retryDeadlineMs", 60_000);
    /** How long one peer request may go unanswered before the gateway drops the connection and retries. */
    static final long PEER_TIMEOUT_MS = Long.getLong("sheepdog.peerTimeoutMs", 30_000);
    private static final Executor SENDERS =
            Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("peer-send").factory());

    private final NodeState state;
    private final VdiRegistry vdis;
    private final PeerService local;
    private final PeerPool peers;
    private final ObjectSizes sizes;
    private final IoStats stats;
    private volatile Reclaimer reclaimer;
    private final ErasureCodedIo erasureCoded = new ErasureCodedIo(this);

    /** @param stats where the stages of writes (the local copy, waiting for the remote ones) are timed */
    public Gateway(NodeState state, VdiRegistry vdis, PeerService local, PeerPool peers, ObjectSizes sizes,
                   IoStats stats) {
        this.stats = stats;
        this.state = state;
        this.vdis = vdis;
        this.local = local;
        this.peers = peers;
        this.sizes = sizes;
        this.reclaimer = new Reclaimer(this, vdis);
    }

    public ObjectSizes sizes() { return sizes; }

    private long lastVdiStatePull;

    /**
     * Merges the VDI state (copies, erasure code, block size) of each of {@code from} into this node's, now. A node
     * learns a VDI from the inodes it stores and from its peers at joins; one that has not heard of a VDI yet (it
     * holds none of its inode's copies, and the exchange after its join is still under way) asks here before it
     * places an object of that VDI, since the placement depends on the state.
     *
     * <p>Locks are taken from the answers only with {@code locks} (a node that joined, or does not know a VDI, has
     * none of them yet; the members pulling from a joiner have every lock already, through the ordered events), and
     * only those of a current member other than this node: a lock of a node that left, or of this node's former
     * self, is stale in any answer ({@link VdiRegistry#merge}).
     */
    public void pullVdiStates(List<SdNode> from, boolean locks) {
        java.util.function.Predicate<NodeId> liveOwner = !locks ? null
                : owner -> !owner.equals(state.self().nid())
                        && state.view().members().stream().anyMatch(m -> m.nid().equals(owner));
        for (SdNode n : from) {
            if (n.nid().equals(state.self().nid())) continue;
            for (long buf = 1 << 20; buf <= (1L << 30); buf *= 2) {
                SdRequest req = SdRequest.of(Opcodes.GET_VDI_COPIES).dataLength(buf);
                Reply r = send(n, req, null);
                if (r.result() == SdResult.BUFFER_SMALL) continue;
                if (r.result() == SdResult.SUCCESS) vdis.merge(r.data(), liveOwner);
                else LOG.warn("cannot get VDI state from {}: {}", n.nid(), SdResult.message(r.result()));
                break;
            }
        }
    }

    /**
     * The erasure code of {@code oid}, null if replicated. A data object of a VDI this node does not know yet would
     * otherwise be placed as a replicated one (and an erasure-coded object would read as absent): ask the members
     * first, at most once a second.
     */
    private ErasureCode codeOf(long oid) {
        ErasureCode ec = sizes.codeOf(oid);
        if (ec != null || !ErasureCode.appliesTo(oid) || vdis.state(Oids.vid(oid)) != null) return ec;
        synchronized (this) {
            long now = System.nanoTime();
            if (vdis.state(Oids.vid(oid)) == null && (lastVdiStatePull == 0 || now - lastVdiStatePull > 1_000_000_000L)) {
                lastVdiStatePull = now;
                pullVdiStates(state.view().members(), true);
            }
        }
        return sizes.codeOf(oid);
    }

    // ------------------------------------------------------------------ client requests

    /** Handles a public object request (CREATE_AND_WRITE, READ, WRITE, REMOVE) from a client. */
    public Reply handle(Request r) {
        SdRequest h = r.hdr();
        SdResponse rsp = SdResponse.replyTo(h, SdResult.SUCCESS);
        try {
            long oid = h.objOid();
            if (h.objOffsetHigh() != 0) throw new SdError(SdResult.INVALID_PARMS, "offset beyond 4 GiB");
            long size = sizes.of(oid);
            long off = h.objOffset();
            byte[] out = Request.NO_DATA;
            switch (h.opcode()) {
                case Opcodes.READ_OBJ -> {
                    long len = h.dataLength();
                    if (off + len > size) throw new SdError(SdResult.INVALID_PARMS, "read beyond object end");
                    out = read(oid, off, (int) len);
                }
                case Opcodes.WRITE_OBJ -> {
                    boolean table = Oids.isInode(oid) && off + r.payloadLength() > Inode.DATA_VDI_ID_OFFSET;
                    int fenced = enterFence(oid, table);
                    try {
                        checkWritable(oid, r);
                        if (off + r.payloadLength() > size) throw new SdError(SdResult.INVALID_PARMS, "write beyond object end");
                        if (table) {
                            writeInodeTable(oid, off, r.bytes(), h.objCopies());
                        } else if (r.body() != null && codeOf(oid) == null) {
                            writeBody(oid, off, r.body(), h.objCopies());
                        } else {
                            write(oid, off, r.bytes(), h.objCopies());
                        }
                    } finally {
                        if (fenced != 0) fence.exit(fenced);
                    }
                }
                case Opcodes.CREATE_AND_WRITE_OBJ -> {
                    int fenced = enterFence(oid, false);
                    try {
                        checkWritable(oid, r);
                        if (off + r.payloadLength() > size) throw new SdError(SdResult.INVALID_PARMS, "write beyond object end");
                        long cow = h.hasFlag(SdFlags.CMD_COW) ? h.objCowOid() : 0;
                        create(oid, off, r.bytes(), h.objCopies(), cow);
                        if (Oids.isData(oid)) fence.created(Oids.vid(oid), Oids.index(oid));
                    } finally {
                        if (fenced != 0) fence.exit(fenced);
                    }
                }
                case Opcodes.REMOVE_OBJ -> remove(oid, h.objCopies());
                default -> throw new SdError(SdResult.INVALID_PARMS);
            }
            rsp.dataLength(out.length).epoch(state.epoch());
            return new Reply(rsp, out);
        } catch (SdError e) {
            // a read of an absent object is an everyday answer; a write or remove that finds none is not
            if ((e.result() != SdResult.NO_OBJ || h.opcode() != Opcodes.READ_OBJ) && e.result() != SdResult.READONLY) {
                WARN.warn("failed", "{} from {} failed ({}): {}", h, r.client().display(), SdResult.name(e.result()), e.getMessage());
            }
            return new Reply(rsp.result(e.result()).epoch(state.epoch()), Request.NO_DATA);
        }
    }

    /**
     * Enters {@link #fence} for a client's write of a VDI's data (waiting while a snapshot of it is being made) or of
     * its object table (never waiting); the VID to {@link VdiWriteFence#exit}, or 0 for other objects.
     */
    private int enterFence(long oid, boolean table) throws SdError {
        if (table) {
            int vid = Oids.vid(oid);
            fence.enterRecord(vid);
            return vid;
        }
        if (!Oids.isData(oid) && !Oids.isVmstate(oid)) return 0;
        int vid = Oids.vid(oid);
        try {
            fence.enterWrite(vid);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SdError(SdResult.SYSTEM_ERROR, "interrupted");
        }
        return vid;
    }

    /** Holds a VDI's writes through this gateway while a snapshot of it is made (see {@link VdiWriteFence}). */
    public VdiWriteFence fence() { return fence; }

    /** How long a snapshot's pause of a VDI's writes lasts at most (if its node dies before it resumes them). */
    static final long FENCE_TTL_MS = 15_000;
    /** How long a pause waits for the writes in flight to be done. */
    static final long FENCE_DRAIN_MS = 10_000;

    /** FENCE_VDI here: pause (and wait for the writes in flight) or resume {@code vid}'s writes through this node. */
    public int fenceHere(int vid, boolean pause) {
        if (!pause) {
            fence.resume(vid);
            return SdResult.SUCCESS;
        }
        try {
            if (fence.pause(vid, FENCE_TTL_MS, FENCE_DRAIN_MS)) return SdResult.SUCCESS;
            LOG.warn("writes of VDI {} still in flight after {} ms: the snapshot cannot be made now", Integer.toHexString(vid), FENCE_DRAIN_MS);
            return SdResult.SYSTEM_ERROR;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return SdResult.SYSTEM_ERROR;
        }
    }

    /**
     * Pauses (waiting until the writes in flight are done) or resumes {@code vid}'s writes through every member, this
     * node included, all at once; true if every member answered SUCCESS.
     */
    public boolean fenceEverywhere(int vid, boolean pause) {
        List<SdNode> members = state.view().members();
        List<CompletableFuture<Integer>> answers = new ArrayList<>();
        for (SdNode n : members) {
            CompletableFuture<Integer> f = new CompletableFuture<>();
            Thread.ofVirtual().name("fence-vdi").start(() -> {
                try {
                    if (n.nid().equals(state.self().nid())) {
                        f.complete(fenceHere(vid, pause));
                    } else {
                        SdRequest req = SdRequest.of(Opcodes.FENCE_VDI).objOid(vid).objOffset(pause ? 1 : 0);
                        f.complete(send(n, req, null).result());
                    }
                } catch (RuntimeException e) {
                    f.complete(SdResult.SYSTEM_ERROR);
                }
            });
            answers.add(f);
        }
        // a member that cannot be reached (down, hung: it is about to be evicted, and its writes with it) holds
        // nobody up; one that answers that its writes did not pause fails the snapshot
        boolean all = true;
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(FENCE_DRAIN_MS + 3000);
        for (int i = 0; i < answers.size(); i++) {
            int res;
            try {
                res = answers.get(i).get(Math.max(0, until - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
                res = SdResult.NETWORK_ERROR;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
            if (res == SdResult.SUCCESS) continue;
            LOG.warn("{} of VDI {} at {}: {}", pause ? "pausing the writes" : "resuming the writes",
                    Integer.toHexString(vid), members.get(i).nid(), SdResult.name(res));
            if (res != SdResult.NETWORK_ERROR) all = false;
        }
        return all;
    }

    private final VdiWriteFence fence = new VdiWriteFence();

    private void checkWritable(long oid, Request r) throws SdError {
        if (!state.driverAllowsWrites()) {
            // Lost the coordination server (ZooKeeper, corosync) and past the driver's lease (within it, no other
            // member can have seen this node leave, so a write that every copy takes is as safe as ever; ZooKeeper
            // gives one, up to its session's expiry): the write waits for the driver to come back rather than fail
            // the client; past the retry deadline it fails naming the cause. (A node that lost its session re-joins
            // and is healthy again.)
            try {
                if (!state.awaitDriverHealthy(RETRY_DEADLINE_MS)) {
                    throw new SdError(SdResult.CLUSTER_ERROR, "cluster driver lost its server: " + state.driverProblem());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SdError(SdResult.SYSTEM_ERROR, "interrupted");
            }
        }
        if (Oids.isData(oid) || Oids.isVmstate(oid)) {
            VdiState s = vdis.state(Oids.vid(oid));
            if (s != null && s.snapshot) throw new SdError(SdResult.READONLY);
        }
    }

    // ------------------------------------------------------------------ typed API (also used inside the daemon)

    public byte[] read(long oid, long offset, int len) throws SdError {
        ErasureCode ec = codeOf(oid);
        if (ec != null) return erasureCoded.read(oid, ec, offset, len);
        long deadline = System.currentTimeMillis() + RETRY_DEADLINE_MS;
        while (true) {
            ClusterView v = usableView();
            List<SdNode> targets = v.ring().targets(oid, copiesOf(oid, 0, v));
            if (targets.isEmpty()) throw new SdError(SdResult.HALT);
            // In placement order, from any gateway: the first copy that answers is the one every node reads. A
            // gateway that died in the middle of a write (a crash, a power cut) may have left its copies different
            // on the blocks of that write, which was never acknowledged: old bytes or new are both right, but reads
            // must not flip between them by gateway or by chance (PowerLossIT found both: the local copy first, else
            // a random one). Ceph reads from the primary for the same reason. The cost: a read through a node that
            // holds a copy but not the first one crosses the network.
            List<SdNode> order = targets;
            int lastErr = SdResult.NO_OBJ;
            boolean retry = false;
            for (SdNode t : order) {
                SdRequest req = peerRequest(Opcodes.READ_PEER, oid, v.epoch()).objOffset(offset).dataLength(len);
                Reply rep = send(t, req, null);
                int res = rep.result();
                if (res == SdResult.SUCCESS) return rep.data();
                if (isRetryable(res)) retry = true;
                lastErr = res;
            }
            if (!retry || !awaitNextEpoch(v, deadline)) {
                if (lastErr == SdResult.NETWORK_ERROR) lastErr = SdResult.EIO;
                throw new SdError(lastErr, String.format("read %016x", oid));
            }
        }
    }

    public void write(long oid, long offset, byte[] data, int copies) throws SdError {
        ErasureCode ec = codeOf(oid);
        if (ec != null) {
            erasureCoded.write(oid, ec, offset, data);
            return;
        }
        SdRequest req = new SdRequest().objOid(oid).objOffset(offset).flags(SdFlags.CMD_WRITE).dataLength(data.length);
        forwardAll(Opcodes.WRITE_PEER, req, data, copies);
    }

    /**
     * A replicated object's write whose payload is in a direct buffer (the NBD front end's aligned copy of the
     * client's bytes): every copy is made from that one buffer, the local one written to the disk as it is and the
     * remote ones sent from it. The caller keeps {@code body} until this returns; nothing reads it after that.
     */
    private void writeBody(long oid, long offset, ByteBuffer body, int copies) throws SdError {
        SdRequest req = new SdRequest().objOid(oid).objOffset(offset).flags(SdFlags.CMD_WRITE).dataLength(body.remaining());
        forward(Opcodes.WRITE_PEER, req, wantedCopies(oid, copies), null, position -> null, body);
        bodyWrites.incrementAndGet();
    }

    private final AtomicLong bodyWrites = new AtomicLong();

    /** Client writes whose copies were all made from one direct buffer (tests tell the one-buffer path by it). */
    public long bodyWrites() { return bodyWrites.get(); }

    /**
     * Creates {@code oid} with {@code data} at {@code offset}; with a {@code cowOid} the rest of the object is copied
     * from that object first (copy-on-write from a snapshot or parent).
     */
    public void create(long oid, long offset, byte[] data, int copies, long cowOid) throws SdError {
        byte[] payload = data;
        long off = offset;
        long size = sizes.of(oid);
        if (cowOid != 0 && (offset != 0 || data.length < size)) {
            byte[] base = cowSource(oid, cowOid, (int) size);
            System.arraycopy(data, 0, base, (int) offset, data.length);
            payload = base;
            off = 0;
        }
        ErasureCode ec = codeOf(oid);
        if (ec != null) {
            erasureCoded.create(oid, ec, offset, data, payload == data ? null : payload);
            return;
        }
        SdRequest req = new SdRequest().objOid(oid).objOffset(off).flags(SdFlags.CMD_WRITE).dataLength(payload.length);
        forwardAll(Opcodes.CREATE_AND_WRITE_PEER, req, payload, copies);
    }

    /**
     * The object a copy-on-write create copies from. A client names one only when its VDI's table does (QEMU's driver,
     * tgtd, our NBD export), and a named object is kept while any VDI names it: absent on every node of the epoch,
     * it is away (its nodes down beyond the redundancy, or not recovered yet), not empty. Reading it as zeros, as
     * this did, made the new object zeros wherever the write did not cover it, for good. So wait for it as for any
     * unreachable copy, then fail the write.
     */
    private byte[] cowSource(long oid, long cowOid, int size) throws SdError {
        long deadline = System.currentTimeMillis() + RETRY_DEADLINE_MS;
        while (true) {
            ClusterView v = state.view();
            try {
                return read(cowOid, 0, size);
            } catch (SdError e) {
                if (e.result() != SdResult.NO_OBJ) throw e;
                WARN.warn("cow-absent", "create {}: the object it copies from, {}, is on no node of epoch {}: waiting",
                        String.format("%016x", oid), String.format("%016x", cowOid), v.epoch());
                if (!awaitNextEpoch(v, deadline)) {
                    throw new SdError(SdResult.EIO, String.format("create %016x: the object it copies from, %016x, "
                            + "is not available (on no node of epoch %d within %d s)", oid, cowOid, v.epoch(),
                            RETRY_DEADLINE_MS / 1000));
                }
            }
        }
    }

    public void remove(long oid, int copies) throws SdError {
        SdRequest req = new SdRequest().objOid(oid);
        ErasureCode ec = codeOf(oid);
        try {
            if (ec != null) erasureCoded.remove(oid, ec);
            else forwardAll(Opcodes.REMOVE_PEER, req, null, copies);
        } catch (SdError e) {
            if (e.result() != SdResult.NO_OBJ) throw e;
        }
    }

    /**
     * A write into an inode's data_vdi_id table: entries that change drop a reference to the object they named, and
     * objects nobody references any more are removed (space comes back when the last user goes).
     */
    private void writeInodeTable(long oid, long offset, byte[] data, int copies) throws SdError {
        long tabStart = Math.max(offset, Inode.DATA_VDI_ID_OFFSET);
        long tabEnd = Math.min(offset + data.length, Inode.GREF_OFFSET);
        int[] old = null;
        long firstIdx = (tabStart - Inode.DATA_VDI_ID_OFFSET + 3) / 4;
        long endIdx = (tabEnd - Inode.DATA_VDI_ID_OFFSET) / 4;
        if (endIdx > firstIdx) {
            byte[] before = read(oid, Inode.dataVdiIdOffset(firstIdx), (int) (4 * (endIdx - firstIdx)));
            ByteBuffer b = ByteBuffer.wrap(before).order(ByteOrder.LITTLE_ENDIAN);
            old = new int[(int) (endIdx - firstIdx)];
            for (int i = 0; i < old.length; i++) old[i] = b.getInt();
        }
        write(oid, offset, data, copies);
        if (endIdx > firstIdx) fence.recorded(Oids.vid(oid), firstIdx, (int) (endIdx - firstIdx));
        if (old == null) return;
        ByteBuffer nb = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < old.length; i++) {
            long idx = firstIdx + i;
            int now = nb.getInt((int) (Inode.dataVdiIdOffset(idx) - offset));
            if (old[i] != 0 && old[i] != now) reclaimer.release(Oids.dataOid(old[i], idx));
        }
    }

    // ------------------------------------------------------------------ forwarding

    private void forwardAll(int peerOp, SdRequest template, byte[] payload, int copies) throws SdError {
        forward(peerOp, template, wantedCopies(template.objOid(), copies), null, position -> payload, null);
    }

    /**
     * Sends a peer operation to every node that holds {@code template}'s object and waits for all of them, retrying
     * with the placement of the next epoch when membership changes. Replicated: {@code want} copies, each given
     * the same payload. Erasure coded ({@code ec} not null): position j of the placement gets strip j, its
     * {@code ec_index}, and {@code payloadOf(j)}. A replicated write may give every copy {@code body} instead (not
     * null: a direct buffer, sent and written as it is; {@code payloadOf} is then not asked).
     */
    void forward(int peerOp, SdRequest template, int want, ErasureCode ec, IntFunction<byte[]> payloadOf) throws SdError {
        forward(peerOp, template, want, ec, payloadOf, null);
    }

    private void forward(int peerOp, SdRequest template, int want, ErasureCode ec, IntFunction<byte[]> payloadOf,
                         ByteBuffer body) throws SdError {
        long oid = template.objOid();
        long deadline = System.currentTimeMillis() + RETRY_DEADLINE_MS;
        while (true) {
            ClusterView v = usableView();
            List<SdNode> targets = v.ring().targets(oid, v.ring().effectiveCopies(want));
            if (targets.isEmpty()) throw new SdError(SdResult.HALT);
            if (ec != null && targets.size() < ec.dataStrips() && peerOp != Opcodes.REMOVE_PEER) {
                throw new SdError(SdResult.HALT, String.format("%s %016x: %d zones for %d data strips",
                        Opcodes.name(peerOp), oid, targets.size(), ec.dataStrips()));
            }
            if (peerOp != Opcodes.REMOVE_PEER) checkStrict(v, want, peerOp, oid);
            List<PeerCall> calls = new ArrayList<>(targets.size());
            boolean timed = peerOp == Opcodes.WRITE_PEER || peerOp == Opcodes.CREATE_AND_WRITE_PEER;
            long sendStart = System.nanoTime();
            SdRequest localReq = null;
            byte[] localPayload = null;
            SdNode localNode = null;
            for (int i = 0; i < targets.size(); i++) {
                SdNode t = targets.get(i);
                byte[] payload = body != null ? null : payloadOf.apply(i);
                SdRequest req = template.copy().opcode(peerOp).protoVer(Proto.SHEEP_PROTO_VER).epoch(v.epoch())
                        .flags(template.flags() | SdFlags.CMD_FWD);
                if (ec != null) req.objCopyPolicy(ec.policy()).objEcIndex(i);
                if (payload != null) req.dataLength(payload.length);
                if (body != null) req.dataLength(body.remaining());
                if (isSelf(t)) {
                    localReq = req;
                    localPayload = payload;
                    localNode = t;
                } else {
                    calls.add(call(t, req, payload, body));
                }
            }
            boolean remote = !calls.isEmpty();
            // the local copy last, once the remote ones are on their way: the request then takes as long as the
            // slowest copy, not the local one plus the remote ones
            if (localReq != null) {
                long localStart = System.nanoTime();
                Reply here;
                try {
                    here = body != null ? local.handle(Request.withBody(localReq, body.duplicate(), ClientInfo.INTERNAL))
                            : handleHere(localReq, localPayload);
                } catch (RuntimeException | Error e) {
                    // a bug, said by the caller; but first the remote calls end (their links go back, and no send
                    // still reads a payload the caller takes back when this throws)
                    for (PeerCall c : calls) c.await();
                    throw e;
                }
                calls.add(PeerCall.done(localNode.nid(), here));
                if (timed) stats.gatewayLocalCopy.add(System.nanoTime() - localStart);
            }
            int err = SdResult.SUCCESS;
            boolean retry = false;
            int absent = 0;
            StringBuilder failed = new StringBuilder();
            for (PeerCall c : calls) {
                int res = c.await().result();
                if (res == SdResult.SUCCESS) continue;
                failed.append(' ').append(c.target()).append('=').append(SdResult.name(res));
                if (res == SdResult.NO_OBJ) absent++;
                if (isRetryable(res)) retry = true;
                else if (err == SdResult.SUCCESS || err == SdResult.NO_OBJ) err = res;
            }
            // until the last remote reply was read: the replies are read after the local copy, so this is at least
            // as long as that copy
            if (timed && remote) stats.gatewayRemoteCopies.add(System.nanoTime() - sendStart);
            if (!retry && err == SdResult.SUCCESS) return;
            String what = String.format("%s %016x at epoch %d:%s", Opcodes.name(peerOp), oid, v.epoch(), failed);
            // Some copies there and some not: the object exists, and the nodes that lack it are new to its
            // placement and have not recovered it yet. Wait for that (or the next epoch) instead of failing a write
            // the cluster can still do.
            boolean missingCopy = err == SdResult.NO_OBJ && absent < calls.size() && peerOp == Opcodes.WRITE_PEER;
            // No copy anywhere: a write names an object its VDI's table holds (a new one is a create), so it is away
            // (its nodes down beyond the redundancy, recovery found no source yet), not absent. Wait for its nodes
            // as for any unreachable copy rather than fail at once, again and again (thousands of EIO a second).
            boolean awayEverywhere = err == SdResult.NO_OBJ && absent == calls.size() && peerOp == Opcodes.WRITE_PEER;
            if (!retry && !missingCopy && !awayEverywhere) throw new SdError(err, what);
            if (missingCopy) LOG.info("{}: a copy is not recovered yet, trying again", what);
            if (awayEverywhere) WARN.warn("away", "{}: no copy on any node of this epoch: waiting for its nodes", what);
            if (!awaitNextEpoch(v, deadline, missingCopy ? 100 : 2000)) {
                throw new SdError(SdResult.EIO, what + (awayEverywhere ? ": no copy available" : ": no stable membership")
                        + " within " + RETRY_DEADLINE_MS / 1000 + " s");
            }
        }
    }

    /**
     * A strict cluster (dog cluster format -t) writes every copy or nothing: with fewer zones than {@code want}
     * copies (or strips) it halts writes instead of storing fewer until recovery.
     */
    void checkStrict(ClusterView v, int want, int peerOp, long oid) throws SdError {
        if ((state.settings().flags() & Proto.CLUSTER_FLAG_STRICT) != 0 && v.ring().nrZones() < want) {
            throw new SdError(SdResult.HALT, String.format("%s %016x: %d zones for %d copies in a strict cluster",
                    Opcodes.name(peerOp), oid, v.ring().nrZones(), want));
        }
    }

    static boolean isRetryable(int res) {
        return res == SdResult.OLD_NODE_VER || res == SdResult.NEW_NODE_VER || res == SdResult.NETWORK_ERROR
                || res == SdResult.WAIT_FOR_FORMAT || res == SdResult.WAIT_FOR_JOIN || res == SdResult.KILLED
                || res == SdResult.SHUTDOWN || res == SdResult.STARTUP;
    }

    /** Waits for the epoch after the one a failed attempt used; false if the deadline passed. */
    boolean awaitNextEpoch(ClusterView used, long deadline) throws SdError {
        return awaitNextEpoch(used, deadline, 2000);
    }

    /** As {@link #awaitNextEpoch(ClusterView, long)}, retrying after {@code atMostMs} if the epoch stays. */
    boolean awaitNextEpoch(ClusterView used, long deadline, long atMostMs) throws SdError {
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) return false;
        try {
            // A failed peer is reported by the cluster driver within about a second; if nothing changes, retry anyway.
            state.awaitEpochAfter(used.epoch(), Math.min(left, atMostMs));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SdError(SdResult.SYSTEM_ERROR, "interrupted");
        }
        return true;
    }

    ClusterView usableView() throws SdError {
        if (state.suspended() != null) { // this process was stopped: not before it knows the cluster did not move on
            try {
                if (!state.awaitNotSuspended(RETRY_DEADLINE_MS)) throw new SdError(SdResult.HALT, state.suspended());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SdError(SdResult.SYSTEM_ERROR, "interrupted");
            }
        }
        ClusterView v = state.view();
        if (v.status() == Proto.STATUS_WAIT && state.rejoining()) {
            // re-joining after a lost driver session: the cluster waits for the members of its last epoch, and so
            // does the client's I/O (bounded), rather than failing
            try {
                if (state.awaitNotWaiting(RETRY_DEADLINE_MS)) v = state.view();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SdError(SdResult.SYSTEM_ERROR, "interrupted");
            }
        }
        if (v.status() == Proto.STATUS_SHUTDOWN) throw new SdError(SdResult.SHUTDOWN);
        if (v.status() == Proto.STATUS_KILLED) throw new SdError(SdResult.KILLED);
        if (v.status() != Proto.STATUS_OK) throw new SdError(state.formatted() ? SdResult.WAIT_FOR_JOIN : SdResult.WAIT_FOR_FORMAT);
        if (v.ring().isEmpty()) throw new SdError(SdResult.HALT);
        return v;
    }

    /** Copies for an object: the request's if given, else the VDI's, else the cluster default; capped by zones. */
    int copiesOf(long oid, int requested, ClusterView v) {
        return v.ring().effectiveCopies(wantedCopies(oid, requested));
    }

    /** The copies {@code oid} should have: as requested, else its VDI's, else the cluster's (zones not counted). */
    private int wantedCopies(long oid, int requested) {
        int c = requested;
        if (c == 0) {
            VdiState s = vdis.state(Oids.vid(oid));
            if (s != null && s.nrCopies != 0) c = s.nrCopies;
        }
        if (c == 0) c = state.settings().defaultCopies();
        return c;
    }

    /** Whether {@code n} is this node (its requests are handled in the calling thread). */
    boolean isSelf(SdNode n) { return n.nid().equals(state.self().nid()); }

    private SdRequest peerRequest(int op, long oid, int epoch) {
        return new SdRequest().opcode(op).protoVer(Proto.SHEEP_PROTO_VER).epoch(epoch).objOid(oid).flags(SdFlags.CMD_FWD);
    }

    /** Sends a peer request to {@code t} (locally if it is this node), mapping connection failures to NETWORK_ERROR. */
    public Reply send(SdNode t, SdRequest req, byte[] payload) {
        return callOrLocal(t, req, payload).await();
    }

    /** Sends a peer request without waiting for its reply: to {@code t}, or handled here if {@code t} is this node. */
    PeerCall callOrLocal(SdNode t, SdRequest req, byte[] payload) {
        return isSelf(t) ? PeerCall.done(t.nid(), handleHere(req, payload)) : call(t, req, payload, null);
    }

    /** A peer request for this node's own copy, handled in the calling thread. */
    private Reply handleHere(SdRequest req, byte[] payload) {
        return local.handle(new Request(req, payload == null ? Request.NO_DATA : payload, ClientInfo.INTERNAL));
    }

    /**
     * Sends a peer request to another node on a link of its own and returns without waiting for the reply, which the
     * caller reads in {@link PeerCall#await()}. A small request is written here: with one request per link the
     * socket's buffer always has room for it, so even a peer that hangs cannot block this thread. A large one is
     * written by a sender thread, so that the copies of a large write go out side by side (and a peer that stops
     * reading blocks only that thread). Either way the call is watched: a peer that leaves the cluster, or takes
     * longer than the peer timeout, has its link closed, which ends the wait (the caller retries).
     */
    private PeerCall call(SdNode t, SdRequest req, byte[] payload, ByteBuffer body) {
        PeerLink link;
        try {
            link = peers.acquire(t.nid());
        } catch (IOException e) {
            WARN.warn("unreachable", "cannot reach {}: {}", t.nid(), e.getMessage());
            return PeerCall.done(t.nid(), PeerCall.networkError(req));
        }
        CompletableFuture<Void> sending = null;
        int length = body != null ? body.remaining() : payload != null ? payload.length : 0;
        if (length > INLINE_SEND_LIMIT) {
            sending = CompletableFuture.runAsync(() -> {
                try {
                    link.send(req, payload, body);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }, SENDERS);
        }
        PeerCall c = new PeerCall.OnLink(peers, link, req, sending);
        startWatch();
        if (sending == null) {
            try {
                link.send(req, payload, body);
            } catch (IOException e) {
                // the link is closed; the caller's await() reads nothing and answers NETWORK_ERROR
            }
        }
        return c;
    }

    /**
     * Payloads up to this size are written by the caller: with its header, well within the 16 KiB a TCP socket's
     * send buffer starts with on Linux (tcp_wmem), on a link with nothing else in flight.
     */
    static final int INLINE_SEND_LIMIT = 8 << 10;

    private final AtomicBoolean watching = new AtomicBoolean();

    /**
     * Starts the watch of the calls in flight to other nodes, once: every 200 ms, the link of a call to a node that is
     * no longer a member (evicted as unresponsive, or gone) is closed, so its caller retries with the new placement
     * instead of waiting for an answer that would not count anyway; so is that of a call older than the peer timeout,
     * with a warning. (The watch reads the links' own send times: a call costs it nothing to register.) Every 5 s it
     * also closes the links that were not used for PeerPool.IDLE_EXPIRY_MS.
     */
    private void startWatch() {
        if (watching.get() || !watching.compareAndSet(false, true)) return;
        Thread.ofVirtual().name("peer-call-watch").start(() -> {
            long timeout = TimeUnit.MILLISECONDS.toNanos(PEER_TIMEOUT_MS);
            for (long round = 1; ; round++) {
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
                if (round % 25 == 0) peers.closeIdle(TimeUnit.MILLISECONDS.toNanos(PeerPool.IDLE_EXPIRY_MS));
                ClusterView v = state.view();
                Set<NodeId> members = new HashSet<>();
                for (SdNode n : v.members()) members.add(n.nid());
                long now = System.nanoTime();
                peers.forEachBusy(link -> {
                    long since = link.busySince();
                    if (since == 0) return;
                    if (v.status() == Proto.STATUS_OK && !members.contains(link.peer())) {
                        link.close("the node is no longer a member");
                    } else if (now - since > timeout) {
                        LOG.warn("{} did not answer within {} ms: dropping the connection", link.peer(), PEER_TIMEOUT_MS);
                        link.close("no answer within " + PEER_TIMEOUT_MS + " ms");
                        // the node is still a member (its heartbeats, on the main port, are answered): its data port
                        // may be what fails; the next links try the main port
                        if (link.viaIoPort()) peers.avoidIoPort(link.peer());
                    }
                });
            }
        });
    }

    /** A peer request that failed on its connection (said at most every few seconds: a dead peer fails many). */
    static void warnPeerFailure(NodeId peer, SdRequest req, String why) {
        WARN.warn("peer", "{} to {} failed: {}", Opcodes.name(req.opcode()), peer, why);
    }
}
