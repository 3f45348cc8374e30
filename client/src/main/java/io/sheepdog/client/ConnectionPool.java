package io.sheepdog.client;

import io.sheepdog.proto.SdRequest;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Up to N pipelined {@link SheepConnection}s per {@code host:port}, opened on demand and replaced when they break.
 * Used by dog and by the daemon's gateway for sheep-to-sheep traffic, so it is thread-safe and cheap: a request
 * goes to an idle connection if there is one, else to a not yet opened slot, else to the least loaded
 * connection. A request that was already sent on a connection that then breaks fails with an {@link IOException};
 * the pool never resends it (the caller knows whether the request is idempotent), but the next request gets a
 * fresh connection.
 */
public final class ConnectionPool implements AutoCloseable {
    public static final int DEFAULT_CONNECTIONS_PER_PEER = 8;
    public static final int DEFAULT_CONNECT_TIMEOUT_MS = 5000;

    private final int perPeer;
    private final int connectTimeoutMs;
    private final boolean virtualReaders;
    private final ConcurrentHashMap<String, Peer> peers = new ConcurrentHashMap<>();
    private volatile boolean closed;

    public ConnectionPool() { this(DEFAULT_CONNECTIONS_PER_PEER, DEFAULT_CONNECT_TIMEOUT_MS); }

    public ConnectionPool(int connectionsPerPeer, int connectTimeoutMs) { this(connectionsPerPeer, connectTimeoutMs, true); }

    /**
     * @param virtualReaders read replies on virtual threads (daemon, many connections) or on platform daemon
     *                       threads (a short-lived command line tool, which then never starts the virtual scheduler)
     */
    public ConnectionPool(int connectionsPerPeer, int connectTimeoutMs, boolean virtualReaders) {
        if (connectionsPerPeer < 1) throw new IllegalArgumentException("connectionsPerPeer must be >= 1");
        this.perPeer = connectionsPerPeer;
        this.connectTimeoutMs = connectTimeoutMs;
        this.virtualReaders = virtualReaders;
    }

    /** The transport for one peer; cheap to call for every request (a map lookup). */
    public Peer peer(String host, int port) {
        if (closed) throw new IllegalStateException("connection pool closed");
        return peers.computeIfAbsent(key(host, port), k -> new Peer(host, port));
    }

    /** Sends one request to {@code host:port} over a pooled connection. */
    public CompletableFuture<Reply> submit(String host, int port, SdRequest req, byte[] payload) {
        return peer(host, port).submit(req, payload);
    }

    /** Closes and forgets the connections to a peer (for example a node that left); in-flight requests fail. */
    public void evict(String host, int port) {
        Peer p = peers.remove(key(host, port));
        if (p != null) p.closeConnections();
    }

    /** Number of open connections to a peer (for tests and statistics). */
    public int openConnections(String host, int port) {
        Peer p = peers.get(key(host, port));
        return p == null ? 0 : p.openCount();
    }

    @Override
    public void close() {
        closed = true;
        for (var it = peers.values().iterator(); it.hasNext(); ) {
            Peer p = it.next();
            it.remove();
            p.closeConnections();
        }
    }

    private static String key(String host, int port) { return host + ":" + port; }

    /**
     * The pooled connections to one {@code host:port}. Implements {@link ObjectTransport}; {@link #close()} is a no-op
     * because the pool owns the connections (use {@link ConnectionPool#evict}).
     */
    public final class Peer implements ObjectTransport {
        private final String host;
        private final int port;
        private final AtomicReferenceArray<SheepConnection> slots;
        private final ReentrantLock[] slotLocks;
        private final AtomicInteger rr = new AtomicInteger();
        private volatile boolean dead;

        private Peer(String host, int port) {
            this.host = host;
            this.port = port;
            this.slots = new AtomicReferenceArray<>(perPeer);
            this.slotLocks = new ReentrantLock[perPeer];
            for (int i = 0; i < perPeer; i++) slotLocks[i] = new ReentrantLock();
        }

        public String host() { return host; }
        public int port() { return port; }

        @Override
        public CompletableFuture<Reply> submit(SdRequest req, byte[] payload) {
            SheepConnection c;
            try {
                c = pick();
            } catch (IOException e) {
                return CompletableFuture.failedFuture(e);
            }
            return c.submit(req, payload);
        }

        /** All on one connection, so that they go out in one write. */
        @Override
        public List<CompletableFuture<Reply>> submitAll(List<SdRequest> reqs) {
            SheepConnection c;
            try {
                c = pick();
            } catch (IOException e) {
                List<CompletableFuture<Reply>> out = new ArrayList<>(reqs.size());
                for (int i = 0; i < reqs.size(); i++) out.add(CompletableFuture.failedFuture(e));
                return out;
            }
            return c.submitAll(reqs);
        }

        /** An idle open connection, else a fresh one in an empty or broken slot, else the least loaded one. */
        private SheepConnection pick() throws IOException {
            int start = Math.floorMod(rr.getAndIncrement(), perPeer);
            SheepConnection least = null;
            int leastLoad = Integer.MAX_VALUE;
            int freeSlot = -1;
            for (int k = 0; k < perPeer; k++) {
                int i = (start + k) % perPeer;
                SheepConnection c = slots.get(i);
                if (c == null || !c.isOpen()) {
                    if (freeSlot < 0) freeSlot = i;
                    continue;
                }
                int load = c.inflight();
                if (load == 0) return c;
                if (load < leastLoad) { least = c; leastLoad = load; }
            }
            if (freeSlot >= 0) {
                try {
                    return connect(freeSlot);
                } catch (IOException e) {
                    if (least != null) return least; // the peer is reachable through the connections we have
                    throw e;
                }
            }
            return least;
        }

        private SheepConnection connect(int slot) throws IOException {
            ReentrantLock l = slotLocks[slot];
            l.lock();
            try {
                SheepConnection c = slots.get(slot);
                if (c != null && c.isOpen()) return c; // someone else connected it meanwhile
                if (c != null) c.close();
                if (closed || dead) throw new IOException("connection pool closed");
                SheepConnection fresh = SheepConnection.open(host, port, connectTimeoutMs, virtualReaders);
                slots.set(slot, fresh);
                if (closed || dead) {
                    // evicted while we were connecting: do not leave an orphan connection behind
                    slots.compareAndSet(slot, fresh, null);
                    fresh.close();
                    throw new IOException("connection pool closed");
                }
                return fresh;
            } finally {
                l.unlock();
            }
        }

        int openCount() {
            int n = 0;
            for (int i = 0; i < perPeer; i++) {
                SheepConnection c = slots.get(i);
                if (c != null && c.isOpen()) n++;
            }
            return n;
        }

        void closeConnections() {
            dead = true;
            for (int i = 0; i < perPeer; i++) {
                SheepConnection c = slots.getAndSet(i, null);
                if (c != null) c.close();
            }
        }

        /** The pool owns the connections; closing a peer view does nothing. */
        @Override public void close() { }

        @Override public String toString() { return host + ":" + port; }
    }
}
