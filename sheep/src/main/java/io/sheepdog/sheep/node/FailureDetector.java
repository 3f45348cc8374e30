package io.sheepdog.sheep.node;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.log.RateLimitedLog;
import java.io.IOException;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Heartbeats between sheep, whatever the cluster driver: every second this node asks each other member a trivial
 * question (GET_LOGLEVEL) on a connection of its own, apart from the data path. A member that has answered nothing
 * for the failure timeout (a stopped or swapping process, a hung disk that holds every thread, a partitioned host)
 * is evicted through the cluster driver ({@link io.sheepdog.sheep.cluster.ClusterDriver#evict}), so every member
 * moves to a new epoch without it and I/O goes on with the other copies. Process death is still seen faster by the
 * drivers themselves; this covers the process that is there but does not answer.
 *
 * <p>Three guards keep it from doing harm:
 * <ul>
 *   <li>A node evicts only while it hears from a strict majority of the members (itself included): a node cut off
 *   from the others does not throw them out; with two members nobody is evicted by heartbeat.</li>
 *   <li>A node that itself did not run for longer than the timeout (its heartbeat loop woke up late: it was the one
 *   stopped) evicts nobody for that gap, and holds its own I/O ({@link NodeState#suspend}) until the members'
 *   answers show it is not behind them: the others may have evicted it and written on without it, and its copies
 *   must not be served until it has re-joined.</li>
 *   <li>A node of a cluster of three or more that has heard from no majority for half the failure timeout (most
 *   likely it is the one cut off by a partition, and the others will evict it at the whole timeout) holds its I/O
 *   the same way until it hears from a majority again and is not behind them: it stops before they can have moved
 *   on without it.</li>
 * </ul>
 */
public final class FailureDetector implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(FailureDetector.class);
    private static final RateLimitedLog WARN = new RateLimitedLog(LOG);
    static final long INTERVAL_MS = 1000;

    private final NodeState state;
    private final Consumer<SdNode> evict;
    private final long timeoutNanos;
    private final Map<NodeId, Peer> peers = new HashMap<>(); // the loop's own
    private volatile boolean closed;
    private Thread thread;
    /** When this node found out it had been stopped; 0 when it has not (or has caught up since). */
    private long pausedAt;

    /** One watched member: its heartbeat connection, the question in flight, and when it last answered. */
    private static final class Peer {
        final SdNode node;
        volatile SheepConnection conn;
        CompletableFuture<Reply> inFlight;
        volatile long lastHeard;
        volatile int epoch;
        /** Why its last heartbeat got no answer (for the eviction's log line). */
        volatile String lastFailure = "none yet";
        int evictedAtEpoch = -1;

        Peer(SdNode node, long now) {
            this.node = node;
            this.lastHeard = now;
        }
    }

    /**
     * @param evict   takes a silent member out (the driver's evict)
     * @param timeoutMs how long a member may answer nothing before it is evicted
     */
    public FailureDetector(NodeState state, Consumer<SdNode> evict, long timeoutMs) {
        this.state = state;
        this.evict = evict;
        this.timeoutNanos = timeoutMs * 1_000_000L;
    }

    public FailureDetector start() {
        state.heartbeatTick(System.nanoTime(), timeoutNanos);
        thread = Thread.ofPlatform().daemon().name("failure-detector").start(this::run);
        return this;
    }

    private void run() {
        long last = System.nanoTime();
        while (!closed) {
            try {
                Thread.sleep(INTERVAL_MS);
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            try {
                if (now - last > timeoutNanos) paused(now, now - last);
                last = now;
                state.heartbeatTick(now, timeoutNanos); // after a pause: once suspended, so I/O stays held
                round(now);
            } catch (RuntimeException e) {
                LOG.warn("failure detector: {}", e.toString(), e);
            }
        }
    }

    /** This process did not run for {@code gap} ns: the silence was its own, and the others may have moved on. */
    private void paused(long now, long gap) {
        LOG.warn("this node did not run for {} ms: holding its I/O until it knows it has not been left behind", gap / 1_000_000);
        for (Peer p : peers.values()) p.lastHeard = now;
        pausedAt = now;
        state.suspend("this node did not run for " + gap / 1_000_000 + " ms and is catching up with the cluster");
    }

    private void round(long now) {
        ClusterView v = state.view();
        NodeId self = state.self().nid();
        Set<NodeId> members = new HashSet<>();
        if (v.status() == Proto.STATUS_OK) for (SdNode n : v.members()) if (!n.nid().equals(self)) members.add(n.nid());
        peers.entrySet().removeIf(e -> {
            if (members.contains(e.getKey())) return false;
            if (e.getValue().conn != null) e.getValue().conn.close();
            return true;
        });
        if (members.isEmpty()) {
            state.setEveryMemberHeard(true);
            catchUp(v, now);
            return;
        }
        for (SdNode n : v.members()) {
            if (n.nid().equals(self)) continue;
            Peer p = peers.computeIfAbsent(n.nid(), k -> new Peer(n, now));
            if (p.inFlight == null || p.inFlight.isDone()) ping(p);
        }
        // members unheard for half the failure timeout: none, for a driver's lease; a majority, for holding I/O
        int quiet = (int) peers.values().stream().filter(p -> now - p.lastHeard > timeoutNanos / 2).count();
        state.setEveryMemberHeard(quiet == 0);
        catchUp(v, now);
        if (pausedAt != 0) return; // no evictions while this node's own view may be stale
        int total = v.members().size();
        // Holding comes at half the failure timeout, evicting at the whole of it: a node cut off from a majority
        // (most likely the one a partition isolated) must stop serving its copies before the others can have evicted
        // it and written on without it. With both at the full timeout, the two raced within a heartbeat round, and a
        // write to objects whose copies were all on the cut-off side could be acknowledged after the others had
        // moved on.
        int heard = total - quiet;
        if (total >= 3 && heard * 2 <= total) {
            pausedAt = now;
            state.suspend("this node hears from only " + heard + " of " + total + " members: it may be cut off");
            LOG.warn("this node heard from only {} of {} members for {} ms: holding its I/O until it is back in the "
                    + "cluster", heard, total, timeoutNanos / 2_000_000);
            return;
        }
        List<Peer> silent = peers.values().stream().filter(p -> now - p.lastHeard > timeoutNanos).toList();
        if (silent.isEmpty()) return;
        int alive = total - silent.size();
        if (alive * 2 <= total) {
            // two members, one silent: nobody is evicted by heartbeat (either may be the one cut off)
            WARN.warn("no-majority", "{} of {} members answer no heartbeat, and this node hears from only {}: not evicting "
                    + "(it may be the one cut off)", silent.size(), total, alive);
            return;
        }
        for (Peer p : silent) {
            if (p.evictedAtEpoch == v.epoch()) continue;
            p.evictedAtEpoch = v.epoch();
            LOG.warn("{} answered no heartbeat for {} ms (last attempt: {}): evicting it at epoch {}", p.node.nid(),
                    (now - p.lastHeard) / 1_000_000, p.lastFailure, v.epoch());
            evict.accept(p.node);
        }
    }

    /**
     * After a pause: I/O resumes once a majority of the members answered since, none of them at a newer epoch than
     * this node's (if they evicted it, their epoch is ahead until it has re-joined).
     */
    private void catchUp(ClusterView v, long now) {
        if (pausedAt == 0) return;
        int heard = 1, ahead = 0;
        for (Peer p : peers.values()) {
            if (p.lastHeard <= pausedAt) continue;
            heard++;
            if (p.epoch > v.epoch()) ahead++;
        }
        int total = Math.max(1, peers.size() + 1);
        if (v.status() == Proto.STATUS_OK && ahead == 0 && heard * 2 > total) {
            LOG.info("caught up with the cluster at epoch {}: serving I/O again", v.epoch());
            pausedAt = 0;
            state.resume();
        }
    }

    /**
     * Sends the heartbeat question; its answer (any answer) is the member's sign of life. An answer that takes longer
     * than half the failure timeout closes the connection, and the next round asks on a new one: a connection that
     * went quiet for good (its far end restarted, a reply lost) must not keep a live member unheard until it is
     * evicted, again at every epoch, as one did after a restart in a chaos run.
     */
    private void ping(Peer p) {
        long waitMs = Math.max(500, timeoutNanos / 2_000_000);
        p.inFlight = CompletableFuture.supplyAsync(() -> {
            try {
                if (p.conn == null) p.conn = SheepConnection.open(p.node.nid().host(), p.node.nid().port(), 2000);
                return p.conn.submit(SdRequest.of(Opcodes.GET_LOGLEVEL).dataLength(4), null).get(waitMs, TimeUnit.MILLISECONDS);
            } catch (IOException | RuntimeException | ExecutionException | TimeoutException | InterruptedException e) {
                p.lastFailure = e instanceof TimeoutException ? "no answer within " + waitMs + " ms"
                        : String.valueOf(e instanceof ExecutionException ? e.getCause() : e);
                SheepConnection c = p.conn;
                p.conn = null;
                if (c != null) c.close();
                return null;
            }
        }, Thread::startVirtualThread).whenComplete((r, e) -> {
            if (r != null && r.result() != SdResult.NETWORK_ERROR) {
                p.epoch = r.header().epoch();
                p.lastHeard = System.nanoTime();
            } else if (r != null) {
                p.lastFailure = "answered " + SdResult.message(r.result());
            }
        });
    }

    @Override
    public void close() {
        closed = true;
        state.heartbeatTick(System.nanoTime(), 0); // no detector, nothing to wait for
        if (thread != null) thread.interrupt();
        for (Peer p : peers.values()) if (p.conn != null) p.conn.close();
    }
}
