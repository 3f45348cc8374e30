package io.sheepdog.sheep.cluster.local;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdNode;
import io.sheepdog.sheep.cluster.ClusterDriver;
import io.sheepdog.sheep.cluster.ClusterDriverException;
import io.sheepdog.sheep.cluster.ClusterListener.JoinDecision;
import io.sheepdog.sheep.cluster.ClusterListener;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code local} cluster driver: every sheep process on one host that uses the same rendezvous directory
 * (default {@value #DEFAULT_DIRECTORY_NAME}) forms one cluster.
 *
 * <p>How it works (docs/daemon.md §4.1 gives the guarantees; the mechanism is our own):
 * <ul>
 *   <li><b>Total order.</b> {@code events.log} in the directory is an append-only log; writers append under an
 *   exclusive file lock, so the log order is the cluster order. Each member tails the log from its first record
 *   and runs the same deterministic state machine (members, block queue) over it, so every member computes the
 *   same member list at the same position. Only events from the member's own acceptance on are delivered.</li>
 *   <li><b>Liveness.</b> Each member (an {@link Incarnation}: pid plus random id, so a restarted sheep is a new
 *   member) locks its file under {@code members/} for its whole life. The kernel drops that lock when the process
 *   dies, even by kill -9. Every member probes the others every {@value #LIVENESS_INTERVAL_MS} ms and appends
 *   one LEAVE for a dead one (a LEAVE already in the log is not repeated; duplicates are ignored anyway).</li>
 *   <li><b>Join.</b> The joiner appends JOIN. The handler is the oldest member not reported gone, or the joiner
 *   itself when no such member exists; it runs {@code onJoinRequest} and appends ACCEPT (or REFUSE) naming the
 *   JOIN. Every member stops at the JOIN until the answer appears and applies it at the JOIN's position, as if
 *   the JOIN had been rewritten in place. If the handler dies first, its LEAVE makes the next member the handler.
 *   Members found gone before the answer are listed in it and removed just before it, on every node, so the
 *   handler decides with the member list the others will see. A joiner that reuses the node id of a member
 *   waits until that member's old incarnation is reported dead (or is refused after
 *   {@value #SAME_NODE_GRACE_MS} ms if it stays alive).</li>
 *   <li><b>Block.</b> BLOCK records form a FIFO in log order; its head is granted to its owner, whose
 *   {@code onBlock} runs at the position where it became the head (retried every {@value #BLOCK_RETRY_MS} ms
 *   after a false). UNBLOCK pops the owner's head and is delivered as a notify; a LEAVE drops the gone member's
 *   blocks. Other events keep flowing meanwhile.</li>
 *   <li><b>Fresh start.</b> A joiner that finds every incarnation recorded in the log dead starts a new log, so
 *   it does not grow across cluster restarts.</li>
 * </ul>
 *
 * <p>A joiner whose join is refused, or a member that others reported dead, gets
 * {@link ClusterListener#onDriverHealth onDriverHealth(false, reason)} and no further callbacks. After
 * {@link #leave} the node is no longer a member but keeps receiving notifications (onLeave for itself included).
 */
public final class LocalClusterDriver implements ClusterDriver {
    private static final Logger log = LoggerFactory.getLogger(LocalClusterDriver.class);

    public static final String NAME = "local";
    static final String DEFAULT_DIRECTORY_NAME = "/tmp/sheepdog-local";
    public static final Path DEFAULT_DIRECTORY = Path.of(DEFAULT_DIRECTORY_NAME);
    /** Largest join message (an encoded cluster info). */
    public static final int MAX_JOIN_MESSAGE = LogRecord.MAX_JOIN_PAYLOAD;
    /** Largest notify / unblock message ({@code SD_MAX_EVENT_BUF_SIZE}). */
    public static final int MAX_MESSAGE = LogRecord.MAX_PAYLOAD;

    static final long LIVENESS_INTERVAL_MS = 100;
    static final long BLOCK_RETRY_MS = 10;
    static final long SAME_NODE_GRACE_MS = 3000;
    /** Poll period when no inotify wake-up arrives; bounds the latency of a missed or unsupported watch. */
    private static final long POLL_MS = 20;
    /** Records read ahead of delivery, unless a pending join needs to look further for its answer. */
    private static final int READ_AHEAD = 4096;

    private record Member(Incarnation inc, SdNode node) {}

    private record Block(long seq, Incarnation owner) {}

    private final Path directory;
    private final long livenessIntervalMs;
    private final long sameNodeGraceMs;

    private final Object lifecycle = new Object();
    private boolean started;
    private boolean closed;
    private volatile boolean running;
    /**
     * Set under the directory lock when the member file is released: from then on others may report this
     * incarnation dead, so it must not append anything (a late answer could race with the next handler's).
     */
    private boolean released;

    // Fixed by join().
    private Path dir;
    /** This process's current incarnation: a new one after each re-join (volatile: the liveness thread reads it). */
    private volatile Incarnation me;
    private byte[] firstJoinMessage;
    /** Set while a re-join is under way: its acceptance makes the driver healthy again. */
    private boolean rejoining;
    /** The members' incarnations by node, published by the delivery thread for {@link #evict}. */
    private volatile Map<NodeId, Incarnation> incarnationOf = Map.of();
    private volatile SdNode self;
    private ClusterListener listener;
    private MemberFiles.Held memberFile;
    private DirectoryLock dirLock;
    private LogWriter writer;
    private LogReader reader;
    private LogWatcher watcher;
    private Thread deliveryThread;
    private Thread livenessThread;
    private final Object livenessMonitor = new Object();

    /** Serialises leave() with this node answering a join, so it never answers one after announcing its leave. */
    private final ReentrantLock handlerLock = new ReentrantLock();
    private volatile boolean left;
    /** Incarnations this driver already reported gone (the log may hold more). */
    private final Set<Long> reported = ConcurrentHashMap.newKeySet();
    /** What the liveness thread probes: members, pending joiners and block owners as of the delivery position. */
    private volatile List<Incarnation> watched = List.of();

    // State of the delivery thread only.
    private final ArrayDeque<LogRecord> window = new ArrayDeque<>();
    /** ACCEPT/REFUSE records already applied at their JOIN's position, to skip when reached. */
    private final Set<Long> consumed = new HashSet<>();
    /** JOINs this node answered; their answer has not been read back yet. */
    private final Set<Long> answered = new HashSet<>();
    /** JOIN seq to the time this node first saw its joiner's node id still held by a live member. */
    private final Map<Long, Long> sameNodeSince = new HashMap<>();
    private final LinkedHashMap<Long, Member> members = new LinkedHashMap<>();
    private final ArrayDeque<Block> blocks = new ArrayDeque<>();
    private boolean delivering;
    private boolean stalledOnJoin;
    private long grantedBlock = -1;
    private long retryBlock = -1;
    private long retryAtNanos;

    /** A driver using {@code directory} as the rendezvous directory (created if needed). */
    public LocalClusterDriver(Path directory) {
        this(directory, LIVENESS_INTERVAL_MS, SAME_NODE_GRACE_MS);
    }

    /** Tests slow the liveness probe down (to act before a death is noticed) or shorten the grace period. */
    LocalClusterDriver(Path directory, long livenessIntervalMs, long sameNodeGraceMs) {
        this.directory = Objects.requireNonNull(directory, "directory").toAbsolutePath().normalize();
        this.livenessIntervalMs = livenessIntervalMs;
        this.sameNodeGraceMs = sameNodeGraceMs;
    }

    /** A driver using {@link #DEFAULT_DIRECTORY}. */
    public LocalClusterDriver() {
        this(DEFAULT_DIRECTORY);
    }

    @Override public String name() { return NAME; }

    /** The rendezvous directory. */
    public Path directory() { return directory; }

    // ---------------------------------------------------------------------------------------------------------
    // Driver operations

    @Override
    public void join(SdNode self, byte[] joinMessage, ClusterListener listener) throws ClusterDriverException {
        Objects.requireNonNull(self, "self");
        Objects.requireNonNull(joinMessage, "joinMessage");
        Objects.requireNonNull(listener, "listener");
        if (joinMessage.length > MAX_JOIN_MESSAGE) {
            throw new IllegalArgumentException("join message of " + joinMessage.length + " bytes exceeds "
                    + MAX_JOIN_MESSAGE);
        }
        synchronized (lifecycle) {
            if (started || closed) throw new IllegalStateException("join() can be called once, before close()");
            started = true;
            this.self = self;
            this.listener = listener;
            this.me = Incarnation.create();
            this.firstJoinMessage = joinMessage;
            try {
                Files.createDirectories(directory);
                dir = directory.toRealPath();
                memberFile = MemberFiles.create(dir, me, self.nid().toAddrPort() + " pid " + me.pid());
                dirLock = DirectoryLock.acquire(dir);
                writer = new LogWriter(EventLog.file(dir));
                watcher = new LogWatcher(dir);
                long generation = dirLock.locked(() -> {
                    startFreshIfAllDead();
                    writer.append(LogRecord.join(me, self, joinMessage));
                    return writer.generation();
                });
                reader = new LogReader(EventLog.file(dir), generation);
            } catch (IOException | RuntimeException e) {
                releaseResources();
                closed = true;
                throw new ClusterDriverException("Cannot join the local cluster in " + directory + ": " + describe(e), e);
            }
            running = true;
            String port = Integer.toString(self.nid().port());
            deliveryThread = Thread.ofPlatform().daemon().name("local-cluster-" + port).start(this::deliveryLoop);
            livenessThread = Thread.ofPlatform().daemon().name("local-cluster-liveness-" + port)
                    .start(this::livenessLoop);
            log.info("Joining the local cluster in {} as {} ({})", dir, self.nid(), me);
        }
    }

    /** A one-line reason; file system errors otherwise say little more than the path. */
    static String describe(Exception e) {
        if (e instanceof FileSystemException f) {
            String what = f.getReason() != null ? f.getReason() : switch (f) {
                case AccessDeniedException x -> "permission denied";
                case FileAlreadyExistsException x -> "exists and is not a directory";
                case NotDirectoryException x -> "not a directory";
                case NoSuchFileException x -> "no such file or directory";
                default -> f.getClass().getSimpleName();
            };
            return what + ": " + f.getFile();
        }
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        return m.replace('\n', ' ');
    }

    /** Under the directory lock: a log whose recorded members are all dead belongs to a finished cluster. */
    private void startFreshIfAllDead() throws IOException {
        try {
            writer.catchUp();
        } catch (EventLog.NotAnEventLogException e) {
            if (MemberFiles.anyAliveOtherThan(dir, me)) throw e;
            log.warn("{}; no member is alive, so it is replaced by a new event log", e.getMessage());
            writer.reinitialize();
            MemberFiles.deleteDead(dir);
            return;
        }
        if (writer.lastSeq() == 0) return;
        for (Incarnation inc : writer.joiners()) {
            if (MemberFiles.alive(dir, inc)) return;
        }
        log.info("Every member recorded in {} is dead: starting a new event log", EventLog.file(dir));
        writer.reinitialize();
        MemberFiles.deleteDead(dir);
    }

    @Override
    public void leave() {
        if (!running) return;
        handlerLock.lock();
        try {
            if (left) return;
            left = true;
            append(LogRecord.leave(me, self, me.id()));
        } finally {
            handlerLock.unlock();
        }
    }

    /** Appends a LEAVE for {@code node}'s incarnation, as the liveness probe does for a dead one. */
    @Override
    public void evict(SdNode node) {
        if (!running) return;
        Incarnation inc = incarnationOf.get(node.nid());
        if (inc == null || inc.id() == me.id()) return;
        log.warn("Evicting {} ({}): it stopped answering", node.nid(), inc);
        reportGone(inc);
    }

    @Override
    public boolean notify(byte[] msg) {
        checkMessage(msg);
        if (!running) return false;
        append(LogRecord.notify(me, self, msg));
        return true;
    }

    @Override
    public boolean block() {
        if (!running) return false;
        append(LogRecord.block(me, self));
        return true;
    }

    @Override
    public void unblock(byte[] msg) {
        checkMessage(msg);
        append(LogRecord.unblock(me, self, msg));
    }

    @Override
    public void updateNode(SdNode node) {
        Objects.requireNonNull(node, "node");
        requireJoined();
        self = node;
        append(LogRecord.updateNode(me, node, node));
    }

    private void checkMessage(byte[] msg) {
        Objects.requireNonNull(msg, "msg");
        if (msg.length > MAX_MESSAGE) {
            throw new IllegalArgumentException("message of " + msg.length + " bytes exceeds " + MAX_MESSAGE);
        }
        requireJoined();
    }

    private void requireJoined() {
        if (!running) throw new IllegalStateException("the local cluster driver is not joined");
    }

    /** Appends under the directory lock. The watch wakes every member, this one included. */
    private void append(LogRecord r) {
        try {
            dirLock.locked(() -> {
                if (released) throw new IllegalStateException("the local cluster driver is closed");
                return writer.append(r);
            });
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot write the local cluster event log in " + dir + ": "
                    + e.getMessage(), e);
        }
        watcher.wake();
    }

    @Override
    public void close() {
        synchronized (lifecycle) {
            if (closed) return;
            closed = true;
            running = false;
        }
        if (watcher != null) watcher.close();
        synchronized (livenessMonitor) {
            livenessMonitor.notifyAll();
        }
        // Announce the death first: a delivery thread stuck in a listener callback must not delay it.
        if (dirLock != null) {
            try {
                dirLock.locked(() -> {
                    released = true;
                    memberFile.close();
                    return null;
                });
            } catch (IOException e) {
                log.warn("Cannot lock {} while closing: {}", dir, e.toString());
            }
        }
        joinThread(livenessThread);
        joinThread(deliveryThread);
        releaseResources();
    }

    private static void joinThread(Thread t) {
        if (t == null || t == Thread.currentThread()) return;
        try {
            t.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Closing the member file is what tells the others this incarnation is gone. */
    private void releaseResources() {
        if (watcher != null) watcher.close();
        closeQuietly(reader);
        closeQuietly(writer);
        if (memberFile != null) memberFile.close();
        if (dirLock != null) dirLock.release();
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try {
            c.close();
        } catch (Exception e) {
            log.debug("close: {}", e.toString());
        }
    }

    @Override public String toString() {
        return "local cluster driver (" + directory + (me == null ? "" : ", " + me) + ")";
    }

    // ---------------------------------------------------------------------------------------------------------
    // Liveness thread

    private void livenessLoop() {
        while (running) {
            synchronized (livenessMonitor) {
                try {
                    livenessMonitor.wait(livenessIntervalMs);
                } catch (InterruptedException e) {
                    return;
                }
            }
            for (Incarnation inc : watched) {
                if (!running) return;
                if (inc.id() == me.id() || reported.contains(inc.id())) continue;
                if (!MemberFiles.alive(dir, inc)) reportGone(inc);
            }
        }
    }

    /** Appends a LEAVE for a dead incarnation unless one is already in the log. */
    private void reportGone(Incarnation inc) {
        try {
            boolean appended = dirLock.locked(() -> {
                if (released) return false;
                writer.catchUp();
                if (writer.reportedGone(inc.id())) return false;
                writer.append(LogRecord.leave(me, self, inc.id()));
                return true;
            });
            reported.add(inc.id());
            if (appended) log.info("Member {} is dead", inc);
            watcher.wake();
        } catch (IOException e) {
            log.error("Cannot report the death of {}: {}", inc, e.getMessage());
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Delivery thread: reads the log and runs the state machine

    private void deliveryLoop() {
        try {
            while (running) {
                boolean progress = reader.readInto(window, stalledOnJoin ? READ_AHEAD
                        : Math.max(0, READ_AHEAD - window.size())) > 0;
                progress |= processWindow();
                retryBlockIfDue();
                if (progress) publishWatched();
                else watcher.await(waitMillis());
            }
        } catch (IOException | RuntimeException e) {
            if (running) {
                log.error("The local cluster driver stopped: {}", e.toString(), e);
                health(false, "local cluster driver stopped: " + e.getMessage());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private long waitMillis() {
        if (retryBlock < 0) return POLL_MS;
        long untilRetry = TimeUnit.NANOSECONDS.toMillis(retryAtNanos - System.nanoTime());
        return Math.max(1, Math.min(POLL_MS, untilRetry));
    }

    /** Applies records in order until the log runs out or a JOIN waits for its answer. */
    private boolean processWindow() {
        stalledOnJoin = false;
        boolean progress = false;
        while (running && !window.isEmpty()) {
            LogRecord r = window.peekFirst();
            if (consumed.remove(r.seq())) {
                window.removeFirst();
            } else if (r.type() == RecordType.JOIN) {
                if (!processJoin(r)) {
                    stalledOnJoin = true;
                    break;
                }
            } else {
                window.removeFirst();
                apply(r);
            }
            progress = true;
        }
        return progress;
    }

    /** Applies a non-JOIN record at its position. */
    private void apply(LogRecord r) {
        switch (r.type()) {
            case ACCEPT, REFUSE -> log.debug("Ignoring {}: its join was already settled", r);
            case LEAVE -> removeMember(r.subject());
            case NOTIFY -> {
                SdNode sender = senderNode(r);
                deliver(() -> listener.onNotify(sender, r.payload()));
            }
            case BLOCK -> {
                blocks.addLast(new Block(r.seq(), r.sender()));
                if (blocks.size() == 1) grantIfMine();
            }
            case UNBLOCK -> {
                Block head = blocks.peekFirst();
                boolean popped = head != null && head.owner().id() == r.sender().id();
                if (popped) blocks.removeFirst();
                else log.warn("{} does not hold the block; delivering its message only", r.senderNode());
                SdNode sender = senderNode(r);
                deliver(() -> listener.onNotify(sender, r.payload()));
                if (popped) grantIfMine();
            }
            case UPDATE_NODE -> {
                Member m = members.get(r.sender().id());
                if (m == null) {
                    log.debug("Ignoring a node update from non-member {}", r.senderNode());
                } else {
                    members.put(m.inc().id(), new Member(m.inc(), r.node()));
                    deliver(() -> listener.onUpdateNode(r.node()));
                }
            }
            case JOIN -> throw new IllegalStateException("joins are settled by processJoin");
        }
    }

    /**
     * Settles the JOIN at the head of the window if its answer (or its joiner's death with nobody to answer) is in
     * the log, or answers it if this node is the handler. Returns true if the JOIN was consumed.
     */
    private boolean processJoin(LogRecord join) {
        Set<Long> gone = new HashSet<>();
        LogRecord answer = null;
        var it = window.iterator();
        it.next();
        while (it.hasNext()) {
            LogRecord r = it.next();
            if (consumed.contains(r.seq())) continue;
            if ((r.type() == RecordType.ACCEPT || r.type() == RecordType.REFUSE) && r.joinSeq() == join.seq()) {
                answer = r;
                break;
            }
            if (r.type() == RecordType.LEAVE) gone.add(r.subject());
        }
        if (answer != null) {
            window.removeFirst();
            consumed.add(answer.seq());
            settle(join, answer);
            return true;
        }
        Incarnation handler = null;
        for (Member m : members.values()) {
            if (!gone.contains(m.inc().id())) {
                handler = m.inc();
                break;
            }
        }
        if (handler == null) {
            if (gone.contains(join.sender().id())) {
                // Nobody who could answer is alive, the joiner included: the join never happened.
                window.removeFirst();
                log.info("Dropping the join of {}: it died before anyone could answer", join.senderNode());
                return true;
            }
            handler = join.sender(); // alone: the joiner answers its own request
        }
        if (handler.id() == me.id() && !answered.contains(join.seq())) answer(join, gone);
        return false;
    }

    /** This node is the handler of {@code join}: decide and append the answer. */
    private void answer(LogRecord join, Set<Long> gone) {
        handlerLock.lock();
        try {
            if (left) return; // our LEAVE is in the log; the next member answers
            SdNode joiner = join.senderNode();
            for (Member m : members.values()) {
                if (gone.contains(m.inc().id()) || m.inc().id() == join.sender().id()
                        || !m.node().nid().equals(joiner.nid())) {
                    continue;
                }
                // A sheep restarted on the same node id: its old incarnation must be reported gone first.
                if (!MemberFiles.alive(dir, m.inc())) {
                    if (!reported.contains(m.inc().id())) reportGone(m.inc());
                    return;
                }
                long now = System.nanoTime();
                long since = sameNodeSince.computeIfAbsent(join.seq(), k -> now);
                if (now - since < TimeUnit.MILLISECONDS.toNanos(sameNodeGraceMs)) return;
                log.warn("Refusing {}: node {} is already a live member", join.sender(), joiner.nid());
                appendAnswer(join, false, new long[0], new byte[0]);
                return;
            }
            sameNodeSince.remove(join.seq());
            if (gone.contains(join.sender().id())) {
                appendAnswer(join, false, new long[0], new byte[0]); // the joiner died while waiting
                return;
            }
            // Members reported gone leave just before the answer, on every node: decide with the list they will see.
            List<Long> pre = new ArrayList<>();
            for (Member m : List.copyOf(members.values())) {
                if (gone.contains(m.inc().id())) {
                    pre.add(m.inc().id());
                    removeMember(m.inc().id());
                }
            }
            long[] preLeaves = pre.stream().mapToLong(Long::longValue).toArray();
            JoinDecision d;
            try {
                d = listener.onJoinRequest(joiner, memberNodes(), join.payload());
            } catch (RuntimeException e) {
                log.error("onJoinRequest failed for {}; refusing it", joiner, e);
                d = new JoinDecision(false, null);
            }
            byte[] msg = d == null || d.message() == null ? new byte[0] : d.message();
            boolean accept = d != null && d.accept();
            if (msg.length > MAX_JOIN_MESSAGE) {
                log.error("The join answer for {} is {} bytes, over {}: refusing", joiner, msg.length,
                        MAX_JOIN_MESSAGE);
                accept = false;
                msg = new byte[0];
            }
            // a refusal carries the master's reason (UTF-8 text, if it gave one) so the joiner can say why
            appendAnswer(join, accept, preLeaves, msg);
        } finally {
            handlerLock.unlock();
        }
    }

    private void appendAnswer(LogRecord join, boolean accept, long[] preLeaves, byte[] msg) {
        append(LogRecord.answer(accept, me, self, join.seq(), preLeaves, msg));
        answered.add(join.seq());
    }

    /** Applies the answer to {@code join} at the JOIN's position. */
    private void settle(LogRecord join, LogRecord answer) {
        answered.remove(join.seq());
        sameNodeSince.remove(join.seq());
        for (long id : answer.preLeaves()) removeMember(id);
        boolean mine = join.sender().id() == me.id();
        if (answer.type() == RecordType.REFUSE) {
            log.info("The join of {} was refused by {}", join.senderNode(), answer.senderNode());
            if (mine) {
                String why = answer.payload().length == 0 ? ""
                        : ": " + new String(answer.payload(), StandardCharsets.UTF_8);
                String reason = "join refused by " + answer.senderNode().nid() + why;
                try {
                    listener.onJoinRefused(reason);
                } catch (RuntimeException e) {
                    log.error("onJoinRefused failed", e);
                }
            }
            return;
        }
        members.put(join.sender().id(), new Member(join.sender(), join.senderNode()));
        publishIncarnations();
        if (mine) delivering = true;
        List<SdNode> now = memberNodes();
        deliver(() -> listener.onAccept(join.senderNode(), now, answer.payload()));
        if (mine && rejoining) {
            rejoining = false;
            health(true, "joined the local cluster again");
        }
        grantIfMine();
    }

    /** A member left or died: drop it and its blocks. A no-op for duplicates. */
    private void removeMember(long id) {
        Member m = members.remove(id);
        Block head = blocks.peekFirst();
        blocks.removeIf(b -> b.owner().id() == id);
        if (m != null) {
            publishIncarnations();
            List<SdNode> remaining = memberNodes();
            deliver(() -> listener.onLeave(m.node(), remaining));
            if (id == me.id() && !left && delivering) {
                delivering = false;
                String reason = "this node was reported dead by another member of the local cluster";
                health(false, reason);
                rejoin(reason);
            }
        }
        if (head != null && head != blocks.peekFirst()) grantIfMine();
    }

    /** Grants the head block if it is this node's: onBlock runs at the position where it became the head. */
    private void grantIfMine() {
        Block head = blocks.peekFirst();
        if (head == null || head.owner().id() != me.id() || !delivering || head.seq() == grantedBlock) return;
        boolean granted;
        try {
            granted = listener.onBlock();
        } catch (RuntimeException e) {
            log.error("onBlock failed; retrying", e);
            granted = false;
        }
        if (granted) {
            grantedBlock = head.seq();
            retryBlock = -1;
        } else {
            retryBlock = head.seq();
            retryAtNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(BLOCK_RETRY_MS);
        }
    }

    private void retryBlockIfDue() {
        if (retryBlock < 0) return;
        Block head = blocks.peekFirst();
        if (head == null || head.seq() != retryBlock) {
            retryBlock = -1;
            return;
        }
        if (System.nanoTime() - retryAtNanos >= 0) grantIfMine();
    }

    /**
     * This node was removed while it ran (evicted as unresponsive): join again as a new incarnation, with the join
     * message the daemon gives for its current state. Events are delivered again from the new acceptance on.
     */
    private void rejoin(String reason) {
        byte[] joinMsg = ClusterListener.rejoinMessage(listener, reason, firstJoinMessage);
        rejoining = true;
        Incarnation next = Incarnation.create();
        try {
            MemberFiles.Held file = MemberFiles.create(dir, next, self.nid().toAddrPort() + " pid " + next.pid());
            MemberFiles.Held old = memberFile;
            boolean appended = dirLock.locked(() -> {
                if (released) return false;
                me = next;
                memberFile = file;
                writer.append(LogRecord.join(next, self, joinMsg));
                return true;
            });
            if (!appended) {
                file.close();
                return;
            }
            old.close();
            log.info("Re-joining the local cluster as {} ({})", self.nid(), next);
        } catch (IOException e) {
            log.error("Cannot re-join the local cluster: {}", e.toString());
        }
    }

    /**
     * Publishes the members' incarnations for {@link #evict} before the listener hears of a change: a caller that
     * learnt of a member from {@code onAccept} must find it there at once.
     */
    private void publishIncarnations() {
        Map<NodeId, Incarnation> byNode = new HashMap<>();
        for (Member m : members.values()) byNode.put(m.node().nid(), m.inc());
        if (!byNode.equals(incarnationOf)) incarnationOf = Map.copyOf(byNode);
    }

    private void publishWatched() {
        publishIncarnations();
        Map<Long, Incarnation> w = new LinkedHashMap<>();
        for (Member m : members.values()) w.put(m.inc().id(), m.inc());
        for (LogRecord r : window) {
            if (r.type() == RecordType.JOIN) w.put(r.sender().id(), r.sender());
        }
        for (Block b : blocks) w.put(b.owner().id(), b.owner());
        w.remove(me.id());
        if (!w.keySet().equals(idsOf(watched))) watched = List.copyOf(w.values());
    }

    private static Set<Long> idsOf(List<Incarnation> l) {
        Set<Long> s = new HashSet<>();
        for (Incarnation i : l) s.add(i.id());
        return s;
    }

    private List<SdNode> memberNodes() {
        List<SdNode> l = new ArrayList<>(members.size());
        for (Member m : members.values()) l.add(m.node());
        return List.copyOf(l);
    }

    /** The sender as the members know it (its latest node update), so every node delivers the same value. */
    private SdNode senderNode(LogRecord r) {
        Member m = members.get(r.sender().id());
        return m != null ? m.node() : r.senderNode();
    }

    private void deliver(Runnable callback) {
        if (!delivering) return;
        try {
            callback.run();
        } catch (RuntimeException e) {
            log.error("A cluster listener callback failed", e);
        }
    }

    private void health(boolean healthy, String reason) {
        try {
            listener.onDriverHealth(healthy, reason);
        } catch (RuntimeException e) {
            log.error("onDriverHealth failed", e);
        }
    }
}
