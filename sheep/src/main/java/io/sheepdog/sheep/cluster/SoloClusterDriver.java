package io.sheepdog.sheep.cluster;

import io.sheepdog.proto.SdNode;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A cluster of exactly one node, with no rendezvous at all: every event is delivered to this node's own listener on
 * one thread. Useful for a single sheep and for tests of the daemon core; {@code -c solo}.
 */
public final class SoloClusterDriver implements ClusterDriver {
    private final ExecutorService events = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "cluster-events");
        t.setDaemon(true);
        return t;
    });
    private volatile ClusterListener listener;
    private volatile SdNode self;

    @Override public String name() { return "solo"; }

    @Override
    public void join(SdNode me, byte[] joinMessage, ClusterListener l) {
        this.self = me;
        this.listener = l;
        events.execute(() -> {
            ClusterListener.JoinDecision d = l.onJoinRequest(me, List.of(), joinMessage);
            if (d.accept()) l.onAccept(me, List.of(me), d.message());
        });
    }

    @Override public void leave() { }

    @Override
    public boolean notify(byte[] msg) {
        events.execute(() -> listener.onNotify(self, msg));
        return true;
    }

    @Override
    public boolean block() {
        events.execute(() -> {
            if (!listener.onBlock()) block();
        });
        return true;
    }

    @Override public void unblock(byte[] msg) { notify(msg); }

    @Override public void updateNode(SdNode node) { events.execute(() -> listener.onUpdateNode(node)); }

    @Override public void close() { events.shutdownNow(); }

    /** A solo node has nobody to evict. */
    @Override public void evict(SdNode node) { }
}
