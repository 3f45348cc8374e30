package io.sheepdog.sheep.node;

import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.VnodeRing;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.UnaryOperator;

/**
 * The cluster-wide settings this node holds (from {@code config} and the last accepted cluster_info) and its current
 * {@link ClusterView}. Written only by the cluster event thread; read by everyone.
 */
public final class NodeState {
    private volatile SdNode self;
    private volatile ClusterView view = ClusterView.initial();

    private volatile ClusterSettings settings = ClusterSettings.NONE;
    /** Null while the cluster driver reaches its server; else why it does not (no writes are served meanwhile). */
    private volatile String driverProblem;
    /** While the driver is unhealthy: System.nanoTime() until which its lease holds; 0: none. */
    private volatile long driverLeaseUntil;
    /**
     * Whether every other member answered a heartbeat within half the failure timeout (true where no failure detector
     * runs). A lease promises only that this node's session has not expired; a member that does not hear this node
     * could evict it through the driver meanwhile, so the lease serves writes only while every member answers.
     */
    private volatile boolean everyMemberHeard = true;

    public NodeState(SdNode self) { this.self = self; }

    public SdNode self() { return self; }

    /** Whether each node's vnodes follow its space (the default) rather than being fixed by sheep -V. */
    public boolean autoVnodes() { return (settings.flags() & Proto.CLUSTER_FLAG_AUTO_VNODES) != 0; }

    /** The cluster-wide settings (as in cluster_info and config), replaced whole. */
    public ClusterSettings settings() { return settings; }

    public void setSettings(ClusterSettings s) { settings = s; }

    /** Changes the settings with {@code change} (the cluster event thread is their only writer). */
    public synchronized void updateSettings(UnaryOperator<ClusterSettings> change) {
        settings = change.apply(settings);
    }

    /** Whether the cluster driver has lost its server (no writes are served meanwhile). */
    public boolean driverUnhealthy() { return driverProblem != null; }

    /** Why the cluster driver is unhealthy; "" if it is not. */
    public String driverProblem() {
        String p = driverProblem;
        return p == null ? "" : p;
    }

    /** {@code nodes} with the vnodes the ring gives them: computed from their space, or as each node was started. */
    public List<SdNode> ringVnodes(List<SdNode> nodes) { return autoVnodes() ? VnodeRing.autoVnodes(nodes) : nodes; }

    /** This node's own record after a change of its space or vnodes (reweight). */
    public void setSelf(SdNode n) {
        if (!n.nid().equals(self.nid())) throw new IllegalArgumentException(n + " is not " + self);
        self = n;
    }

    public ClusterView view() { return view; }

    public int epoch() { return view.epoch(); }

    public int status() { return view.status(); }

    public boolean formatted() { return settings.formatted(); }

    public synchronized void setView(int status, int epoch, List<SdNode> epochNodes, List<SdNode> members) {
        List<SdNode> en = List.copyOf(epochNodes);
        List<SdNode> withVnodes = ringVnodes(en);
        view = new ClusterView(status, epoch, withVnodes, List.copyOf(members), VnodeRing.build(withVnodes));
        if (status != Proto.STATUS_WAIT) rejoining = false;
        notifyAll();
    }

    public synchronized void setStatus(int status) {
        ClusterView v = view;
        view = new ClusterView(status, v.epoch(), v.epochNodes(), v.members(), v.ring());
        if (status != Proto.STATUS_WAIT) rejoining = false;
        notifyAll();
    }

    /**
     * Set while this node re-joins after losing its cluster-driver session (until it runs again): its status may be
     * WAIT meanwhile, and client I/O waits for the re-join (bounded) instead of failing, as it would in a cluster
     * that is starting up.
     */
    private volatile boolean rejoining;

    /**
     * Peer requests that change the store hold this (shared) from their check of {@link #rejoining} to the end of
     * their store operation; {@link #setRejoining} takes it exclusively. So once a node knows it was dropped, no
     * request from before is still changing its objects while the re-join decides what to keep (moveAllToStale).
     */
    private final ReentrantReadWriteLock peerGuard = new ReentrantReadWriteLock();

    public Lock peerWriteGuard() { return peerGuard.readLock(); }

    public void setRejoining() {
        peerGuard.writeLock().lock();
        try {
            synchronized (this) {
                rejoining = true;
            }
        } finally {
            peerGuard.writeLock().unlock();
        }
    }

    public boolean rejoining() {
        return rejoining;
    }

    /** Waits until the status is no longer WAIT; false (still WAIT) after {@code timeoutMs}. */
    public synchronized boolean awaitNotWaiting(long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (view.status() == Proto.STATUS_WAIT) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) return false;
            wait(left);
        }
        return true;
    }

    public synchronized void setMembers(List<SdNode> members) {
        ClusterView v = view;
        view = new ClusterView(v.status(), v.epoch(), v.epochNodes(), List.copyOf(members), v.ring());
        notifyAll();
    }

    /** Records whether the cluster driver reaches its server; wakes {@link #awaitDriverHealthy}. */
    public synchronized void setDriverHealth(boolean healthy, String problem) {
        setDriverHealth(healthy, problem, 0);
    }

    /**
     * As {@link #setDriverHealth(boolean, String)}, with the driver's lease while unhealthy
     * ({@link io.sheepdog.sheep.cluster.ClusterListener#onDriverHealth(boolean, String, long)}; 0: none).
     */
    public synchronized void setDriverHealth(boolean healthy, String problem, long memberUntilNanos) {
        driverProblem = healthy ? null : (problem == null ? "" : problem);
        driverLeaseUntil = healthy ? 0 : memberUntilNanos;
        notifyAll();
    }

    /**
     * Whether writes may be served now: the driver reaches its server, or it does not but its lease still holds (no
     * other member can have seen this node leave yet).
     */
    public boolean driverAllowsWrites() {
        if (driverProblem == null) return true;
        long until = driverLeaseUntil;
        return until != 0 && System.nanoTime() - until < 0 && everyMemberHeard;
    }

    /** The failure detector's finding at each round (see {@link #driverAllowsWrites}). */
    public void setEveryMemberHeard(boolean heard) { everyMemberHeard = heard; }

    /** Waits until the cluster driver is healthy; false (still not) after {@code timeoutMs}. */
    public synchronized boolean awaitDriverHealthy(long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (driverProblem != null) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) return false;
            wait(left);
        }
        return true;
    }

    /** Why this node holds its I/O (see {@link FailureDetector}); null while it does not. */
    private volatile String suspended;

    /** Holds this node's client I/O: it was stopped long enough that the cluster may have gone on without it. */
    public synchronized void suspend(String why) {
        suspended = why;
    }

    /** Lets I/O go on again; wakes {@link #awaitNotSuspended}. */
    public synchronized void resume() {
        suspended = null;
        notifyAll();
    }

    /** Why I/O is held, or null. */
    public String suspended() {
        String s = suspended;
        if (s == null && stalled()) return "this node's failure detector has not run for longer than the failure timeout";
        return s;
    }

    /** The failure detector's last round (System.nanoTime) and its timeout in ns (0: no failure detection). */
    private volatile long heartbeatTick;
    private volatile long heartbeatTimeoutNanos;

    /** The failure detector ran a round: a node whose detector stopped running (the process was stopped) holds I/O. */
    public synchronized void heartbeatTick(long now, long timeoutNanos) {
        heartbeatTick = now;
        heartbeatTimeoutNanos = timeoutNanos;
        notifyAll();
    }

    /**
     * Whether the failure detector has not run for longer than its timeout: the process was stopped, and until the
     * detector has looked at what happened meanwhile (it may have been evicted) its copies must not be served.
     */
    private boolean stalled() {
        long t = heartbeatTimeoutNanos;
        return t > 0 && System.nanoTime() - heartbeatTick > t;
    }

    /** Waits until I/O is not held; false (still held) after {@code timeoutMs}. */
    public synchronized boolean awaitNotSuspended(long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (suspended != null || stalled()) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) return false;
            wait(left);
        }
        return true;
    }

    /** Waits until the local epoch is at least {@code epoch}; false on timeout. */
    public synchronized boolean awaitEpoch(int epoch, long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (view.epoch() < epoch) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) return false;
            wait(left);
        }
        return true;
    }

    /** Waits until the epoch moves past {@code epoch}; false on timeout. */
    public synchronized boolean awaitEpochAfter(int epoch, long timeoutMs) throws InterruptedException {
        return awaitEpoch(epoch + 1, timeoutMs);
    }

    /** The cluster_info this node would send or answer with. */
    public ClusterInfo toClusterInfo() {
        ClusterView v = view;
        ClusterInfo c = new ClusterInfo();
        c.protoVer = Proto.SHEEP_PROTO_VER;
        ClusterSettings st = settings;
        c.disableRecovery = st.disableRecovery();
        c.epoch = v.epoch();
        c.ctime = st.ctime();
        c.flags = st.flags();
        c.nrCopies = st.copies();
        c.copyPolicy = st.copyPolicy();
        c.status = v.status();
        c.blockSizeShift = st.blockSizeShift();
        c.defaultStore = st.defaultStore();
        c.nodes = new ArrayList<>(v.epochNodes());
        return c;
    }

    public void adopt(ClusterInfo c) {
        settings = new ClusterSettings(c.ctime, c.flags, c.nrCopies, c.copyPolicy, c.blockSizeShift, c.defaultStore,
                c.disableRecovery);
    }
}
