package io.sheepdog.sheep.cluster.zookeeper;

import io.sheepdog.proto.SdNode;
import io.sheepdog.sheep.cluster.ClusterDriver;
import io.sheepdog.sheep.cluster.ClusterDriverException;
import io.sheepdog.sheep.cluster.ClusterListener;
import io.sheepdog.sheep.cluster.common.BlockFifo;
import io.sheepdog.sheep.cluster.common.ClusterEvent.Kind;
import io.sheepdog.sheep.cluster.common.ClusterEvent;
import io.sheepdog.sheep.cluster.common.Member;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code zookeeper} cluster driver (docs/daemon.md §4.2): membership and totally ordered events through an
 * Apache ZooKeeper ensemble, for clusters spanning hosts.
 *
 * <h2>Znodes under the base path (default {@code /sheepdog})</h2>
 * <ul>
 *   <li>{@code queue/<key>-<n>-<seq>}: persistent sequential znodes, one per event. The sequence number is the
 *   total order; every node reads the queue from its own JOIN onwards and applies the same events in the same
 *   order. The name prefix (sender key and a per-sender counter) makes a create that failed with a lost connection
 *   safe to retry: the sender first looks for its name.</li>
 *   <li>{@code member/<addr:port>-<key>}: one ephemeral znode per live process ({@link MemberZnode}). Its
 *   disappearance (session closed or expired) makes the survivors queue a LEAVE.</li>
 * </ul>
 *
 * <h2>Members, joins and the master</h2>
 * A member is identified by a random 64-bit key chosen for each join, so a sheep that restarts or re-joins with the
 * same address is a new member. The member list is replicated: it is changed only by ACCEPT and LEAVE events. A
 * JOIN is answered in place: the master (the oldest member whose znode is alive) runs onJoinRequest and overwrites
 * the JOIN znode (conditionally on its version, so only one answer can win) with an ACCEPT carrying the new member
 * list and the block FIFO, or with a REFUSE. Everybody waits at a JOIN until it is answered. A joiner answers its
 * own JOIN (as the first member, with no members) only when no live process joined before it. The ACCEPT content
 * is authoritative: members missing from it are dropped (that is how a restarted sheep replaces its dead
 * predecessor with the same address at once: the master leaves the predecessor out, everyone delivers onLeave
 * for it and then onAccept).
 *
 * <h2>Blocks</h2> BLOCK events form a FIFO ({@link BlockFifo}); the head's owner gets onBlock; UNBLOCK removes it
 * and is delivered as onNotify; a LEAVE removes the leaver's requests, releasing a block it held.
 *
 * <h2>Failures</h2>
 * <ul>
 *   <li>Connection lost: onDriverHealth(false); back with the same session: onDriverHealth(true). An outage shorter
 *   than the session timeout changes nothing else.</li>
 *   <li>Session expired (or the cluster removed this node): onDriverHealth(false), then, once connected again, the
 *   driver asks {@link ClusterListener#onRejoin} for a join message and joins as a new member. The others have seen
 *   onLeave for the old incarnation; this node then sees onAccept for itself and onDriverHealth(true).</li>
 * </ul>
 *
 * <p>The queue is garbage collected by the master: every member records in its znode how far it has read, and
 * events below the minimum are deleted.
 */
public final class ZooKeeperClusterDriver implements ClusterDriver {

    private static final Logger LOG = LoggerFactory.getLogger(ZooKeeperClusterDriver.class);
    /** ZooKeeper refuses znodes above about 1 MB (jute.maxbuffer). */
    static final int MAX_EVENT_BYTES = 1_000_000;
    private static final long IDLE_WAIT_MS = 1000;
    /** How long a clean leave waits for its LEAVE event to be queued. */
    private static final long LEAVE_WAIT_MS = 3000;

    private final ZooKeeperSpec spec;
    private final String queuePath;
    private final String memberPath;
    private final SecureRandom random = new SecureRandom();

    /**
     * Tunables, package-private for tests: a member records its queue position after this many events or this
     * long; the master collects garbage after this many events or this long.
     */
    int positionReportEvents = 100;
    long positionReportMs = 5000;
    int gcEvents = 500;
    long gcMs = 30_000;

    private CuratorFramework zk;
    private ClusterListener listener;
    private byte[] firstJoinMessage;
    private volatile SdNode self;
    private Thread eventThread;
    private ExecutorService sender;
    private final Semaphore wake = new Semaphore(0);
    private final Watcher wakeWatcher = e -> wake.release();
    private final Watcher memberWatcher = e -> {
        memberListDirty = true;
        wake.release();
    };
    private volatile boolean closed;
    private volatile boolean memberListDirty = true;
    private volatile boolean leaving;
    private final CompletableFuture<Void> finished = new CompletableFuture<>();

    /** The current incarnation (0 while not joined): events are sent in its name, stale ones are dropped. */
    private volatile long incarnation;
    private volatile long sessionId;
    private volatile String myZnode;
    private final AtomicLong counter = new AtomicLong();
    /** The head block offered to the daemon by onBlock; what unblock releases. */
    private volatile long offeredBlockId = -1;

    // ---- state owned by the event thread ----
    private long joinSeq = -1;
    private long pos;
    private long reportedPos;
    private long reportedAt;
    /** Queue events below this sequence number were garbage collected (by this node as master). */
    private long gcBelow;
    private long gcTime = System.nanoTime();
    private volatile boolean accepted;
    private boolean stopped;
    private boolean reportedHealthy = true;
    /**
     * System.nanoTime() just before the last request of the current session that the server answered (the queue's
     * listing, at least every second): the server heard from the session after this, so it cannot expire the session
     * before this plus the session timeout. 0: none in this session yet.
     */
    private volatile long lastAnsweredSentAt;
    private String dropReason;
    private byte[] rejoinMessage;
    /** The member znode of the incarnation this node was dropped as, to delete before joining again. */
    private String staleZnode;
    private final List<Member> members = new ArrayList<>();
    private final BlockFifo blocks = new BlockFifo();
    private final Set<Long> leavesSent = new HashSet<>();
    private Map<Long, String> liveZnodes = Map.of();

    public ZooKeeperClusterDriver(ZooKeeperSpec spec) {
        this.spec = spec;
        this.queuePath = spec.basePath() + "/queue";
        this.memberPath = spec.basePath() + "/member";
    }

    /**
     * For {@code sheep -c zookeeper:OPTIONS}.
     *
     * @param afterColon {@code HOST:PORT[,HOST:PORT...][/cluster_id][,timeout=MS]}
     * @throws ClusterDriverException with a one-line reason if the options are malformed
     */
    public static ZooKeeperClusterDriver fromSpec(String afterColon) throws ClusterDriverException {
        return new ZooKeeperClusterDriver(ZooKeeperSpec.parse(afterColon));
    }

    @Override public String name() { return "zookeeper"; }

    public ZooKeeperSpec spec() { return spec; }

    @Override
    public synchronized void join(SdNode self, byte[] joinMessage, ClusterListener listener)
            throws ClusterDriverException {
        if (this.listener != null) throw new IllegalStateException("join called twice");
        if (closed) throw new ClusterDriverException("the zookeeper driver is closed");
        this.self = self;
        this.listener = listener;
        this.firstJoinMessage = joinMessage.clone();
        int timeout = spec.timeoutMs();
        zk = CuratorFrameworkFactory.builder()
                .connectString(spec.connectString())
                .sessionTimeoutMs(timeout)
                // Operations fail fast while disconnected; the driver retries them itself (a blind retry of a
                // sequential create could queue an event twice) and keeps reporting health meanwhile.
                .connectionTimeoutMs(Math.min(timeout, 1000))
                .retryPolicy(new RetryNTimes(0, 0))
                .ensembleTracker(false)
                .build();
        zk.getConnectionStateListenable().addListener((client, state) -> connectionChanged(state));
        try {
            zk.start();
            if (!zk.blockUntilConnected(timeout, TimeUnit.MILLISECONDS)) {
                throw new ClusterDriverException("cannot connect to ZooKeeper at " + spec.connectString()
                        + " within " + timeout + " ms");
            }
            ensurePath(queuePath);
            ensurePath(memberPath);
            startJoin(joinMessage, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeout));
        } catch (ClusterDriverException e) {
            zk.close();
            throw e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            zk.close();
            throw new ClusterDriverException("interrupted while joining through ZooKeeper");
        } catch (Exception e) {
            zk.close();
            throw new ClusterDriverException("ZooKeeper at " + spec.connectString() + ": " + oneLine(e));
        }
        sender = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "zk-sender");
            t.setDaemon(true);
            return t;
        });
        eventThread = new Thread(this::eventLoop, "zk-events");
        eventThread.setDaemon(true);
        eventThread.start();
    }

    @Override
    public void leave() {
        if (incarnation == 0 || closed) return;
        leaving = true;
        try {
            // not the whole session timeout: with ZooKeeper gone a stopping sheep would ignore SIGTERM that long; if the
            // LEAVE cannot be queued, the others see the leave when the session expires
            send(Kind.LEAVE, incarnation, null).get(Math.min(spec.timeoutMs(), LEAVE_WAIT_MS), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            LOG.warn("could not queue the leave event: {}", oneLine(e));
        }
    }

    @Override
    public boolean notify(byte[] msg) {
        return send(Kind.NOTIFY, 0, msg) != NOT_SENT;
    }

    @Override
    public boolean block() {
        return send(Kind.BLOCK, counter.incrementAndGet(), null) != NOT_SENT;
    }

    @Override
    public void unblock(byte[] msg) {
        long id = offeredBlockId;
        if (id < 0) {
            LOG.warn("unblock without a held block (lost when this node re-joined): message dropped");
            return;
        }
        offeredBlockId = -1;
        send(Kind.UNBLOCK, id, msg);
    }

    @Override
    public String describe() {
        String fifo;
        try {
            fifo = blocks.snapshot().toString();
        } catch (RuntimeException e) { // read off the event thread while it changes
            fifo = "(changing)";
        }
        return String.format("zookeeper: incarnation %016x, accepted %b, event %d, %d members, blocks %s, offered block %d",
                incarnation, accepted, pos, members.size(), fifo, offeredBlockId);
    }

    @Override
    public void updateNode(SdNode node) {
        self = node;
        send(Kind.UPDATE_NODE, 0, null);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        wake.release();
        if (sender != null) sender.shutdownNow();
        Thread t = eventThread;
        if (t != null && t != Thread.currentThread()) {
            t.interrupt();
            try {
                t.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (zk != null) zk.close();
        finished.complete(null);
    }

    /** Completes once the driver stopped delivering events (clean leave done, join refused, or closed). */
    CompletableFuture<Void> finished() { return finished; }

    /**
     * Test hook: the process "dies" without a goodbye. The threads stop, and the session is abandoned without being
     * closed, so ZooKeeper removes this node's znodes only when the session times out, as after kill -9.
     */
    void simulateCrash() throws Exception {
        closed = true;
        wake.release();
        if (sender != null) sender.shutdownNow();
        if (eventThread != null) {
            eventThread.interrupt();
            eventThread.join(5000);
        }
        ZooKeeper raw = zk.getZookeeperClient().getZooKeeper();
        // Curator must not hear of the injected expiry: it would close the handle, and a close that wins the race
        // with the injection still reaches the server as a closeSession, which ends the session (and so the
        // membership) at once instead of at its timeout, as a crash would
        raw.register(event -> { });
        raw.getTestable().injectSessionExpiration();
        zk.close();
    }

    /** Test hook: the current ZooKeeper client handle (to expire its session from the server side). */
    ZooKeeper zooKeeperForTest() throws Exception {
        return zk.getZookeeperClient().getZooKeeper();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Sending

    /** What {@link #send} returns when this node is not a member: nothing was queued. */
    private static final CompletableFuture<String> NOT_SENT = CompletableFuture.completedFuture(null);

    private CompletableFuture<String> send(Kind kind, long arg, byte[] msg) {
        long key = incarnation;
        // Every node ignores a message or block from a sender that is not a member where the event falls in the
        // order, and one sent before our ACCEPT was read may fall before it: until then nothing is sent (the caller
        // hears so and waits, rather than waiting for an answer that cannot come).
        boolean needsMembership = kind == Kind.NOTIFY || kind == Kind.BLOCK || kind == Kind.UNBLOCK;
        if (key == 0 || closed || (needsMembership && !accepted)) {
            LOG.debug("not a member: {} dropped", kind);
            return NOT_SENT;
        }
        byte[] data = ClusterEvent.simple(kind, new Member(key, self), arg, msg).encode();
        if (data.length > MAX_EVENT_BYTES) {
            throw new IllegalArgumentException("cluster message of " + (msg == null ? 0 : msg.length)
                    + " bytes is too large for ZooKeeper");
        }
        String prefix = String.format("%016x-%d-", key, counter.incrementAndGet());
        try {
            return CompletableFuture.supplyAsync(() -> createEvent(prefix, data, key, Long.MAX_VALUE), sender);
        } catch (RejectedExecutionException e) {
            return NOT_SENT;
        }
    }

    /**
     * Creates a queue event, retrying through connection problems for as long as {@code key} is the current
     * incarnation, until {@code deadline} (System.nanoTime). Returns the znode name, or null if the event was given
     * up.
     */
    private String createEvent(String prefix, byte[] data, long key, long deadline) {
        boolean ambiguous = false;
        while (!closed && incarnation == key && (deadline == Long.MAX_VALUE || System.nanoTime() - deadline < 0)) {
            try {
                if (ambiguous) {
                    for (String child : zk.getChildren().forPath(queuePath)) {
                        if (child.startsWith(prefix)) return child;
                    }
                }
                String path = zk.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL)
                        .forPath(queuePath + "/" + prefix, data);
                return path.substring(path.lastIndexOf('/') + 1);
            } catch (KeeperException.ConnectionLossException | KeeperException.OperationTimeoutException e) {
                ambiguous = true; // the create may have happened: look for it before trying again
            } catch (KeeperException.SessionExpiredException | KeeperException.SessionMovedException e) {
                ambiguous = true;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            } catch (Exception e) {
                if (closed) return null;
                LOG.warn("cannot queue a cluster event: {}", oneLine(e));
                ambiguous = true;
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Joining

    /**
     * Registers a new incarnation: member znode, then its JOIN event. Runs in join() (giving up after the timeout)
     * and on the event thread (trying for as long as the session lives).
     */
    private void startJoin(byte[] message, long deadline) throws Exception {
        long key;
        do {
            key = random.nextLong();
        } while (key == 0);
        long session = zk.getZookeeperClient().getZooKeeper().getSessionId();
        SdNode node = self;
        String name = MemberZnode.name(node, key);
        try {
            zk.create().withMode(CreateMode.EPHEMERAL)
                    .forPath(memberPath + "/" + name, new MemberZnode(key, -1, -1, node).encode());
        } catch (KeeperException.NodeExistsException e) {
            // a retried create that had succeeded: the name holds our fresh key, so it is ours
        }
        sessionId = session;
        myZnode = name;
        incarnation = key;
        byte[] data = ClusterEvent.simple(Kind.JOIN, new Member(key, node), 0, message).encode();
        if (data.length > MAX_EVENT_BYTES) {
            throw new ClusterDriverException("join message of " + message.length + " bytes is too large");
        }
        String event = createEvent(String.format("%016x-%d-", key, counter.incrementAndGet()), data, key, deadline);
        if (event == null) throw new ClusterDriverException("could not queue the join event");
        long seq = seqOf(event);
        zk.setData().forPath(memberPath + "/" + name, new MemberZnode(key, seq, seq, node).encode());
        joinSeq = seq;
        pos = seq;
        reportedPos = seq;
        reportedAt = System.nanoTime();
        gcBelow = seq;
        accepted = false;
        LOG.info("joining through ZooKeeper {} as {} (event {})", spec, name, seq);
    }

    // ---------------------------------------------------------------------------------------------------------
    // The event thread

    private void connectionChanged(ConnectionState state) {
        // Only a wake-up: the session id tells whether the session is gone. (A LOST notification arrives late, when
        // the driver may already have joined again with the new session.)
        wake.release();
    }

    private void eventLoop() {
        while (!closed && !stopped) {
            boolean progress = false;
            try {
                checkConnection();
                if (dropReason != null) {
                    rejoin();
                    continue;
                }
                long sentAt = System.nanoTime();
                progress = processQueue();
                if (accepted && dropReason == null && currentSession() == sessionId) lastAnsweredSentAt = sentAt;
                if (accepted && !stopped && dropReason == null) {
                    reconcileMembers();
                    queueEvictions();
                    offerBlock();
                    reportPosition(false);
                    collectGarbage();
                }
            } catch (InterruptedException e) {
                if (closed) break;
            } catch (KeeperException.ConnectionLossException | KeeperException.SessionExpiredException
                     | KeeperException.OperationTimeoutException e) {
                LOG.debug("ZooKeeper unavailable: {}", e.getMessage());
            } catch (Exception e) {
                if (closed) break;
                LOG.warn("zookeeper driver: {}", oneLine(e), e);
            }
            if (!progress) idle();
        }
        if (!closed) finished.complete(null);
    }

    private void idle() {
        long waitMs = IDLE_WAIT_MS;
        long retry = accepted ? blocks.retryDelay(incarnation, System.nanoTime()) : -1;
        if (retry >= 0) waitMs = Math.max(1, Math.min(waitMs, TimeUnit.NANOSECONDS.toMillis(retry) + 1));
        try {
            wake.tryAcquire(waitMs, TimeUnit.MILLISECONDS);
            wake.drainPermits();
        } catch (InterruptedException e) {
            // closed: the loop condition ends the thread
        }
    }

    private long currentSession() {
        try {
            return zk.getZookeeperClient().getZooKeeper().getSessionId();
        } catch (Exception e) {
            return 0;
        }
    }

    /** Health reports, and detection of an expired session. */
    private void checkConnection() {
        boolean connected = zk.getZookeeperClient().isConnected();
        long sid = currentSession();
        if (dropReason == null && incarnation != 0 && connected && sid != 0 && sid != sessionId) {
            dropReason = "ZooKeeper session expired";
        }
        if (!connected && reportedHealthy) {
            health(false, "lost the connection to ZooKeeper at " + spec.connectString()
                    + "; waiting for it (session timeout " + spec.timeoutMs() + " ms)", memberLeaseUntil());
        } else if (connected && !reportedHealthy && accepted && dropReason == null && sid == sessionId) {
            health(true, "connection to ZooKeeper restored");
        }
    }

    private void health(boolean healthy, String reason) {
        health(healthy, reason, 0);
    }

    /** @param memberUntilNanos the lease given with an unhealthy report (see {@link #memberLeaseUntil}); 0: none */
    private void health(boolean healthy, String reason, long memberUntilNanos) {
        reportedHealthy = healthy;
        if (healthy) LOG.info("cluster driver healthy: {}", reason);
        else LOG.warn("cluster driver unhealthy: {}", reason);
        deliver("onDriverHealth", () -> listener.onDriverHealth(healthy, reason, memberUntilNanos));
    }

    /**
     * How much of the session may be used after the last request the server answered. The server expires a session
     * no sooner than the timeout after the last request it received from it; the rest is a margin for clocks that run
     * at slightly different rates and for an ensemble whose leader learns of a follower's sessions only at its pings
     * (every half tick: a tick is 2 s by default).
     */
    static long leaseMs(long sessionTimeoutMs) {
        return Math.max(0, sessionTimeoutMs * 3 / 4 - 2000);
    }

    /**
     * Until when this node is certainly still a member for every other node although the connection is lost: its
     * session cannot have expired before then, and only an expiry (or an eviction by the others, which hear no
     * heartbeat from a node they evict: it then hears from no majority and holds its I/O itself) removes it. 0 if no
     * request was answered in this session.
     */
    private long memberLeaseUntil() {
        long sent = lastAnsweredSentAt;
        if (sent == 0 || !accepted || dropReason != null) return 0;
        long timeoutMs = spec.timeoutMs();
        try {
            int negotiated = zk.getZookeeperClient().getZooKeeper().getSessionTimeout();
            if (negotiated > 0) timeoutMs = Math.min(timeoutMs, negotiated);
        } catch (Exception e) {
            return 0;
        }
        long lease = leaseMs(timeoutMs);
        return lease == 0 ? 0 : sent + TimeUnit.MILLISECONDS.toNanos(lease) | 1;
    }

    /** Runs a callback; an exception of the daemon is logged and the event counts as delivered. */
    private static void deliver(String what, Runnable callback) {
        try {
            callback.run();
        } catch (RuntimeException e) {
            LOG.error("{} failed", what, e);
        }
    }

    /** Leaves the old incarnation behind and joins again (the daemon gives the join message). */
    private void rejoin() throws Exception {
        String reason = dropReason;
        lastAnsweredSentAt = 0;
        // also when already unhealthy: this report ends the lease of the lost connection's (the session is gone)
        if (reportedHealthy || incarnation != 0) health(false, reason + "; re-joining the cluster");
        if (incarnation != 0) {
            LOG.warn("dropped from the cluster: {}", reason);
            String old = myZnode;
            incarnation = 0;
            offeredBlockId = -1;
            accepted = false;
            members.clear();
            blocks.clear();
            leavesSent.clear();
            // The old member znode goes now, whatever became of its session: after an expiry seen on reconnecting,
            // the server may keep the old session (and the znode) until its own timer runs out, and until it is gone
            // every re-joining node waits for the old incarnation as if it were alive. (Deleting it from the new
            // session is allowed; a NoNode means it went with its session.)
            staleZnode = old;
            rejoinMessage = ClusterListener.rejoinMessage(listener, reason, firstJoinMessage);
        }
        if (!zk.getZookeeperClient().isConnected()) {
            idle();
            return;
        }
        if (staleZnode != null) {
            try {
                zk.delete().forPath(memberPath + "/" + staleZnode);
            } catch (KeeperException.NoNodeException ignored) {
                // already gone with the session
            }
            staleZnode = null;
        }
        startJoin(rejoinMessage, Long.MAX_VALUE);
        dropReason = null;
        memberListDirty = true;
    }

    /** Processes the events available now; returns whether any was processed. */
    private boolean processQueue() throws Exception {
        List<String> children = zk.getChildren().usingWatcher(wakeWatcher).forPath(queuePath);
        TreeMap<Long, String> bySeq = new TreeMap<>();
        for (String c : children) {
            long seq = seqOf(c);
            if (seq >= pos) bySeq.put(seq, c);
        }
        boolean progress = false;
        for (Map.Entry<Long, String> e : bySeq.entrySet()) {
            if (!processEvent(e.getKey(), queuePath + "/" + e.getValue())) break;
            pos = e.getKey() + 1;
            progress = true;
            if (closed || stopped || dropReason != null) break;
            if (accepted) offerBlock();
        }
        return progress;
    }

    /** Applies one event; false if it is a JOIN that is not answered yet. */
    private boolean processEvent(long seq, String path) throws Exception {
        if (LOG.isDebugEnabled()) LOG.debug("event {}", path);
        Stat stat = new Stat();
        byte[] data;
        try {
            data = zk.getData().storingStatIn(stat).forPath(path);
        } catch (KeeperException.NoNodeException e) {
            LOG.warn("queue event {} vanished before it was read", path);
            return true;
        }
        ClusterEvent ev;
        try {
            ev = ClusterEvent.decode(data);
        } catch (IllegalArgumentException e) {
            LOG.warn("skipping unreadable queue event {}: {}", path, e.getMessage());
            return true;
        }
        if (LOG.isDebugEnabled()) LOG.debug("event {}: {} from {} arg {}", seq, ev.kind(), ev.sender(), ev.arg());
        switch (ev.kind()) {
            case JOIN -> {
                return answerJoin(seq, path, stat.getVersion(), ev);
            }
            case ACCEPT -> applyAccept(ev);
            case REFUSE -> {
                if (!accepted && ev.senderKey() == incarnation) refused();
            }
            case LEAVE -> applyLeave(ev);
            case NOTIFY -> {
                Member m = member(ev.senderKey());
                if (m != null) deliver("onNotify", () -> listener.onNotify(m.node(), ev.message()));
            }
            case BLOCK -> {
                if (member(ev.senderKey()) != null) blocks.add(new BlockFifo.Block(ev.senderKey(), ev.arg()));
            }
            case UNBLOCK -> {
                Member m = member(ev.senderKey());
                if (m != null) {
                    blocks.remove(ev.senderKey(), ev.arg());
                    deliver("onNotify", () -> listener.onNotify(m.node(), ev.message()));
                }
            }
            case TICK -> { }
            case UPDATE_NODE -> {
                int i = indexOf(ev.senderKey());
                if (i >= 0) {
                    members.set(i, new Member(ev.senderKey(), ev.sender()));
                    deliver("onUpdateNode", () -> listener.onUpdateNode(ev.sender()));
                }
            }
        }
        return true;
    }

    /**
     * A JOIN at {@code seq}: answer it if this node is the one to, else wait for the answer. Returns true when the
     * event was answered and applied.
     */
    private boolean answerJoin(long seq, String path, int version, ClusterEvent ev) throws Exception {
        Member joiner = ev.senderMember();
        memberListDirty = true; // a fresh listing: the joiner's znode may be newer than our watch notification
        Map<Long, String> live = liveMembers();
        List<Member> base = null;
        if (accepted) {
            // The oldest live member is master; a member with the joiner's address is its dead predecessor.
            for (Member m : members) {
                if (live.containsKey(m.key()) && !m.node().nid().equals(joiner.node().nid())) {
                    if (m.key() == incarnation) base = members;
                    break;
                }
            }
        } else if (joiner.key() == incarnation && noOlderProcess(seq, live)) {
            base = List.of();
        }
        if (base == null) {
            // not ours to answer: wait for the answer (or for the master to die)
            zk.checkExists().usingWatcher(wakeWatcher).forPath(path);
            return false;
        }
        ClusterEvent answer;
        if (!live.containsKey(joiner.key())) {
            answer = new ClusterEvent(Kind.REFUSE, joiner.key(), joiner.node(), 0, null, null, null, null);
        } else {
            List<Member> current = new ArrayList<>();
            for (Member m : base) if (!m.node().nid().equals(joiner.node().nid())) current.add(m);
            ClusterListener.JoinDecision d;
            try {
                d = listener.onJoinRequest(joiner.node(), nodes(current), ev.message());
            } catch (RuntimeException e) {
                LOG.error("onJoinRequest failed: refusing {}", joiner.node(), e);
                d = null;
            }
            if (d != null && d.accept()) {
                current.add(joiner);
                byte[] msg = d.message() == null ? ev.message() : d.message();
                answer = new ClusterEvent(Kind.ACCEPT, joiner.key(), joiner.node(), 0, msg, current,
                        blocks.snapshot(), null);
            } else {
                answer = new ClusterEvent(Kind.REFUSE, joiner.key(), joiner.node(), 0, null, null, null, null);
            }
        }
        try {
            zk.setData().withVersion(version).forPath(path, answer.encode());
        } catch (KeeperException.BadVersionException | KeeperException.NoNodeException e) {
            LOG.debug("join {} was answered by another node", path);
        }
        return processEvent(seq, path);
    }

    /** For a joiner: true when no other live process queued its JOIN before {@code seq} (the cluster is empty). */
    private boolean noOlderProcess(long seq, Map<Long, String> live) throws Exception {
        for (Map.Entry<Long, String> e : live.entrySet()) {
            if (e.getKey() == incarnation) continue;
            if (e.getValue().startsWith(self.nid().toAddrPort() + "-")) continue; // our own dead predecessor
            MemberZnode z;
            try {
                z = MemberZnode.decode(zk.getData().usingWatcher(wakeWatcher).forPath(memberPath + "/" + e.getValue()));
            } catch (KeeperException.NoNodeException gone) {
                continue;
            } catch (IllegalArgumentException bad) {
                continue;
            }
            if (z.joinSeq() < 0 || z.joinSeq() < seq) return false; // older, or about to tell us its position
        }
        return true;
    }

    private void applyAccept(ClusterEvent ev) {
        Member joiner = ev.senderMember();
        if (!accepted) {
            if (joiner.key() != incarnation) return; // cannot happen: a joiner reads from its own JOIN
            members.clear();
            members.addAll(ev.members());
            acceptBlocks(ev);
            accepted = true;
            memberListDirty = true;
            deliver("onAccept", () -> listener.onAccept(joiner.node(), nodes(members), ev.message()));
            if (!reportedHealthy && zk.getZookeeperClient().isConnected()) health(true, "joined the cluster");
            return;
        }
        Set<Long> keep = new HashSet<>();
        for (Member m : ev.members()) keep.add(m.key());
        if (!keep.contains(incarnation)) {
            dropReason = "this node is not in the member list accepted with " + joiner.node();
            return;
        }
        // Members left out by the master (a restarted sheep's predecessor): they leave first.
        for (Member m : List.copyOf(members)) {
            if (!keep.contains(m.key())) {
                members.remove(m);
                List<SdNode> remaining = nodes(members);
                deliver("onLeave", () -> listener.onLeave(m.node(), remaining));
            }
        }
        members.clear();
        members.addAll(ev.members());
        acceptBlocks(ev);
        List<SdNode> all = nodes(members);
        deliver("onAccept", () -> listener.onAccept(joiner.node(), all, ev.message()));
    }

    /**
     * The block FIFO as the ACCEPT hands it over, less the blocks of owners that are not members (the master's queue
     * still holds those of the members it left out, such as the joiner's dead predecessor): a block of a gone
     * incarnation at the head would never be released, and every cluster operation after it would wait for ever.
     */
    private void acceptBlocks(ClusterEvent ev) {
        Set<Long> keys = new HashSet<>();
        for (Member m : members) keys.add(m.key());
        blocks.replaceAll(ev.blocks());
        blocks.retainOwners(keys);
    }

    private void refused() throws Exception {
        LOG.error("the cluster refused to let this node join");
        reportedHealthy = false;
        // onJoinRefused (not only onDriverHealth): the daemon exits with the reason instead of idling unhealthy
        deliver("onJoinRefused", () -> listener.onJoinRefused("the cluster refused to let this node join"));
        deleteMyZnode();
        incarnation = 0;
        stopped = true;
    }

    private void applyLeave(ClusterEvent ev) throws Exception {
        long target = ev.arg();
        int i = indexOf(target);
        if (i < 0) return;
        Member gone = members.remove(i);
        blocks.removeOwner(target);
        leavesSent.remove(target);
        if (target == incarnation) {
            if (leaving) {
                LOG.info("left the cluster");
                deleteMyZnode();
                incarnation = 0;
                stopped = true;
            } else {
                dropReason = currentSession() != sessionId ? "ZooKeeper session expired"
                        : "the cluster removed this node (reported by " + ev.sender() + ")";
            }
            return;
        }
        List<SdNode> remaining = nodes(members);
        deliver("onLeave", () -> listener.onLeave(gone.node(), remaining));
    }

    private void deleteMyZnode() throws Exception {
        try {
            zk.delete().forPath(memberPath + "/" + myZnode);
        } catch (KeeperException.NoNodeException ignored) {
            // gone already
        }
    }

    /** Asks the daemon to take the block at the head if it is ours (at this point of the order). */
    private void offerBlock() {
        if (!blocks.shouldOffer(incarnation, System.nanoTime())) return;
        blocks.offerTo(listener, id -> offeredBlockId = id);
    }

    /** Nodes the daemon found unresponsive ({@link #evict}), for the event thread to queue LEAVEs for. */
    private final ConcurrentLinkedQueue<SdNode> evictions = new ConcurrentLinkedQueue<>();

    /**
     * Queues a LEAVE for {@code node}'s member key, as for a member whose znode vanished. Its session may still be
     * alive (a stopped process): when it runs again it reads the LEAVE for itself and re-joins.
     */
    @Override
    public void evict(SdNode node) {
        evictions.add(node);
        wake.release();
    }

    private void queueEvictions() throws Exception {
        for (SdNode n; (n = evictions.poll()) != null; ) {
            for (Member m : members) {
                if (!m.node().nid().equals(n.nid()) || m.key() == incarnation || !leavesSent.add(m.key())) continue;
                LOG.warn("evicting {}: it stopped answering", m.node().nid());
                send(Kind.LEAVE, m.key(), null);
            }
        }
    }

    /** Queues a LEAVE for every member whose znode is gone. */
    private void reconcileMembers() throws Exception {
        if (!memberListDirty) return;
        Map<Long, String> live = liveMembers();
        for (Member m : members) {
            if (!live.containsKey(m.key()) && leavesSent.add(m.key())) {
                LOG.info("member {} is gone: queueing its leave", m.node());
                send(Kind.LEAVE, m.key(), null);
            }
        }
    }

    /** Keys and znode names of the live member znodes (watching for changes). */
    private Map<Long, String> liveMembers() throws Exception {
        if (!memberListDirty) return liveZnodes;
        memberListDirty = false;
        Map<Long, String> live = new HashMap<>();
        try {
            for (String c : zk.getChildren().usingWatcher(memberWatcher).forPath(memberPath)) {
                long k = MemberZnode.keyOf(c);
                if (k != 0) live.put(k, c);
            }
        } catch (Exception e) {
            memberListDirty = true;
            throw e;
        }
        liveZnodes = live;
        return live;
    }

    private void reportPosition(boolean force) throws Exception {
        long now = System.nanoTime();
        if (pos == reportedPos) return;
        if (!force && pos - reportedPos < positionReportEvents
                && now - reportedAt < TimeUnit.MILLISECONDS.toNanos(positionReportMs)) {
            return;
        }
        zk.setData().forPath(memberPath + "/" + myZnode, new MemberZnode(incarnation, joinSeq, pos, self).encode());
        reportedPos = pos;
        reportedAt = now;
    }

    /** The master deletes the events every member has read. */
    private void collectGarbage() throws Exception {
        if (members.isEmpty() || members.getFirst().key() != incarnation || gcBelow >= pos) return;
        long now = System.nanoTime();
        if (pos - gcBelow < gcEvents && now - gcTime < TimeUnit.MILLISECONDS.toNanos(gcMs)) return;
        gcTime = now;
        reportPosition(true);
        long min = Long.MAX_VALUE;
        for (String c : zk.getChildren().forPath(memberPath)) {
            try {
                MemberZnode z = MemberZnode.decode(zk.getData().forPath(memberPath + "/" + c));
                if (z.consumed() < 0) return; // a joiner has not told its position yet
                min = Math.min(min, z.consumed());
            } catch (KeeperException.NoNodeException | IllegalArgumentException e) {
                // gone, or not ours
            }
        }
        int deleted = 0;
        gcBelow = min;
        for (String c : zk.getChildren().forPath(queuePath)) {
            if (seqOf(c) < min) {
                try {
                    zk.delete().forPath(queuePath + "/" + c);
                    deleted++;
                } catch (KeeperException.NoNodeException ignored) {
                    // deleted by a previous master
                }
            }
        }
        LOG.debug("queue garbage collection: {} events below {} deleted", deleted, min);
    }

    // ---------------------------------------------------------------------------------------------------------

    private Member member(long key) {
        int i = indexOf(key);
        return i < 0 ? null : members.get(i);
    }

    private int indexOf(long key) {
        for (int i = 0; i < members.size(); i++) if (members.get(i).key() == key) return i;
        return -1;
    }

    private static List<SdNode> nodes(List<Member> ms) {
        List<SdNode> out = new ArrayList<>(ms.size());
        for (Member m : ms) out.add(m.node());
        return List.copyOf(out);
    }

    static long seqOf(String name) {
        return Long.parseLong(name.substring(name.length() - 10));
    }

    private void ensurePath(String path) throws Exception {
        try {
            zk.create().creatingParentsIfNeeded().withMode(CreateMode.PERSISTENT).forPath(path);
        } catch (KeeperException.NodeExistsException ignored) {
            // created by another node
        }
    }

    static String oneLine(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && (t.getMessage() == null || t instanceof ExecutionException)) {
            t = t.getCause();
        }
        String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
        return m.replace('\n', ' ');
    }
}
