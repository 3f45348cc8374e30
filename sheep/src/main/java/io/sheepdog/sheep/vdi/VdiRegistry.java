package io.sheepdog.sheep.vdi;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Proto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The cluster-wide VDI bookkeeping every node keeps in memory: the in-use and deleted VID bitmaps and a state per
 * VID (copies, policy, snapshot flag, parent, lock). Changed only by the main phase of ordered cluster operations,
 * so every node holds the same content. Thread-safe.
 */
public final class VdiRegistry {
    public static final int STATE_SIZE = 1428;

    private final BitSet inuse = new BitSet(Proto.NR_VDIS);
    private final BitSet deleted = new BitSet(Proto.NR_VDIS);
    private final Map<Integer, VdiState> states = new TreeMap<>();
    /**
     * VIDs whose lock an ordered event (a lock, a release, its owner's leave) set or cleared here: what this node
     * knows of their lock is as new as anything a peer can tell ({@link #merge} leaves it alone).
     */
    private final BitSet lockEvents = new BitSet();

    public synchronized void clear() {
        inuse.clear();
        deleted.clear();
        states.clear();
        lockEvents.clear();
    }

    public synchronized boolean inUse(int vid) { return inuse.get(vid); }
    public synchronized boolean isDeleted(int vid) { return deleted.get(vid); }

    /** First clear in-use bit at or after {@code from} and below 2^24, or -1. */
    public synchronized int nextClear(int from) {
        int b = inuse.nextClearBit(from);
        return b < Proto.NR_VDIS ? b : -1;
    }

    public synchronized void markInUse(int vid) { inuse.set(vid); }

    public synchronized VdiState state(int vid) { return states.get(vid); }

    public synchronized VdiState stateOrNew(int vid) { return states.computeIfAbsent(vid, VdiState::new); }

    /** Registers a new VDI (NOTIFY_VDI_ADD main phase); {@code oldVid} != 0 becomes a snapshot. */
    public synchronized void add(int newVid, int oldVid, int copies, int policy, int shift, int parent) {
        inuse.set(newVid);
        VdiState s = states.computeIfAbsent(newVid, VdiState::new);
        s.nrCopies = copies;
        s.copyPolicy = policy;
        s.blockSizeShift = shift;
        s.parentVid = parent;
        s.deleted = false;
        deleted.clear(newVid);
        if (oldVid != 0) {
            VdiState o = states.computeIfAbsent(oldVid, VdiState::new);
            o.snapshot = true;
            o.successor = newVid;
            inuse.set(oldVid);
            // the writer that holds the VDI's lock goes on writing in the new working VDI: its lock moves there
            // (kept on the snapshot, deleting the snapshot would take it from the writer, and the working VDI
            // would be open to a second writer)
            if (o.locked() && !s.locked()) {
                s.lockState = o.lockState;
                s.lockOwner = o.lockOwner;
                s.lockClientAddr = o.lockClientAddr;
                s.lockClientPort = o.lockClientPort;
                s.lockConnection = o.lockConnection;
                o.unlock();
                lockEvents.set(oldVid);
                lockEvents.set(newVid);
            }
        }
    }

    /** The working VDI that {@code vid} became through the snapshots this node saw ({@code vid} itself if none). */
    public synchronized int workingVid(int vid) {
        int v = vid;
        for (int hops = 0; hops < 1 << 16; hops++) {
            VdiState s = states.get(v);
            if (s == null || !s.snapshot || s.successor == 0) return v;
            v = s.successor;
        }
        return v;
    }

    public synchronized void markDeleted(int vid) {
        deleted.set(vid);
        VdiState s = states.get(vid);
        if (s != null) {
            s.deleted = true;
            s.unlock();
        }
    }

    public synchronized List<VdiState> all() { return new ArrayList<>(states.values()); }

    /** The 2 MiB wire bitmap (READ_VDIS / READ_DEL_VDIS): byte n/8, bit n%8. */
    public synchronized byte[] bitmap(boolean ofDeleted) {
        byte[] out = new byte[Proto.VDI_BITMAP_BYTES];
        byte[] b = (ofDeleted ? deleted : inuse).toByteArray();
        System.arraycopy(b, 0, out, 0, Math.min(b.length, out.length));
        return out;
    }

    /** Snapshot of a lock-relevant view: VIDs locked by {@code connection} on {@code gateway}. */
    public synchronized List<Integer> lockedBy(NodeId gateway, long connection) {
        List<Integer> out = new ArrayList<>();
        for (VdiState s : states.values()) {
            if (s.locked() && gateway.equals(s.lockOwner) && (connection == 0 || s.lockConnection == connection)) out.add(s.vid);
        }
        return out;
    }

    /** Drops every lock taken through {@code gateway} (the node left). */
    public synchronized void unlockAllOf(NodeId gateway) {
        for (VdiState s : states.values()) {
            if (s.locked() && gateway.equals(s.lockOwner)) {
                s.unlock();
                lockEvents.set(s.vid);
            }
        }
    }

    /**
     * LOCK_VDI's main phase: {@code vid} locked for {@code connection} of {@code client} through {@code gateway};
     * false if another holds it (the same holder locking again is no change).
     */
    public synchronized boolean lock(int vid, NodeId gateway, NodeId client, long connection) {
        VdiState s = stateOrNew(vid);
        lockEvents.set(vid);
        if (s.locked() && !(gateway.equals(s.lockOwner) && s.lockConnection == connection)) return false;
        s.lockState = Proto.LOCK_STATE_LOCKED;
        s.lockOwner = gateway;
        s.lockClientAddr = client.addr();
        s.lockClientPort = client.port();
        s.lockConnection = connection;
        return true;
    }

    /** RELEASE_VDI's main phase: unlocks {@code vid}; with {@code gateway} not null only if that holder has it. */
    public synchronized void release(int vid, NodeId gateway, long connection) {
        VdiState s = states.get(vid);
        lockEvents.set(vid);
        if (s == null || !s.locked()) return;
        if (gateway == null || (gateway.equals(s.lockOwner) && s.lockConnection == connection)) s.unlock();
    }

    // ---- GET_VDI_COPIES wire format: array of 1428-byte vdi_state, sorted by vid ----
    // Normal locks keep the client's address in participants[0] and its connection id in participants_state[0..1]
    // while nr_participants stays 0: original readers see an ordinary lock owned by the gateway node.

    public synchronized byte[] encodeStates() {
        ByteBuffer b = ByteBuffer.allocate(states.size() * STATE_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        for (VdiState s : states.values()) {
            int base = b.position();
            b.putInt(base, s.vid);
            b.put(base + 4, (byte) s.nrCopies);
            b.put(base + 5, (byte) (s.snapshot ? 1 : 0));
            b.put(base + 6, (byte) (s.deleted ? 1 : 0));
            b.put(base + 7, (byte) s.copyPolicy);
            b.put(base + 8, (byte) s.blockSizeShift);
            b.putInt(base + 12, s.parentVid);
            b.putInt(base + 16, s.lockState);
            if (s.lockOwner != null) {
                b.position(base + 20);
                s.lockOwner.encode(b);
                b.putLong(base + 64, s.lockConnection);
                b.position(base + 188);
                new NodeId(s.lockClientAddr, s.lockClientPort).encode(b);
            }
            b.position(base + STATE_SIZE);
        }
        return b.array();
    }

    /**
     * Merges states from a peer (join): bits and states are added, never removed. A lock is taken over only where
     * no ordered event touched that VID's lock here yet, and only if {@code liveOwner} accepts its owner (null: no
     * lock is taken at all). A peer's answer is a snapshot of some moment, maybe before events this node already
     * applied: a lock released since (by its client, or with its node's leave, which a node that joined after it
     * never hears of) must not come back from it, or no one can take that VDI's lock again.
     */
    public synchronized void merge(byte[] raw, java.util.function.Predicate<NodeId> liveOwner) {
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        for (int base = 0; base + STATE_SIZE <= raw.length; base += STATE_SIZE) {
            int vid = b.getInt(base);
            if (vid <= 0 || vid >= Proto.NR_VDIS) continue;
            VdiState s = states.computeIfAbsent(vid, VdiState::new);
            s.nrCopies = b.get(base + 4) & 0xff;
            s.snapshot |= b.get(base + 5) != 0;
            s.deleted |= b.get(base + 6) != 0;
            s.copyPolicy = b.get(base + 7) & 0xff;
            s.blockSizeShift = b.get(base + 8) & 0xff;
            s.parentVid = b.getInt(base + 12);
            int ls = b.getInt(base + 16);
            NodeId owner = ls == Proto.LOCK_STATE_LOCKED && !s.locked() && liveOwner != null && !lockEvents.get(vid)
                    ? NodeId.decode(b.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(base + 20)) : null;
            if (owner != null && liveOwner.test(owner)) {
                s.lockState = ls;
                s.lockOwner = owner;
                s.lockConnection = b.getLong(base + 64);
                NodeId c = NodeId.decode(b.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(base + 188));
                s.lockClientAddr = c.addr();
                s.lockClientPort = c.port();
            }
            inuse.set(vid);
            if (s.deleted) deleted.set(vid);
        }
    }
}
