package io.sheepdog.sheep.gateway;

import io.sheepdog.proto.NodeId;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Connections to the other sheep ({@link PeerLink}s, one request in flight on each): taken for a request and given
 * back once its reply is read, opened when none is idle, closed when they break. As many links to a peer as requests
 * were in flight to it at once; they stay open between requests (a link closed after each request would cost a
 * connect, and a port in TIME_WAIT, per request at high queue depths) until unused for {@link #IDLE_EXPIRY_MS}
 * ({@link #closeIdle}, from the gateway's watch).
 */
public final class PeerPool implements AutoCloseable {
    /** How long an idle link stays open. */
    static final long IDLE_EXPIRY_MS = 30_000;

    private final int connectTimeoutMs;
    private final int readTimeoutMs;
    private final Map<NodeId, Peer> peers = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /** A peer's links: the idle ones, and every open one (so that {@link #forget} can end those in use). */
    private static final class Peer {
        final ArrayDeque<PeerLink> idle = new ArrayDeque<>();
        final Set<PeerLink> open = ConcurrentHashMap.newKeySet();
        boolean forgotten;
        /** Until when (System.nanoTime) new links go to the main port: the I/O port failed or hung. */
        volatile long ioPortAvoidedUntil = System.nanoTime();
    }

    public PeerPool(int connectTimeoutMs) {
        this.connectTimeoutMs = connectTimeoutMs;
        // a last resort (see PeerLink#open): the gateway gives a call up after the peer timeout itself
        this.readTimeoutMs = (int) Math.min(Integer.MAX_VALUE, Gateway.PEER_TIMEOUT_MS + 10_000);
    }

    /** An idle link to {@code peer}, or a new one. Give it back with {@link #release}. */
    PeerLink acquire(NodeId peer) throws IOException {
        if (closed) throw new IOException("shutting down");
        Peer p = peers.computeIfAbsent(peer, x -> new Peer());
        synchronized (p) {
            for (PeerLink l; (l = p.idle.pollFirst()) != null; ) {
                if (l.isOpen()) return l;
                p.open.remove(l);
            }
        }
        PeerLink l = PeerLink.open(peer, connectTimeoutMs, readTimeoutMs, System.nanoTime() - p.ioPortAvoidedUntil >= 0,
                () -> avoidIoPort(p));
        p.open.add(l);
        synchronized (p) {
            // forgotten while connecting (the peer left): this link is not for reuse, and ends with its request
            if (p.forgotten || closed) {
                p.open.remove(l);
                l.close();
                throw new IOException(peer + " left the cluster");
            }
        }
        return l;
    }

    /**
     * New links to {@code peer} go to its main port for {@link #IO_PORT_AVOID_MS}: its I/O port refused, greeted as
     * another node's, or left a request unanswered for the peer timeout while the node stayed a member (a firewall
     * that drops the I/O port, a dead data network card): without this each new link would wait for its connect to
     * time out before falling back.
     */
    void avoidIoPort(NodeId peer) {
        Peer p = peers.get(peer);
        if (p != null) avoidIoPort(p);
    }

    /** Also closes the idle links to the I/O port: a request sent on one would hang as the failed one did. */
    private static void avoidIoPort(Peer p) {
        p.ioPortAvoidedUntil = System.nanoTime() + IO_PORT_AVOID_MS * 1_000_000L;
        List<PeerLink> drop = new ArrayList<>();
        synchronized (p) {
            for (var it = p.idle.iterator(); it.hasNext(); ) {
                PeerLink l = it.next();
                if (l.viaIoPort()) {
                    it.remove();
                    p.open.remove(l);
                    drop.add(l);
                }
            }
        }
        for (PeerLink l : drop) l.close();
    }

    /** How long new links avoid an I/O port that failed. */
    static final long IO_PORT_AVOID_MS = 60_000;

    /** Gives back a link whose reply was read (kept for the next request), or one that broke (closed). */
    void release(PeerLink l) {
        Peer p = peers.get(l.peer());
        if (p == null) {
            l.close();
            return;
        }
        synchronized (p) {
            if (l.isOpen() && !p.forgotten && !closed) {
                l.idleSince(System.nanoTime());
                p.idle.addFirst(l); // the most recently used first: the others age out when fewer are needed
                return;
            }
            p.open.remove(l);
        }
        l.close();
    }

    /** Closes the links idle for longer than {@code idleNanos} (the least recently used are at the tail). */
    void closeIdle(long idleNanos) {
        long cutoff = System.nanoTime() - idleNanos;
        for (Peer p : peers.values()) {
            List<PeerLink> old = new ArrayList<>();
            synchronized (p) {
                for (PeerLink l; (l = p.idle.peekLast()) != null && l.idleSince() - cutoff < 0; ) {
                    old.add(p.idle.pollLast());
                    p.open.remove(l);
                }
            }
            for (PeerLink l : old) l.close();
        }
    }

    /** Calls {@code f} with every link that has a request in flight. */
    void forEachBusy(Consumer<PeerLink> f) {
        for (Peer p : peers.values()) {
            for (PeerLink l : p.open) if (l.busySince() != 0) f.accept(l);
        }
    }

    /** Open links to {@code peer}, idle or in use. */
    int openLinks(NodeId peer) {
        Peer p = peers.get(peer);
        return p == null ? 0 : p.open.size();
    }

    /** Drops the links to a peer (it left the cluster): idle ones close, and so do those in use, failing their requests. */
    public void forget(NodeId peer) {
        Peer p = peers.remove(peer);
        if (p == null) return;
        synchronized (p) {
            p.forgotten = true;
            p.idle.clear();
        }
        for (PeerLink l : p.open) l.close();
        p.open.clear();
    }

    @Override public void close() {
        closed = true;
        for (NodeId n : peers.keySet()) forget(n);
    }
}
