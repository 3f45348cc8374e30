package io.sheepdog.sheep.gateway;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.StripVersion;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.store.DiskFailedException;
import io.sheepdog.sheep.store.NoSpaceException;
import io.sheepdog.sheep.store.NoSuchObjectException;
import io.sheepdog.sheep.store.ObjectSizes;
import io.sheepdog.sheep.store.ObjectStore;
import io.sheepdog.sheep.store.StoreKey;
import io.sheepdog.sheep.store.StripStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.Lock;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The peer side of object I/O: what a sheep does on its own store when a gateway (itself or another sheep) forwards
 * a replica operation. Checks the sender's epoch first (docs/protocol.md §9).
 */
public final class PeerService {
    private static final Logger LOG = LoggerFactory.getLogger(PeerService.class);
    private static final RateLimitedLog WARN = new RateLimitedLog(LOG);
    private static final long EPOCH_WAIT_MS = 10_000;

    /** Lets recovery bring an object here before a request touches it. */
    public interface RecoveryHook {
        /** Blocks until {@code oid} is recovered on this node if it is still waiting to be; no-op otherwise. */
        void awaitRecovered(long oid) throws InterruptedException;

        /**
         * {@code oid} should be here at the current epoch and is not (its file removed under the node, say): recover
         * what is missing from the other copies. May do nothing (it is rate-limited).
         */
        default void missing(long oid) { }

        RecoveryHook NONE = oid -> { };
    }

    private final ObjectStore store;
    private final StripStore strips;
    private final NodeState state;
    private final ObjectSizes sizes;
    private volatile RecoveryHook recovery = RecoveryHook.NONE;

    public PeerService(ObjectStore store, NodeState state, ObjectSizes sizes) {
        this.store = store;
        this.strips = new StripStore(store);
        this.state = state;
        this.sizes = sizes;
    }

    public void setRecoveryHook(RecoveryHook hook) { this.recovery = hook; }

    /**
     * Called once when the store is found failed (its directory gone, the disk read-only or returning EIO): the node
     * then leaves the cluster, as the original does, and the others restore the copies it held.
     */
    public void setStoreFailureHook(Consumer<String> hook) { this.storeFailure = hook; }

    private volatile Consumer<String> storeFailure = why -> { };
    private final AtomicBoolean storeFailed = new AtomicBoolean();

    /**
     * The periodic check (every few seconds): a store can fail without any request seeing an error, e.g. its
     * directory removed while the objects in use stay open (writes to unlinked files would succeed and be lost).
     */
    public void checkStore() {
        storeFailed(new IOException("periodic store check"));
    }

    private volatile boolean closing;

    /** The node is stopping: errors from its store being closed are not store failures. */
    public void closing() {
        closing = true;
    }

    /** After an I/O error: whether the store itself failed (then the node is leaving; reported once). */
    private boolean storeFailed(IOException cause) {
        if (storeFailed.get()) return true;
        if (closing) return false;
        try {
            store.probe();
            return false;
        } catch (IOException probe) {
            // a probe that hung on a disk (the watchdog took the node out meanwhile) ends with the closed store's error
            if (closing) return false;
            if (storeFailed.compareAndSet(false, true)) {
                LOG.error("the store failed: {} (then: {})", cause.toString(), probe.toString());
                storeFailure.accept("the store failed: " + probe.getMessage());
            }
            return true;
        }
    }

    public ObjectStore store() { return store; }

    /** The versioned view of this node's strips (recovery stores rebuilt strips through it). */
    public StripStore strips() { return strips; }

    public Reply handle(Request r) {
        SdRequest h = r.hdr();
        SdResponse rsp = SdResponse.replyTo(h, SdResult.SUCCESS);
        try {
            boolean recoveryRead = h.hasFlag(SdFlags.CMD_RECOVERY);
            boolean changes = !recoveryRead && h.opcode() != Opcodes.READ_PEER;
            if (!changes) return serve(r, h, rsp, recoveryRead);
            Lock guard = state.peerWriteGuard();
            guard.lock();
            try {
                if (state.rejoining()) {
                    // dropped from the cluster and joining again: a request still here from before (it sat in the
                    // socket while this process was stopped) must not change what the re-join keeps or recovers;
                    // its sender has gone on without this node
                    return new Reply(rsp.result(SdResult.OLD_NODE_VER).epoch(state.epoch()), Request.NO_DATA);
                }
                return serve(r, h, rsp, false);
            } finally {
                guard.unlock();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Reply(rsp.result(SdResult.SYSTEM_ERROR), Request.NO_DATA);
        }
    }

    private Reply serve(Request r, SdRequest h, SdResponse rsp, boolean recoveryRead) throws InterruptedException {
        return serve(r, h, rsp, recoveryRead, false);
    }

    private Reply serve(Request r, SdRequest h, SdResponse rsp, boolean recoveryRead, boolean retried)
            throws InterruptedException {
        long diskFailures = store.diskFailures();
        try {
            int local = state.epoch();
            if (!recoveryRead && h.opcode() != Opcodes.REMOVE_PEER) {
                if (h.epoch() < local) {
                    return new Reply(rsp.result(SdResult.OLD_NODE_VER).epoch(local), Request.NO_DATA);
                }
                if (h.epoch() > local && !state.awaitEpoch(h.epoch(), EPOCH_WAIT_MS)) {
                    return new Reply(rsp.result(SdResult.NEW_NODE_VER).epoch(state.epoch()), Request.NO_DATA);
                }
            }
            long oid = keyOf(h);
            if (StoreKey.isStrip(oid)) return stripOp(h, oid, r.data(), recoveryRead, rsp);
            byte[] out = Request.NO_DATA;
            switch (h.opcode()) {
                case Opcodes.CREATE_AND_WRITE_PEER -> createAndWrite(oid, h.objOffset(), r.data());
                case Opcodes.WRITE_PEER -> {
                    recovery.awaitRecovered(oid);
                    if (r.body() != null) store.write(oid, h.objOffset(), r.body(), true);
                    else store.write(oid, h.objOffset(), r.data());
                }
                case Opcodes.READ_PEER -> out = read(h, oid, recoveryRead);
                case Opcodes.REMOVE_PEER -> {
                    if (!store.remove(oid)) rsp.result(SdResult.NO_OBJ);
                }
                default -> rsp.result(SdResult.INVALID_PARMS);
            }
            rsp.dataLength(out.length).epoch(state.epoch());
            return new Reply(rsp, out);
        } catch (StripStore.VersionConflict e) {
            byte[] st = e.state().encode();
            return new Reply(rsp.result(SdResult.STRIP_VERSION).dataLength(st.length).epoch(state.epoch()), st);
        } catch (IllegalArgumentException e) {
            WARN.warn("invalid", "{}: {}", h, e.getMessage());
            return new Reply(rsp.result(SdResult.INVALID_PARMS).epoch(state.epoch()), Request.NO_DATA);
        } catch (NoSuchObjectException e) {
            if (!retried && !h.hasFlag(SdFlags.CMD_RECOVERY) && store.diskFailures() != diskFailures) {
                // a disk failed while this request looked for the object: it may have been there; wait for its
                // recovery onto the disks left and look again
                return againAfterRecovery(r, h, recoveryRead);
            }
            // absent here because the membership moved on while the request waited (a recovery of the object for
            // its epoch was superseded): the sender retries with the new placement instead of failing the client
            int now = state.epoch();
            boolean moved = now > h.epoch() && !h.hasFlag(SdFlags.CMD_RECOVERY) && h.opcode() != Opcodes.REMOVE_PEER;
            if (!moved && !retried && h.opcode() == Opcodes.WRITE_PEER) {
                // a write to an object this node should hold and does not: it went from the store (its file or
                // directory removed under the node). Bring it back from the other copies, then write.
                recovery.missing(keyOf(h));
                return againAfterRecovery(r, h, recoveryRead);
            }
            return new Reply(rsp.result(moved ? SdResult.OLD_NODE_VER : SdResult.NO_OBJ).epoch(now), Request.NO_DATA);
        } catch (DiskFailedException e) {
            if (storeFailed(e)) {
                return new Reply(rsp.result(SdResult.NETWORK_ERROR).epoch(state.epoch()), Request.NO_DATA);
            }
            if (!retried) {
                // the object's disk failed, the node's other disks work: this node is recovering the objects that
                // disk held from their other copies; wait for this one, then do the request again
                return againAfterRecovery(r, h, recoveryRead);
            }
            // a second disk failed under the same request: the sender tries again (it is not the client's failure)
            WARN.warn("disk", "{}: {}", h, e.getMessage());
            return new Reply(rsp.result(SdResult.NETWORK_ERROR).epoch(state.epoch()), Request.NO_DATA);
        } catch (NoSpaceException e) {
            LOG.error("{}", e.getMessage());
            return new Reply(rsp.result(SdResult.NO_SPACE).epoch(state.epoch()), Request.NO_DATA);
        } catch (IOException e) {
            if (storeFailed(e)) {
                // this node is leaving: the sender retries once the membership moved on, rather than failing its
                // client with EIO for a failure the cluster survives
                return new Reply(rsp.result(SdResult.NETWORK_ERROR).epoch(state.epoch()), Request.NO_DATA);
            }
            LOG.error("I/O error on {}: {}", h, e.toString());
            return new Reply(rsp.result(SdResult.EIO).epoch(state.epoch()), Request.NO_DATA);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Reply(rsp.result(SdResult.SYSTEM_ERROR), Request.NO_DATA);
        }
    }

    /** Serves the request once more (the last time), after recovery has brought its object here if it is coming. */
    private Reply againAfterRecovery(Request r, SdRequest h, boolean recoveryRead) throws InterruptedException {
        recovery.awaitRecovered(keyOf(h));
        return serve(r, h, SdResponse.replyTo(h, SdResult.SUCCESS), recoveryRead, true);
    }

    /**
     * What the request names in the store: its oid, or with an erasure code policy (on a data or vmstate object)
     * the strip {@code ec_index} of it.
     */
    public static long keyOf(SdRequest h) {
        long oid = h.objOid();
        int policy = h.objCopyPolicy();
        if (policy == 0 || !ErasureCode.appliesTo(oid)) return oid;
        if (!ErasureCode.isValidPolicy(policy) || h.objEcIndex() >= ErasureCode.of(policy).totalStrips()) {
            throw new IllegalArgumentException(String.format("bad erasure code %#x / strip %d for %016x", policy, h.objEcIndex(), oid));
        }
        return StoreKey.strip(oid, h.objEcIndex());
    }

    /**
     * A request for one strip of an erasure-coded object, through the versioned strip store. With
     * {@link SdFlags#CMD_VERSIONED} (what our gateways send): a read names the version wanted in {@code cow_oid}
     * ({@link StripVersion#ANY}: as it is) and {@code data_length} the strip bytes wanted; its reply is the strip's
     * state followed by those bytes, or by nothing
     * when the strip cannot show that version (a length-0 read asks for the state alone); a write's or create's
     * payload starts with the base and next versions (see {@link StripStore#write}); every reply carries the state.
     * Without the flag (an upstream peer), reads return the bytes as they are and writes keep the strip's version.
     */
    private Reply stripOp(SdRequest h, long key, byte[] payload, boolean recoveryRead, SdResponse rsp)
            throws IOException, InterruptedException {
        boolean versioned = h.hasFlag(SdFlags.CMD_VERSIONED);
        long size = sizes.of(key);
        StripVersion.State st;
        byte[] data = Request.NO_DATA;
        switch (h.opcode()) {
            case Opcodes.READ_PEER -> {
                long want = versioned ? h.objCowOid() : StripVersion.ANY;
                int len = (int) h.dataLength();
                if (!recoveryRead) recovery.awaitRecovered(key);
                StripStore.Versioned got = readStrip(h, key, size, want, len, recoveryRead);
                st = got.state();
                if (got.data() != null) data = got.data();
            }
            case Opcodes.WRITE_PEER, Opcodes.CREATE_AND_WRITE_PEER -> {
                long base = StripVersion.ANY, next = StripVersion.ANY;
                byte[] bytes = payload;
                if (versioned) {
                    if (payload.length < 2 * Long.BYTES) throw new IllegalArgumentException("versioned strip write without versions");
                    ByteBuffer b = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
                    base = b.getLong();
                    next = b.getLong();
                    bytes = Arrays.copyOfRange(payload, 2 * Long.BYTES, payload.length);
                }
                recovery.awaitRecovered(key);
                if (h.opcode() == Opcodes.CREATE_AND_WRITE_PEER) {
                    // a create of a strip that is there (a retry, or what a failed create left) writes over it
                    long v = next == StripVersion.ANY ? 0 : next;
                    if (strips.create(key, size, v, null, h.objOffset(), bytes)) st = new StripVersion.State(v, 0);
                    else st = strips.write(key, size, StripVersion.ANY, next, h.objOffset(), bytes);
                } else {
                    st = strips.write(key, size, base, next, h.objOffset(), bytes);
                }
            }
            case Opcodes.REMOVE_PEER -> {
                if (!store.remove(key)) rsp.result(SdResult.NO_OBJ);
                return new Reply(rsp.epoch(state.epoch()), Request.NO_DATA);
            }
            default -> throw new IllegalArgumentException("not a strip operation");
        }
        byte[] out = data;
        if (versioned) {
            out = new byte[StripVersion.STATE_BYTES + data.length];
            System.arraycopy(st.encode(), 0, out, 0, StripVersion.STATE_BYTES);
            System.arraycopy(data, 0, out, StripVersion.STATE_BYTES, data.length);
        }
        return new Reply(rsp.dataLength(out.length).epoch(state.epoch()), out);
    }

    /** A strip read: the live strip, else (recovery, wildcard) a stale copy, the one kept at the target epoch first. */
    private StripStore.Versioned readStrip(SdRequest h, long key, long size, long want, int len, boolean recoveryRead)
            throws IOException {
        try {
            return strips.read(key, size, want, h.objOffset(), len);
        } catch (NoSuchObjectException e) {
            if (!recoveryRead && !h.hasFlag(SdFlags.CMD_WILDCARD)) throw e;
        }
        StripStore.Versioned s = strips.readStale(key, h.objTgtEpoch(), size, want, h.objOffset(), len);
        if (s == null && h.objTgtEpoch() > 0) s = strips.readStale(key, 0, size, want, h.objOffset(), len);
        if (s == null) throw new NoSuchObjectException(key);
        return s;
    }

    private void createAndWrite(long oid, long offset, byte[] data) throws IOException, InterruptedException {
        long size = sizes.of(oid);
        if (offset + data.length > size) throw new IOException("write beyond object end");
        // A create of an object that exists elsewhere (a retry after a lost reply across an epoch change) must not
        // make a zero-filled object here in place of the one recovery is about to bring: let recovery finish first.
        recovery.awaitRecovered(oid);
        // A create that finds the object (a retry, or recovery that got here first) still applies its bytes: the
        // client asked for them to be there.
        if (!store.create(oid, size, null, offset, data)) store.write(oid, offset, data);
    }

    private byte[] read(SdRequest h, long oid, boolean recoveryRead) throws IOException, InterruptedException {
        int len = (int) h.dataLength();
        if (!recoveryRead) recovery.awaitRecovered(oid);
        // no existence check first: a read of an absent object fails as cheaply as a stat, and one of a present
        // object (nearly all of them) costs one lookup less
        boolean staleToo = recoveryRead || h.hasFlag(SdFlags.CMD_WILDCARD);
        try {
            return store.read(oid, h.objOffset(), len);
        } catch (NoSuchObjectException e) {
            // absent, or removed or moved to stale meanwhile: recovery reads go on to a stale copy
            if (!staleToo) throw e;
        }
        if (staleToo) {
            byte[] s = store.readStale(oid, h.objTgtEpoch(), h.objOffset(), len);
            if (s != null) return s;
            if (h.objTgtEpoch() > 0) {
                s = store.readStale(oid, 0, h.objOffset(), len);
                if (s != null) return s;
            }
        }
        throw new NoSuchObjectException(oid);
    }
}
