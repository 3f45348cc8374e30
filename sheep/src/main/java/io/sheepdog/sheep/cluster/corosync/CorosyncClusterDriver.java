package io.sheepdog.sheep.cluster.corosync;

import io.sheepdog.proto.SdNode;
import io.sheepdog.sheep.cluster.ClusterDriver;
import io.sheepdog.sheep.cluster.ClusterDriverException;
import io.sheepdog.sheep.cluster.ClusterListener;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code corosync} cluster driver (docs/daemon.md §4.3): the sheep of a cluster are the members of the CPG
 * process group {@code "sheepdog"} of the local corosync, which provides total order and virtual synchrony
 * (totem). The membership protocol on top is {@link CpgProtocol}; libcpg is reached through the FFM API
 * ({@link Cpg}).
 *
 * <h2>Threads</h2>
 * <ul>
 *   <li>{@code corosync-dispatch}, a platform thread with a 4 MiB stack (libcpg needs more than 1 MiB): the only
 *   thread that talks to libcpg. It sends queued messages, then waits in poll(2) for corosync or a wake-up and
 *   dispatches; the CPG callbacks only copy the data into the event queue.</li>
 *   <li>{@code corosync-events}: runs {@link CpgProtocol} on the queued inputs and makes every
 *   {@link ClusterListener} callback, one at a time.</li>
 * </ul>
 *
 * <h2>Failures</h2>
 * corosync not running at {@link #join}: {@link ClusterDriverException} "cannot connect to corosync: ...". A member
 * that dies leaves the group, and the survivors see onLeave at once. If this process loses corosync (corosync
 * stopped or restarted) it reports onDriverHealth(false), tries to connect again every second, and once
 * connected joins as a new member with the message from {@link ClusterListener#onRejoin}; onDriverHealth(true)
 * follows its onAccept. The same happens after a healed network partition (the two sides went on separately, so
 * every process joins again).
 */
public final class CorosyncClusterDriver implements ClusterDriver {

    private static final Logger LOG = LoggerFactory.getLogger(CorosyncClusterDriver.class);
    static final String GROUP = "sheepdog";
    private static final long RECONNECT_MS = 1000;

    private ClusterListener listener;
    private volatile SdNode self;
    private byte[] firstJoinMessage;
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final AtomicLong blockIds = new AtomicLong();
    private volatile Connection connection;
    private Thread eventThread;
    private volatile boolean closed;
    private boolean reportedHealthy = true;
    private final CompletableFuture<Void> finished = new CompletableFuture<>();

    public CorosyncClusterDriver() {}

    @Override public String name() { return "corosync"; }

    @Override
    public synchronized void join(SdNode self, byte[] joinMessage, ClusterListener listener)
            throws ClusterDriverException {
        if (this.listener != null) throw new IllegalStateException("join called twice");
        this.self = self;
        this.listener = listener;
        this.firstJoinMessage = joinMessage.clone();
        try {
            Connection c = new Connection();
            c.start(joinMessage);
            connection = c;
        } catch (Cpg.CpgException e) {
            throw new ClusterDriverException("cannot connect to corosync: " + e.getMessage());
        }
        eventThread = new Thread(this::eventLoop, "corosync-events");
        eventThread.setDaemon(true);
        eventThread.start();
    }

    @Override
    public void leave() {
        Connection c = connection;
        if (c == null || closed) return;
        CompletableFuture<Void> done = new CompletableFuture<>();
        c.outbox.add(done);
        c.cpg.wakeup();
        try {
            done.get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.warn("could not leave the CPG group: {}", e.getMessage());
        }
    }

    @Override
    public boolean notify(byte[] msg) {
        Connection c = connection;
        return c != null && c.protocol.notify(msg);
    }

    @Override
    public boolean block() {
        Connection c = connection;
        return c != null && c.protocol.block(blockIds.incrementAndGet());
    }

    @Override
    public void unblock(byte[] msg) {
        Connection c = connection;
        if (c == null || !c.protocol.unblock(msg)) {
            LOG.warn("unblock without a held block (lost when this node re-joined): message dropped");
        }
    }

    @Override
    public void updateNode(SdNode node) {
        self = node;
        Connection c = connection;
        if (c != null) c.protocol.updateNode(node);
    }

    @Override
    public void evict(SdNode node) {
        Connection c = connection;
        if (c != null) c.protocol.evict(node);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Connection c = connection;
        if (c != null) c.stop();
        inbox.add(Wake.INSTANCE);
        Thread t = eventThread;
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        finished.complete(null);
    }

    /** Completes once the driver stopped delivering events (left, refused, or closed). */
    public CompletableFuture<Void> finished() { return finished; }

    // ---------------------------------------------------------------------------------------------------------

    /** One CPG connection: its handle, its protocol state, its send queue and its dispatch thread. */
    private final class Connection implements Cpg.Handler {
        final Cpg cpg;
        final Proc me;
        volatile CpgProtocol protocol;
        /** CpgMessage to multicast, or a CompletableFuture to complete after leaving the group. */
        final ConcurrentLinkedQueue<Object> outbox = new ConcurrentLinkedQueue<>();
        Thread dispatcher;
        volatile boolean running = true;

        /** Connects to corosync (no group yet). */
        Connection() throws Cpg.CpgException {
            cpg = Cpg.open(this);
            try {
                me = new Proc(cpg.localNodeId(), (int) ProcessHandle.current().pid());
            } catch (Cpg.CpgException e) {
                cpg.close();
                throw e;
            }
        }

        /** Joins the group and starts dispatching. */
        void start(byte[] joinMessage) throws Cpg.CpgException {
            protocol = new CpgProtocol(me, self, joinMessage, listener, m -> {
                outbox.add(m);
                cpg.wakeup();
            });
            try {
                cpg.join(GROUP);
            } catch (Cpg.CpgException e) {
                cpg.close();
                if (e.code == Cpg.CS_ERR_EXIST) {
                    throw new Cpg.CpgException("this process is already in the " + GROUP + " group", e.code);
                }
                throw e;
            }
            dispatcher = new Thread(null, this::dispatchLoop, "corosync-dispatch", 4 << 20);
            dispatcher.setDaemon(true);
            dispatcher.start();
        }

        @SuppressWarnings("unchecked")
        private void dispatchLoop() {
            String lost = null;
            try {
                while (running) {
                    boolean flowControlled = false;
                    Object o;
                    while ((o = outbox.peek()) != null) {
                        if (o instanceof CpgMessage m) {
                            int rc = cpg.mcast(m.encode());
                            if (rc == Cpg.CS_ERR_TRY_AGAIN) {
                                flowControlled = true;
                                break;
                            }
                            if (rc != Cpg.CS_OK) {
                                lost = "cpg_mcast_joined: " + Cpg.errorName(rc);
                                break;
                            }
                        } else if (o instanceof CompletableFuture<?> f) {
                            try {
                                cpg.leave(GROUP);
                            } catch (Cpg.CpgException e) {
                                LOG.warn("cpg_leave: {}", e.getMessage());
                            }
                            ((CompletableFuture<Void>) f).complete(null);
                        }
                        outbox.poll();
                    }
                    if (lost != null) break;
                    int rc = cpg.dispatch(flowControlled ? 10 : 1000);
                    if (rc != Cpg.CS_OK && rc != Cpg.CS_ERR_TRY_AGAIN) {
                        lost = "cpg_dispatch: " + Cpg.errorName(rc);
                        break;
                    }
                }
            } finally {
                cpg.close();
                for (Object o : outbox) if (o instanceof CompletableFuture<?> f) f.complete(null);
                if (lost != null && running) inbox.add(new Lost(this, lost));
            }
        }

        void stop() {
            running = false;
            if (dispatcher == null) {
                cpg.close();
                return;
            }
            cpg.wakeup();
            if (Thread.currentThread() != dispatcher) {
                try {
                    dispatcher.join(5000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }

        // Called on the dispatch thread: hand the data over, nothing else.
        @Override public void deliver(int nodeid, int pid, byte[] message) {
            try {
                inbox.add(new Input(this, new CpgProtocol.Delivered(new Proc(nodeid, pid), CpgMessage.decode(message))));
            } catch (IllegalArgumentException e) {
                LOG.warn("ignoring a malformed message from corosync process {}/{}: {}", nodeid, pid, e.getMessage());
            }
        }

        @Override public void confchg(Cpg.Address[] members, Cpg.Address[] left, Cpg.Address[] joined) {
            inbox.add(new Input(this, new CpgProtocol.Confchg(List.of(members), List.of(left), List.of(joined))));
        }
    }


    private record Input(Connection from, Object input) {}

    private record Lost(Connection from, String reason) {}

    private enum Wake { INSTANCE }

    // ---------------------------------------------------------------------------------------------------------
    // The event thread

    private void eventLoop() {
        String rejoinReason = null;
        long nextAttempt = 0;
        while (!closed) {
            Connection c = connection;
            try {
                if (c == null) {
                    // lost corosync: try again every second
                    long wait = nextAttempt - System.currentTimeMillis();
                    if (wait > 0) {
                        inbox.poll(wait, TimeUnit.MILLISECONDS);
                        continue;
                    }
                    nextAttempt = System.currentTimeMillis() + RECONNECT_MS;
                    reconnect(rejoinReason);
                    continue;
                }
                long delay = c.protocol.offerBlock(System.nanoTime());
                long waitMs = delay < 0 ? 1000 : Math.max(1, TimeUnit.NANOSECONDS.toMillis(delay) + 1);
                Object o = inbox.poll(waitMs, TimeUnit.MILLISECONDS);
                if (o instanceof Input in && in.from() == c) {
                    if (in.input() instanceof CpgProtocol.Confchg cc) c.protocol.onConfchg(cc);
                    else c.protocol.onDeliver((CpgProtocol.Delivered) in.input());
                    if (!reportedHealthy && c.protocol.accepted()) health(true, "joined the cluster again");
                    if (c.protocol.dropReason() != null) {
                        rejoinReason = c.protocol.dropReason();
                        drop(c, rejoinReason);
                    } else if (c.protocol.finished()) {
                        LOG.info("the corosync driver stopped delivering events");
                        c.stop();
                        finished.complete(null);
                        return;
                    }
                } else if (o instanceof Lost l && l.from() == c) {
                    rejoinReason = "lost the connection to corosync (" + l.reason() + ")";
                    drop(c, rejoinReason);
                }
            } catch (InterruptedException e) {
                if (closed) break;
            } catch (RuntimeException e) {
                LOG.error("corosync driver: {}", e.toString(), e);
            }
        }
    }

    private void drop(Connection c, String reason) {
        LOG.warn("dropped from the cluster: {}", reason);
        c.stop();
        connection = null;
        if (reportedHealthy) health(false, reason + "; re-joining the cluster");
    }

    /** Connects again; once corosync answers, asks the daemon for the join message and joins. */
    private void reconnect(String reason) {
        Connection c;
        try {
            c = new Connection();
        } catch (Cpg.CpgException e) {
            LOG.debug("cannot connect to corosync yet: {}", e.getMessage());
            return;
        }
        byte[] m = ClusterListener.rejoinMessage(listener, reason, firstJoinMessage);
        try {
            c.start(m);
            connection = c;
            LOG.info("connected to corosync again; joining");
        } catch (Cpg.CpgException e) {
            LOG.warn("cannot join the {} group again: {}", GROUP, e.getMessage());
        }
    }

    private void health(boolean healthy, String reason) {
        reportedHealthy = healthy;
        if (healthy) LOG.info("cluster driver healthy: {}", reason);
        else LOG.warn("cluster driver unhealthy: {}", reason);
        try {
            listener.onDriverHealth(healthy, reason);
        } catch (RuntimeException e) {
            LOG.error("onDriverHealth failed", e);
        }
    }
}
