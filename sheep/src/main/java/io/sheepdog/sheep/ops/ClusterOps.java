package io.sheepdog.sheep.ops;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.OpTable;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.cluster.ClusterDriver;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.vdi.VdiOps;
import io.sheepdog.sheep.vdi.VdiRegistry;
import io.sheepdog.sheep.vdi.VdiState;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Totally ordered cluster operations (docs/daemon.md §6). An operation with a "work" part takes the cluster-wide
 * block, runs the work here, and broadcasts the main-phase message with the unblock; operations with only a main
 * part are simply broadcast. Every node runs the main phase in the same order; the node that received the request
 * answers it once its own main phase ran.
 */
public final class ClusterOps {
    private static final Logger LOG = LoggerFactory.getLogger(ClusterOps.class);
    private static final long OP_TIMEOUT_S = 120;
    /** How long an operation waits for this node to be a member again before it fails. */
    private static final long NOT_MEMBER_WAIT_S = 30;
    /** An operation waiting this long is logged (and again every as long) until it is answered. */
    private static final long SLOW_OP_S = 10;
    /**
     * The thread of the last work phase started (on the driver's event thread, one at a time); while it is alive, the
     * work phase running on this node (the slow-operation log shows it).
     */
    private volatile Thread lastWork;

    private final ClusterDriver driver;
    private final NodeState state;
    private final VdiOps vdiOps;
    private final VdiRegistry vdis;
    private final MainPhase membership;
    private final AtomicLong nextOrigin = new AtomicLong(ThreadLocalRandom.current().nextLong() & 0x7fffffffffffL);
    private final Map<Long, CompletableFuture<Reply>> pending = new ConcurrentHashMap<>();
    /**
     * Moves on each time this node is dropped from the membership and joins again ({@link #failPending}): a work phase
     * granted before that held a block of the old membership, which went with it.
     */
    private final AtomicLong membershipGeneration = new AtomicLong();
    private final ConcurrentLinkedQueue<Work> blockQueue = new ConcurrentLinkedQueue<>();

    private record Work(long origin, Request req) {}

    /** The main phase of the operations that change the membership's view of the cluster (format, shutdown, ...). */
    @FunctionalInterface
    public interface MainPhase {
        Reply clusterMain(SdNode sender, OpMessage m);
    }

    /** @param membership the main phase of the operations this class does not apply itself (those on the cluster) */
    public ClusterOps(ClusterDriver driver, NodeState state, VdiOps vdiOps, VdiRegistry vdis, MainPhase membership) {
        this.driver = driver;
        this.state = state;
        this.vdiOps = vdiOps;
        this.vdis = vdis;
        this.membership = membership;
    }

    public static boolean hasWorkPhase(int op) { return OpTable.hasWorkPhase(op); }

    /** Runs a cluster operation for a client and waits for its own main phase. */
    public Reply execute(Request r) {
        long origin = nextOrigin.incrementAndGet();
        CompletableFuture<Reply> f = new CompletableFuture<>();
        pending.put(origin, f);
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(NOT_MEMBER_WAIT_S);
            boolean logged = false;
            // failed meanwhile (the re-join failed what was pending): never sent late. A release sent late went
            // to the first node back alone, which then took the lock for released while the others, joining it,
            // still held it.
            while (!f.isDone() && !send(origin, r)) {
                // not a member now (re-joining after a lost driver session): nothing went out, so nothing would
                // ever answer. Wait for the re-join rather than for a reply that cannot come.
                if (System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("this node has not been a member of the cluster for "
                            + NOT_MEMBER_WAIT_S + " s (its cluster driver is joining again)");
                }
                if (!logged) {
                    LOG.info("cluster operation {} waits: this node is joining the cluster again", r.hdr());
                    logged = true;
                }
                Thread.sleep(200);
            }
            return awaitReply(r, f);
        } catch (Exception e) {
            if (r.hdr().opcode() == Opcodes.RELEASE_VDI) {
                // a release always succeeds: one that could not go out now (the driver lost its server or its
                // session) is sent again until it is through, so the lock does not outlive its client
                LOG.warn("cluster operation {} failed ({}): sending it again until it is through", r.hdr(), e.toString());
                String key = releaseKey(r.hdr().vdiBaseVid(), r.data());
                releasing.put(key, r.hdr());
                releasingOwner.put(key, r.data());
                startReleaser();
                return new Reply(SdResponse.replyTo(r.hdr(), SdResult.SUCCESS), Request.NO_DATA);
            }
            LOG.error("cluster operation {} failed: {}", r.hdr(), e.toString());
            return new Reply(SdResponse.replyTo(r.hdr(), SdResult.CLUSTER_ERROR), Request.NO_DATA);
        } finally {
            pending.remove(origin);
        }
    }

    /**
     * The reply to {@code r}, within {@link #OP_TIMEOUT_S}. An operation that waits long is logged with the driver's
     * state and what the work phase on this node is doing, so a hang explains itself.
     */
    private Reply awaitReply(Request r, CompletableFuture<Reply> f) throws Exception {
        long waited = 0;
        while (true) {
            try {
                return f.get(SLOW_OP_S, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                waited += SLOW_OP_S;
                if (waited >= OP_TIMEOUT_S) throw e;
                Thread w = lastWork;
                if (w != null && !w.isAlive()) w = null;
                StringBuilder stack = new StringBuilder();
                if (w != null) {
                    StackTraceElement[] st = w.getStackTrace();
                    for (int i = 0; i < Math.min(12, st.length); i++) stack.append("\n\tat ").append(st[i]);
                }
                LOG.warn("cluster operation {} has waited {} s; {} queued for a block here; {}; work phase here: {}{}",
                        r.hdr(), waited, blockQueue.size(), driver.describe(),
                        w == null ? "none" : w.getName(), stack);
            }
        }
    }

    /** Sends {@code r} to the cluster (its block request, or its main phase); false if the driver sent nothing. */
    private boolean send(long origin, Request r) {
        if (hasWorkPhase(r.hdr().opcode())) {
            Work w = new Work(origin, r);
            blockQueue.add(w);
            if (driver.block()) return true;
            // taken meanwhile by the grant of an earlier block: it runs, and its main phase answers this request
            return !blockQueue.remove(w);
        }
        OpMessage m = new OpMessage(origin, r.hdr(), r.data(), SdResponse.replyTo(r.hdr(), SdResult.SUCCESS), Request.NO_DATA);
        return driver.notify(m.encode());
    }

    /** Fails every cluster operation still waiting for events of a membership this node was dropped from. */
    public void failPending(String why) {
        LOG.warn("failing {} pending cluster operations: {}", pending.size(), why);
        membershipGeneration.incrementAndGet();
        blockQueue.clear();
        for (CompletableFuture<Reply> f : pending.values()) f.completeExceptionally(new IllegalStateException(why));
    }

    /** Broadcasts a main-phase-only message the daemon makes itself (e.g. a lock release for a dropped client). */
    public void broadcast(SdRequest req, byte[] data) {
        OpMessage m = new OpMessage(0, req, data, SdResponse.replyTo(req, SdResult.SUCCESS), Request.NO_DATA);
        driver.notify(m.encode());
    }

    /** Driver callback: our block is granted; run the oldest queued work on its own thread. */
    public boolean onBlock() {
        Work next = blockQueue.poll();
        // an operation whose client was already answered (failed when this node re-joined) is not carried out late
        while (next != null && answered(next.origin())) next = blockQueue.poll();
        Work w = next;
        if (w == null) {
            driver.unblock(new byte[0]);
            return true;
        }
        long generation = membershipGeneration.get();
        // A work phase from before a re-join may still run (its block went with the old membership): this one waits
        // for it, so that two work phases never overlap on this node (two creations could pick the same VID).
        Thread previous = lastWork;
        Thread t = Thread.ofVirtual().name("cluster-work").unstarted(() -> {
            try {
                if (previous != null) previous.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            runWork(w, generation);
        });
        lastWork = t;
        t.start();
        return true;
    }

    private boolean answered(long origin) {
        CompletableFuture<Reply> f = pending.get(origin);
        return f == null || f.isDone();
    }

    /** Runs {@code w}'s work phase, granted in membership generation {@code generation}, then releases its block. */
    private void runWork(Work w, long generation) {
        SdRequest h = w.req().hdr();
        SdResponse rsp = SdResponse.replyTo(h, SdResult.SUCCESS);
        OpMessage main = null;
        try {
            main = work(w.origin(), w.req(), rsp);
        } catch (SdError e) {
            rsp.result(e.result());
            if (e.result() != SdResult.NO_VDI && e.result() != SdResult.NO_TAG && e.result() != SdResult.VDI_EXIST) {
                LOG.warn("{} failed: {}", h, e.getMessage());
            }
        } catch (RuntimeException e) {
            LOG.error("{} failed", h, e);
            rsp.result(SdResult.SYSTEM_ERROR);
        }
        if (membershipGeneration.get() != generation) {
            // This node was dropped and joined again while the work ran: its client was answered with an error, the
            // block it held went with the old membership, and the block the driver holds now (if any) is a later
            // operation's. Releasing it would hand that operation's block to this one's main phase and leave the
            // later operation waiting for ever. So neither release nor carry out.
            LOG.warn("{}: this node joined the cluster again while its work ran; not carried out", h);
            return;
        }
        if (main == null) {
            // nothing for the other nodes to do: answer now, release the block with an empty message
            complete(w.origin(), new Reply(rsp.epoch(state.epoch()), Request.NO_DATA));
            driver.unblock(new byte[0]);
        } else {
            driver.unblock(main.encode());
        }
    }

    private void complete(long origin, Reply r) {
        CompletableFuture<Reply> f = pending.get(origin);
        if (f != null) f.complete(r);
    }

    /** Driver callback: a broadcast operation, in total order. */
    public void onNotify(SdNode sender, byte[] raw) {
        if (raw.length == 0) return;
        OpMessage m;
        try {
            m = OpMessage.decode(raw);
        } catch (RuntimeException e) {
            LOG.error("undecodable cluster message from {} ({} bytes)", sender, raw.length);
            return;
        }
        Reply r;
        try {
            r = main(sender, m);
        } catch (RuntimeException e) {
            LOG.error("main phase of {} failed", m.req(), e);
            r = new Reply(m.rsp().result(SdResult.SYSTEM_ERROR), Request.NO_DATA);
        }
        if (sender.nid().equals(state.self().nid()) && m.originId() != 0) {
            r.header().epoch(state.epoch());
            complete(m.originId(), r);
        }
    }

    // ------------------------------------------------------------------ work phases (on the requesting node)

    private OpMessage work(long origin, Request r, SdResponse rsp) throws SdError {
        SdRequest h = r.hdr();
        VdiOps ops = vdiOps;
        switch (h.opcode()) {
            case Opcodes.NEW_VDI -> {
                VdiOps.Created c = ops.newVdi(h, r.data());
                rsp.vdiVid(c.newVid()).vdiCopies(c.copies()).vdiBlockSizeShift(c.shift());
                SdRequest add = new SdRequest().opcode(Opcodes.NOTIFY_VDI_ADD).protoVer(Proto.SHEEP_PROTO_VER)
                        .vdiStateOldVid(c.oldVid()).vdiStateNewVid(c.newVid()).vdiStateCopies(c.copies())
                        .vdiStateSetBitmap(true).vdiStateCopyPolicy(c.policy()).vdiStateBlockSizeShift(c.shift());
                byte[] parent = le32(c.parent());
                return new OpMessage(origin, add, parent, rsp, Request.NO_DATA);
            }
            case Opcodes.DEL_VDI -> {
                int vid = ops.delVdi(h, r.data());
                rsp.vdiVid(vid);
                SdRequest del = new SdRequest().opcode(Opcodes.NOTIFY_VDI_DEL).protoVer(Proto.SHEEP_PROTO_VER)
                        .flags(SdFlags.CMD_WRITE).dataLength(4);
                return new OpMessage(origin, del, le32(vid), rsp, Request.NO_DATA);
            }
            case Opcodes.LOCK_VDI -> {
                VdiOps.Lookup l = lookupFromPayload(ops, h, r.data());
                VdiState s = vdis.state(l.vid());
                rsp.vdiVid(l.vid()).vdiCopies(s != null && s.nrCopies != 0 ? s.nrCopies : l.inode().nrCopies)
                        .vdiBlockSizeShift(l.inode().blockSizeShift);
                if (l.inode().isSnapshot()) return null; // snapshots are read-only: nothing to lock
                SdRequest lock = h.copy().vdiBaseVid(l.vid());
                return new OpMessage(origin, lock, encodeOwner(r.client()), rsp, Request.NO_DATA);
            }
            case Opcodes.GET_VDI_ATTR -> {
                VdiOps.AttrResult a = ops.vdiAttr(h, r.data());
                rsp.vdiVid(a.vid()).vdiAttrId(a.attrId());
                return null;
            }
            case Opcodes.FORCE_RECOVER -> {
                if (state.status() != Proto.STATUS_WAIT || !state.formatted()) {
                    throw new SdError(SdResult.FORCE_RECOVER);
                }
                return new OpMessage(origin, h, Request.NO_DATA, rsp, Request.NO_DATA);
            }
            default -> throw new SdError(SdResult.INVALID_PARMS);
        }
    }

    /** GET_VDI_INFO / LOCK_VDI payload: name[256] [+ tag[256]]. */
    public static VdiOps.Lookup lookupFromPayload(VdiOps ops, SdRequest h, byte[] data) throws SdError {
        if (data.length != Proto.MAX_VDI_LEN && data.length != 2 * Proto.MAX_VDI_LEN) {
            throw new SdError(SdResult.INVALID_PARMS, "lookup needs name[256] [+ tag[256]], got " + data.length + " bytes");
        }
        String name = VdiOps.nameOf(data, 0);
        String tag = data.length > Proto.MAX_VDI_LEN ? VdiOps.nameOf(data, Proto.MAX_VDI_LEN) : "";
        return ops.lookup(name, h.vdiSnapId(), tag);
    }

    /** Lock owner as carried in LOCK/RELEASE main phases: gateway node id, client node id, connection id. */
    private byte[] encodeOwner(ClientInfo c) {
        ByteBuffer b = ByteBuffer.allocate(2 * NodeId.SIZE + 8).order(ByteOrder.LITTLE_ENDIAN);
        state.self().nid().encode(b);
        new NodeId(c.addr(), c.port()).encode(b);
        b.putLong(c.connectionId());
        return b.array();
    }

    public byte[] ownerOf(ClientInfo c) { return encodeOwner(c); }

    private static byte[] le32(int v) {
        return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
    }

    // ------------------------------------------------------------------ main phases (on every node, in order)

    private Reply main(SdNode sender, OpMessage m) {
        SdRequest h = m.req();
        SdResponse rsp = m.rsp();
        switch (h.opcode()) {
            case Opcodes.NOTIFY_VDI_ADD -> {
                int parent = m.reqData().length >= 4 ? ByteBuffer.wrap(m.reqData()).order(ByteOrder.LITTLE_ENDIAN).getInt() : 0;
                vdis.add(h.vdiStateNewVid(), h.vdiStateOldVid(), h.vdiStateCopies(), h.vdiStateCopyPolicy(),
                        h.vdiStateBlockSizeShift(), parent);
                // a snapshot: the writes its work phase paused here go on now, and find the old VDI read-only
                if (h.vdiStateOldVid() != 0 && vdiOps != null) vdiOps.resumeWrites(h.vdiStateOldVid());
            }
            case Opcodes.NOTIFY_VDI_DEL -> {
                int vid = ByteBuffer.wrap(m.reqData()).order(ByteOrder.LITTLE_ENDIAN).getInt();
                vdis.markDeleted(vid);
            }
            case Opcodes.LOCK_VDI -> {
                int vid = h.vdiBaseVid();
                ByteBuffer b = ByteBuffer.wrap(m.reqData()).order(ByteOrder.LITTLE_ENDIAN);
                NodeId gw = NodeId.decode(b);
                NodeId client = NodeId.decode(b);
                long conn = b.getLong();
                if (!vdis.lock(vid, gw, client, conn)) rsp.result(SdResult.VDI_LOCKED);
            }
            case Opcodes.RELEASE_VDI -> {
                int vid = h.vdiBaseVid();
                if (sender.nid().equals(state.self().nid())) {
                    String key = releaseKey(vid, m.reqData());
                    releasing.remove(key);
                    releasingOwner.remove(key);
                }
                // a snapshot taken since the lock was asked for moved it to the new working VDI (VdiRegistry.add):
                // the release goes there too (every node saw the same snapshots in the same order)
                int held = vdis.workingVid(vid);
                if (m.reqData().length >= 2 * NodeId.SIZE + 8 && h.vdiType() == RELEASE_IF_OWNER) {
                    ByteBuffer b = ByteBuffer.wrap(m.reqData()).order(ByteOrder.LITTLE_ENDIAN);
                    NodeId gw = NodeId.decode(b);
                    NodeId.decode(b);
                    vdis.release(held, gw, b.getLong());
                } else {
                    vdis.release(held, null, 0);
                }
            }
            default -> {
                return membership.clusterMain(sender, m);
            }
        }
        return new Reply(rsp, m.rspData());
    }

    /** vdi.type value of our internal RELEASE_VDI that only drops a lock still held by the given connection. */
    public static final int RELEASE_IF_OWNER = 0x100;

    /**
     * Lock releases this node broadcast and has not seen delivered yet, by VID and owner: a release sent while the
     * cluster driver had no server, or lost when this node re-joined, is sent again until it is through, so a lock
     * never outlives its client.
     */
    private final Map<String, SdRequest> releasing = new ConcurrentHashMap<>();
    private final Map<String, byte[]> releasingOwner = new ConcurrentHashMap<>();
    private volatile Thread releaser;

    /** Releases every lock a dropped client connection held. */
    public void releaseLocksOf(ClientInfo c) {
        if (c.connectionId() == 0) return;
        for (int vid : vdis.lockedBy(state.self().nid(), c.connectionId())) {
            SdRequest rel = SdRequest.of(Opcodes.RELEASE_VDI).vdiBaseVid(vid).vdiType(RELEASE_IF_OWNER);
            LOG.info("client {} went away: releasing its lock on VDI {}", c.display(), Integer.toHexString(vid));
            byte[] owner = encodeOwner(c);
            String key = releaseKey(vid, owner);
            releasing.put(key, rel);
            releasingOwner.put(key, owner);
            broadcast(rel, owner);
        }
        startReleaser();
    }

    private static String releaseKey(int vid, byte[] owner) {
        return Integer.toHexString(vid) + "/" + HexFormat.of().formatHex(owner);
    }

    /** Sends the releases not delivered yet again every few seconds while the driver is healthy. */
    private void startReleaser() {
        synchronized (this) {
            if (releaser != null || releasing.isEmpty()) return;
            releaser = Thread.ofVirtual().name("lock-releaser").start(() -> {
                try {
                    while (!releasing.isEmpty()) {
                        Thread.sleep(3000);
                        if (state.driverUnhealthy() || state.status() != Proto.STATUS_OK) continue;
                        for (var e : releasing.entrySet()) {
                            // (a snapshot since may have moved the lock to the new working VDI: look there)
                            VdiState st = vdis.state(vdis.workingVid(e.getValue().vdiBaseVid()));
                            if (st == null || !st.locked()) {
                                releasing.remove(e.getKey());
                                releasingOwner.remove(e.getKey());
                                continue;
                            }
                            byte[] owner = releasingOwner.get(e.getKey());
                            if (owner != null) broadcast(e.getValue(), owner);
                        }
                    }
                } catch (InterruptedException ignored) {
                    // shutting down
                } finally {
                    synchronized (this) {
                        releaser = null;
                    }
                    if (!releasing.isEmpty()) startReleaser();
                }
            });
        }
    }

}
