package io.sheepdog.sheep.gateway;

import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.NodeId;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Pipelined connections to the other sheep, a few per peer, opened on first use and replaced when they break.
 */
public final class PeerPool implements AutoCloseable {
    private static final int PER_PEER = 4;
    private final Map<NodeId, SheepConnection[]> conns = new ConcurrentHashMap<>();
    private final AtomicInteger rr = new AtomicInteger();
    private final int connectTimeoutMs;

    public PeerPool(int connectTimeoutMs) { this.connectTimeoutMs = connectTimeoutMs; }

    public SheepConnection get(NodeId peer) throws IOException {
        SheepConnection[] slots = conns.computeIfAbsent(peer, p -> new SheepConnection[PER_PEER]);
        int i = Math.floorMod(rr.getAndIncrement(), PER_PEER);
        synchronized (slots) {
            SheepConnection c = slots[i];
            if (c == null || !c.isOpen()) {
                if (c != null) c.close();
                c = SheepConnection.open(peer.host(), peer.port(), connectTimeoutMs);
                slots[i] = c;
            }
            return c;
        }
    }

    /** Drops the connections to a peer (it left the cluster). */
    public void forget(NodeId peer) {
        SheepConnection[] slots = conns.remove(peer);
        if (slots != null) {
            synchronized (slots) {
                for (SheepConnection c : slots) if (c != null) c.close();
            }
        }
    }

    @Override public void close() {
        for (NodeId n : conns.keySet()) forget(n);
    }
}
