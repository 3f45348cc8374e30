package io.sheepdog.sheep.nbd;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.ops.ClientInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This node's NBD writers and the VDI lock that lets one of them write (the lock model of the README's "VMs and disk
 * images over NBD"): a VDI's lock is the cluster's (LOCK_VDI, one holder at a time, owned by one connection); a
 * second client that opens the VDI for writing is let in as a <em>waiter</em>. Its first write asks the holder's node
 * to hand the lock over ({@link #handover}): granted once the holder is quiet (no write in flight, and no write for
 * {@link #QUIET_MS}, or {@link #QUIET_FLUSHED_MS} if it flushed since), and the holder is then <em>fenced</em>: its
 * connection may never write again. A migration's destination so takes over from a source that stopped, while an
 * accidental second VM beside a busy first one is refused, and two writers never interleave.
 *
 * <p>In strict mode ({@code sheep --vdi-lock strict}) a second writer is refused at open, as before.
 */
public final class WriterLocks {
    private static final Logger LOG = LoggerFactory.getLogger(WriterLocks.class);
    /** A holder that has not written for this long (and has nothing in flight) may be taken over. */
    static final long QUIET_MS = Long.getLong("sheepdog.lockQuietMs", 1000);
    /**
     * The same after a flush that followed its last write (a migration's source flushes when it stops): shorter, but
     * not nothing, so that a VM that flushes and writes on is not taken over between the two.
     */
    static final long QUIET_FLUSHED_MS = Long.getLong("sheepdog.lockQuietFlushedMs", 200);
    /** How long a handover waits for a busy holder to become quiet before the taker is refused. */
    static final long HANDOVER_WAIT_MS = Long.getLong("sheepdog.lockHandoverWaitMs", 5000);
    /**
     * How long a taker waits for a holder's node that does not answer (killed, hung, cut off) to be evicted, which
     * releases its locks, before it is refused: well past the failure timeout (5 s by default) and ZooKeeper's session
     * timeout (30 s), so that a VM whose gateway died and that reconnects through another sheep waits a few seconds
     * instead of being handed write errors.
     */
    static final long HOLDER_GONE_WAIT_MS = Long.getLong("sheepdog.lockHolderGoneWaitMs", 60_000);

    /** What the node must answer about the cluster's lock state. */
    public interface Cluster {
        /** The node whose client holds {@code vid}'s lock, or null if it is not locked. */
        NodeId holderNode(int vid);

        /** Whether {@code client} (a connection of this node) holds {@code vid}'s lock. */
        boolean holds(int vid, ClientInfo client);

        /** This node. */
        NodeId self();

        /** Asks {@code node} to hand {@code vid}'s lock over (HANDOVER_VDI); its SdResult. */
        int askHandover(NodeId node, int vid);

        /**
         * The working VDI that {@code vid} became through snapshots taken since (itself if none): a writer goes on
         * writing there, and its lock moved there with it.
         */
        default int working(int vid) { return vid; }
    }

    /** A writer's standing. */
    public enum Standing { HOLDING, WAITING, FENCED }

    /** One writable NBD export of this node. */
    public static final class Writer {
        final int vid;
        final String vdi;
        final ClientInfo client;
        private Standing standing;
        private int inFlight;
        private long lastWriteNanos;
        private boolean flushedSinceWrite = true;
        private Runnable release = () -> { };

        Writer(int vid, String vdi, ClientInfo client, Standing standing) {
            this.vid = vid;
            this.vdi = vdi;
            this.client = client;
            this.standing = standing;
            this.lastWriteNanos = System.nanoTime();
        }

        public synchronized Standing standing() { return standing; }

        public int vid() { return vid; }

        public ClientInfo client() { return client; }

        /** Gives back the cluster lock (when fenced or closed while holding). */
        void onRelease(Runnable r) { this.release = r; }

        /** A write may start: false unless this writer holds the lock (the caller then takes it over or fails). */
        synchronized boolean beginWrite() {
            if (standing != Standing.HOLDING) return false;
            inFlight++;
            flushedSinceWrite = false;
            return true;
        }

        synchronized void endWrite() {
            inFlight--;
            lastWriteNanos = System.nanoTime();
            notifyAll();
        }

        synchronized void flushed() {
            if (inFlight == 0) {
                flushedSinceWrite = true;
                notifyAll();
            }
        }

        synchronized void holding() { standing = Standing.HOLDING; }

        /**
         * Fences this writer once it is quiet, waiting up to {@code waitMs}; true if it is fenced now (or already was,
         * or never held the lock).
         */
        synchronized boolean fenceWhenQuiet(long waitMs) throws InterruptedException {
            long deadline = System.nanoTime() + waitMs * 1_000_000;
            while (standing == Standing.HOLDING) {
                long quietFor = (System.nanoTime() - lastWriteNanos) / 1_000_000;
                long needed = flushedSinceWrite ? QUIET_FLUSHED_MS : QUIET_MS;
                if (inFlight == 0 && quietFor >= needed) {
                    standing = Standing.FENCED;
                    return true;
                }
                long left = (deadline - System.nanoTime()) / 1_000_000;
                if (left <= 0) return false;
                wait(Math.max(1, Math.min(left, inFlight == 0 ? needed - quietFor : left)));
            }
            return true;
        }

        /** Fenced without asking (the cluster gave the lock to someone else, e.g. {@code dog vdi lock unlock}). */
        synchronized void fence() {
            if (standing == Standing.HOLDING) standing = Standing.FENCED;
        }
    }

    private final Cluster cluster;
    /** The writers of each VID on this node: at most one holds, the others wait or were fenced. */
    private final Map<Integer, List<Writer>> writers = new ConcurrentHashMap<>();

    public WriterLocks(Cluster cluster) {
        this.cluster = cluster;
    }

    Cluster cluster() { return cluster; }

    Writer add(int vid, String vdi, ClientInfo client, Standing standing) {
        Writer w = new Writer(vid, vdi, client, standing);
        writers.computeIfAbsent(vid, k -> new CopyOnWriteArrayList<>()).add(w);
        return w;
    }

    void remove(Writer w) {
        List<Writer> l = writers.get(w.vid);
        if (l != null) l.remove(w);
    }

    /**
     * HANDOVER_VDI from a node whose client wants to write {@code vid}: fences this node's holder of it once quiet and
     * releases the lock. SUCCESS, or VDI_LOCKED if the holder stayed busy (or is no NBD writer of this node).
     */
    public int handover(int vid) {
        // writers are filed under the VID they opened; snapshots since made another VID the one they write
        int working = cluster.working(vid);
        List<Writer> l = new ArrayList<>();
        writers.forEach((opened, ws) -> {
            if (cluster.working(opened) == working) l.addAll(ws);
        });
        for (Writer w : l) {
            if (w.standing() != Standing.HOLDING) continue;
            if (!cluster.holds(vid, w.client)) {
                w.fence();
                continue;
            }
            try {
                if (!w.fenceWhenQuiet(HANDOVER_WAIT_MS)) {
                    LOG.warn("VDI {}: {} keeps writing: the lock stays with it", w.vdi, w.client.display());
                    return SdResult.VDI_LOCKED;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return SdResult.SYSTEM_ERROR;
            }
            LOG.info("VDI {}: lock handed over from {}, which may no longer write", w.vdi, w.client.display());
            w.release.run();
            return SdResult.SUCCESS;
        }
        // no NBD writer of this node holds it (a Sheepdog-protocol client, or it was released meanwhile)
        return cluster.holderNode(vid) == null ? SdResult.SUCCESS : SdResult.VDI_LOCKED;
    }

    /**
     * A taker's request for {@code vid}'s lock, wherever it is held: SUCCESS once it is free (not held, or handed over
     * by this node or the holder's), else VDI_LOCKED (the holder stays busy, or is not an NBD writer). While the
     * holder's node gives neither answer (it does not answer at all, or it restarted and has not joined yet), this
     * waits until {@code deadline} (System.nanoTime; the taker's one bound, {@link #HOLDER_GONE_WAIT_MS} from its
     * first attempt) for the cluster to evict it, or for its answer.
     */
    public int askHolder(int vid, long deadline) throws InterruptedException {
        boolean waited = false;
        while (true) {
            NodeId holder = cluster.holderNode(vid);
            int res = holder == null ? SdResult.SUCCESS
                    : holder.equals(cluster.self()) ? handover(vid) : cluster.askHandover(holder, vid);
            // anything but a yes or a no means the holder's node cannot answer now (down, restarting, not joined)
            if (res == SdResult.SUCCESS || res == SdResult.VDI_LOCKED || System.nanoTime() > deadline) return res;
            if (!waited) {
                LOG.info("VDI {}: the node holding its lock ({}) cannot answer; waiting for it to come back or be "
                        + "evicted (up to {} s more)", Integer.toHexString(vid), holder, (deadline - System.nanoTime()) / 1_000_000_000);
                waited = true;
            }
            Thread.sleep(100);
        }
    }

    /** The writers that wait for a VDI's lock on this node (for GET_VM_LIST). */
    public List<Writer> waiting() {
        List<Writer> out = new ArrayList<>();
        for (List<Writer> l : writers.values()) for (Writer w : l) if (w.standing() == Standing.WAITING) out.add(w);
        return out;
    }
}
