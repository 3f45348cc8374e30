package io.sheepdog.sheep.cluster;

import io.sheepdog.proto.SdNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Test-only ordered broadcast among several daemons in one JVM: one lock gives the total order, each member has its
 * own delivery thread. Lets core tests run several sheep in-process (a crash is {@link Driver#crash()}).
 */
public final class InJvmClusterBus {
    private final List<Driver> members = new ArrayList<>();
    private final Deque<Driver> blockQueue = new ArrayDeque<>();
    private Driver blockHolder;

    public Driver newDriver() { return new Driver(); }

    private synchronized void deliverAll(java.util.function.BiConsumer<Driver, List<SdNode>> ev) {
        List<SdNode> snap = nodes();
        for (Driver d : new ArrayList<>(members)) d.events.execute(() -> ev.accept(d, snap));
    }

    private List<SdNode> nodes() {
        List<SdNode> out = new ArrayList<>();
        for (Driver d : members) out.add(d.self);
        return out;
    }

    private synchronized void grantNextBlock() {
        if (blockHolder != null || blockQueue.isEmpty()) return;
        Driver d = blockQueue.poll();
        if (!members.contains(d)) {
            grantNextBlock();
            return;
        }
        blockHolder = d;
        d.events.execute(() -> {
            if (!d.listener.onBlock()) {
                synchronized (InJvmClusterBus.this) {
                    blockHolder = null;
                    blockQueue.addFirst(d);
                }
                grantNextBlock();
            }
        });
    }

    public final class Driver implements ClusterDriver {
        final ExecutorService events = Executors.newSingleThreadExecutor();
        volatile ClusterListener listener;
        volatile SdNode self;

        @Override public String name() { return "injvm"; }

        @Override
        public void join(SdNode me, byte[] msg, ClusterListener l) {
            self = me;
            listener = l;
            synchronized (InJvmClusterBus.this) {
                List<SdNode> before = nodes();
                Driver master = members.isEmpty() ? this : members.get(0);
                // the master decides on its own event thread, then everyone (joiner included) accepts in order
                master.events.execute(() -> {
                    ClusterListener.JoinDecision d = master.listener.onJoinRequest(me, before, msg);
                    if (!d.accept()) return;
                    synchronized (InJvmClusterBus.this) {
                        members.add(this);
                        deliverAll((drv, snap) -> drv.listener.onAccept(me, snap, d.message()));
                    }
                });
            }
        }

        @Override public void leave() { crash(); }

        /** This member disappears; the others see a leave. */
        public void crash() {
            synchronized (InJvmClusterBus.this) {
                if (!members.remove(this)) return;
                if (blockHolder == this) blockHolder = null;
                blockQueue.remove(this);
                SdNode me = self;
                deliverAll((drv, snap) -> drv.listener.onLeave(me, snap));
            }
            grantNextBlock();
            events.shutdownNow();
        }

        @Override
        public boolean notify(byte[] msg) {
            SdNode me = self;
            deliverAll((drv, snap) -> drv.listener.onNotify(me, msg));
            return true;
        }

        @Override
        public boolean block() {
            synchronized (InJvmClusterBus.this) { blockQueue.add(this); }
            grantNextBlock();
            return true;
        }

        @Override
        public void unblock(byte[] msg) {
            synchronized (InJvmClusterBus.this) {
                if (blockHolder == this) blockHolder = null;
                notify(msg);
            }
            grantNextBlock();
        }

        @Override
        public void updateNode(SdNode node) {
            deliverAll((drv, snap) -> drv.listener.onUpdateNode(node));
        }

        /** The evicted driver stops getting events, as if it had crashed. */
        @Override
        public void evict(SdNode node) {
            Driver d;
            synchronized (InJvmClusterBus.this) {
                d = members.stream().filter(m -> m.self.nid().equals(node.nid())).findFirst().orElse(null);
            }
            if (d != null) d.crash();
        }

        @Override public void close() { crash(); }
    }
}
