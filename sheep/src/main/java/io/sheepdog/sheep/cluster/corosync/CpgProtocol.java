package io.sheepdog.sheep.cluster.corosync;

import io.sheepdog.proto.SdNode;
import io.sheepdog.sheep.cluster.ClusterListener;
import io.sheepdog.sheep.cluster.common.BlockFifo;
import io.sheepdog.sheep.cluster.common.ClusterEvent.Kind;
import io.sheepdog.sheep.cluster.common.ClusterEvent.Pending;
import io.sheepdog.sheep.cluster.common.ClusterEvent;
import io.sheepdog.sheep.cluster.common.Member;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The sheep membership protocol on top of a CPG group, as a state machine fed with the group's totally ordered
 * inputs (configuration changes and messages) for one connection of one process. No threads and no I/O: the
 * driver feeds it from its event thread, and tests feed it from a simulated group.
 *
 * <h2>Replicated state</h2>
 * Every process that knows the state ("synced") applies the same inputs in the same order and so holds the same:
 * members (accepted sheep, oldest first; the first is the master), the block FIFO, and the pending joins (JOINs
 * delivered but not answered yet, in delivery order). Membership changes come from ACCEPT messages and from
 * configuration changes (a process that leaves or dies leaves the group).
 *
 * <h2>Joining</h2>
 * A process multicasts JOIN right after it sees itself join the group. The master answers the oldest pending join:
 * it runs onJoinRequest and multicasts ACCEPT (or REFUSE) carrying a snapshot of the state and the name of the
 * message right after which the snapshot was taken (answers are only ever made at a message delivery; a
 * configuration change that calls for an answer is followed by a TICK message). A process that does not know the
 * state records every input from its own join on; when an answer arrives whose snapshot point it has seen, it takes
 * the snapshot, replays its inputs after that point, and is synced (its own ACCEPT always qualifies).
 *
 * <p>With no members, a synced process whose JOIN is pending answers itself ("self-elected" ACCEPT, the first node
 * of a cluster). A self-elected ACCEPT is valid only if there are still no members when it is delivered, so of two
 * concurrent self-elections only the first counts; the other process is then answered by the new master. A process
 * becomes synced without any ACCEPT when every process that was in the group before it has left: nobody else can
 * know a state then, and it starts from an empty one.
 */
final class CpgProtocol {

    private static final Logger LOG = LoggerFactory.getLogger(CpgProtocol.class);

    /** Where outgoing messages go (the driver's send queue, in order). */
    interface Sender {
        void send(CpgMessage message);
    }

    /** A configuration change of the group. */
    record Confchg(List<Cpg.Address> members, List<Cpg.Address> left, List<Cpg.Address> joined) {}

    /** A delivered message. */
    record Delivered(Proc sender, CpgMessage message) {}

    private final Proc self;
    private final long selfKey;
    private final ClusterListener listener;
    private final Sender out;
    private final byte[] joinMessage;
    private final AtomicLong seq = new AtomicLong();
    private volatile SdNode selfNode;

    private boolean inGroup;
    private boolean synced;
    private volatile boolean accepted;
    private volatile boolean finished;
    private volatile String dropReason;
    private final Set<Long> older = new HashSet<>();
    private final List<Object> recorded = new ArrayList<>();

    private final List<Member> members = new ArrayList<>();
    private final BlockFifo blocks = new BlockFifo();
    private final List<Pending> pending = new ArrayList<>();

    /** Joins this process has answered (and whose answers are on their way). */
    private final Set<Long> answered = new HashSet<>();
    private volatile long offeredBlockId = -1;

    CpgProtocol(Proc self, SdNode selfNode, byte[] joinMessage, ClusterListener listener, Sender out) {
        this.self = self;
        this.selfKey = self.key();
        this.selfNode = selfNode;
        this.joinMessage = joinMessage.clone();
        this.listener = listener;
        this.out = out;
    }

    Proc self() { return self; }

    boolean accepted() { return accepted; }

    /** True once this process left the group or was refused: no more callbacks. */
    boolean finished() { return finished; }

    /** Non-null when this connection must be given up and the process join again (partition merge). */
    String dropReason() { return dropReason; }

    // ---------------------------------------------------------------------------------------------------------
    // Requests of the daemon (any thread)

    /** @return false if this node is not a member (nothing sent) */
    boolean notify(byte[] msg) { return send(Kind.NOTIFY, 0, msg); }

    /** @return false if this node is not a member (nothing sent) */
    boolean block(long id) { return send(Kind.BLOCK, id, null); }

    /** @return false if this node holds no block (the message is dropped) */
    boolean unblock(byte[] msg) {
        long id = offeredBlockId;
        if (id < 0) return false;
        offeredBlockId = -1;
        send(Kind.UNBLOCK, id, msg);
        return true;
    }

    /**
     * Asks every process to take {@code node} out of the members (it stopped answering while its process stays in
     * the group): a LEAVE naming its address, applied in the total order like a configuration change that removed
     * it. If it runs again it reads the LEAVE for itself and re-joins.
     */
    void evict(SdNode node) {
        send(Kind.LEAVE, 0, node.nid().toAddrPort().getBytes(StandardCharsets.UTF_8));
    }

    void updateNode(SdNode node) {
        selfNode = node;
        send(Kind.UPDATE_NODE, 0, null);
    }

    private boolean send(Kind kind, long arg, byte[] msg) {
        if (!accepted || finished) {
            LOG.debug("not a member: {} dropped", kind);
            return false;
        }
        out.send(message(kind, arg, msg));
        return true;
    }

    private CpgMessage message(Kind kind, long arg, byte[] msg) {
        return new CpgMessage(seq.incrementAndGet(), 0, 0, ClusterEvent.simple(kind, new Member(selfKey, selfNode), arg, msg));
    }

    // ---------------------------------------------------------------------------------------------------------
    // Inputs (event thread)

    void onConfchg(Confchg c) {
        if (finished) return;
        if (!inGroup) {
            if (!contains(c.joined(), selfKey)) return;
            inGroup = true;
            // Older: whoever was there before us, and whoever joined in the same change ahead of us in its list
            // (the list is the same for everyone, so two processes never wait for each other).
            Set<Long> newer = new HashSet<>();
            boolean seenSelf = false;
            for (Cpg.Address a : c.joined()) {
                if (key(a) == selfKey) seenSelf = true;
                else if (seenSelf) newer.add(key(a));
            }
            for (Cpg.Address a : c.members()) if (key(a) != selfKey && !newer.contains(key(a))) older.add(key(a));
            LOG.info("joined the CPG group as {} with {} other process(es)", self, older.size());
            if (older.isEmpty()) bootstrap();
            out.send(message(Kind.JOIN, 0, joinMessage));
            return;
        }
        if (contains(c.left(), selfKey)) {
            LOG.info("left the CPG group");
            finished = true;
            return;
        }
        for (Cpg.Address a : c.joined()) {
            if (a.reason() == Cpg.REASON_NODEUP) {
                // Two parts of a partitioned group met again: both went on alone, so nobody's state is right.
                dropReason = "corosync network partition healed; re-joining";
                return;
            }
        }
        if (!synced) {
            recorded.add(c);
            for (Cpg.Address a : c.left()) older.remove(key(a));
            if (older.isEmpty()) bootstrap();
        } else {
            applyConfchg(c, true);
        }
        if (synced && answerDue()) out.send(message(Kind.TICK, 0, null));
    }

    void onDeliver(Delivered d) {
        if (finished || !inGroup) return;
        if (!synced) {
            CpgMessage m = d.message();
            if (m.event().kind() == Kind.ACCEPT || m.event().kind() == Kind.REFUSE) { // both carry a snapshot
                int at = indexOfRecorded(m.refKey(), m.refSeq());
                if (at >= 0) {
                    syncFrom(m.event(), List.copyOf(recorded.subList(at + 1, recorded.size())));
                    applyMessage(d, true);
                    afterMessage(d);
                    return;
                }
            }
            recorded.add(d);
            return;
        }
        applyMessage(d, true);
        afterMessage(d);
    }

    /** Offers the block at the head to the daemon if it is ours; returns ns until a declined offer is due, or -1. */
    long offerBlock(long now) {
        if (!accepted || finished) return -1;
        if (blocks.shouldOffer(selfKey, now)) {
            blocks.offerTo(listener, id -> offeredBlockId = id);
        }
        return blocks.retryDelay(selfKey, System.nanoTime());
    }

    // ---------------------------------------------------------------------------------------------------------

    private void bootstrap() {
        LOG.info("no older process in the group: starting from an empty cluster state");
        synced = true;
        members.clear();
        blocks.clear();
        pending.clear();
        answered.clear();
        for (Object in : recorded) replay(in);
        recorded.clear();
    }

    private void syncFrom(ClusterEvent accept, List<Object> after) {
        synced = true;
        members.clear();
        members.addAll(accept.members());
        blocks.replaceAll(accept.blocks());
        pending.clear();
        pending.addAll(accept.pending());
        answered.clear();
        for (Object in : after) replay(in);
        recorded.clear();
        LOG.debug("synced from the answer to {}: {} member(s), {} pending join(s)", accept.sender(), members.size(),
                pending.size());
    }

    private void replay(Object in) {
        if (in instanceof Confchg c) applyConfchg(c, false);
        else applyMessage((Delivered) in, false);
    }

    private int indexOfRecorded(long key, long seq) {
        for (int i = 0; i < recorded.size(); i++) {
            if (recorded.get(i) instanceof Delivered d && d.sender().key() == key && d.message().seq() == seq) return i;
        }
        return -1;
    }

    private void applyConfchg(Confchg c, boolean live) {
        for (Cpg.Address a : c.left()) {
            long k = key(a);
            pending.removeIf(p -> p.member().key() == k);
            int i = indexOfMember(k);
            if (i < 0) continue;
            Member gone = members.remove(i);
            blocks.removeOwner(k);
            if (members.isEmpty()) answered.clear();
            if (live && accepted) {
                List<SdNode> remaining = nodes(members);
                deliver("onLeave", () -> listener.onLeave(gone.node(), remaining));
            }
        }
        if (live) offerBlock(System.nanoTime());
    }

    private void applyMessage(Delivered d, boolean live) {
        ClusterEvent ev = d.message().event();
        long from = d.sender().key();
        switch (ev.kind()) {
            case JOIN -> {
                if (ev.senderKey() == from && indexOfMember(from) < 0 && indexOfPending(from) < 0) {
                    pending.add(new Pending(new Member(from, ev.sender()), ev.message()));
                }
            }
            case ACCEPT, REFUSE -> applyAnswer(ev, from, live);
            case NOTIFY -> {
                Member m = member(from);
                if (m != null && live && accepted) deliver("onNotify", () -> listener.onNotify(m.node(), ev.message()));
            }
            case BLOCK -> {
                if (member(from) != null) blocks.add(new BlockFifo.Block(from, ev.arg()));
            }
            case UNBLOCK -> {
                Member m = member(from);
                if (m != null) {
                    blocks.remove(from, ev.arg());
                    if (live && accepted) deliver("onNotify", () -> listener.onNotify(m.node(), ev.message()));
                }
            }
            case UPDATE_NODE -> {
                int i = indexOfMember(from);
                if (i >= 0) {
                    members.set(i, new Member(from, ev.sender()));
                    if (live && accepted) deliver("onUpdateNode", () -> listener.onUpdateNode(ev.sender()));
                }
            }
            case LEAVE -> {
                if (member(from) != null && ev.message() != null) evicted(new String(ev.message(), StandardCharsets.UTF_8), live);
            }
            case TICK -> { }
        }
    }

    /** A member asked to remove the member at {@code addrPort} (see {@link #evict}). */
    private void evicted(String addrPort, boolean live) {
        for (int i = 0; i < members.size(); i++) {
            Member m = members.get(i);
            if (!m.node().nid().toAddrPort().equals(addrPort)) continue;
            members.remove(i);
            blocks.removeOwner(m.key());
            pending.removeIf(p -> p.member().key() == m.key());
            if (m.key() == selfKey) {
                if (live) dropReason = "the cluster removed this node: it stopped answering";
                return;
            }
            if (live && accepted) {
                List<SdNode> remaining = nodes(members);
                deliver("onLeave", () -> listener.onLeave(m.node(), remaining));
                offerBlock(System.nanoTime());
            }
            return;
        }
    }

    private void applyAnswer(ClusterEvent ev, long from, boolean live) {
        long joiner = ev.senderKey();
        int pi = indexOfPending(joiner);
        if (pi < 0) return; // answered already, or the joiner is gone
        boolean valid = ev.arg() == 1
                ? members.isEmpty() && from == joiner
                : !members.isEmpty() && members.getFirst().key() == from;
        if (!valid) {
            LOG.debug("ignoring an outdated answer to {} from {}", ev.sender(), Proc.ofKey(from));
            return;
        }
        Pending p = pending.remove(pi);
        // the answer is in: the same process may ask again later (re-joining after an eviction, same key)
        answered.remove(joiner);
        if (ev.kind() == Kind.REFUSE) {
            if (joiner == selfKey) {
                finished = true;
                if (live) {
                    LOG.error("the cluster refused to let this node join");
                    // onJoinRefused: the daemon exits with the reason instead of idling unhealthy
                    deliver("onJoinRefused", () -> listener.onJoinRefused("the cluster refused to let this node join"));
                }
            }
            return;
        }
        members.add(p.member());
        if (joiner == selfKey) accepted = true;
        if (live && accepted) {
            List<SdNode> all = nodes(members);
            deliver("onAccept", () -> listener.onAccept(p.member().node(), all, ev.message()));
        }
    }

    /** After a delivered message (live): answer a join if it falls to us now, and offer a block. */
    private void afterMessage(Delivered d) {
        if (answerDue()) answer(d.sender().key(), d.message().seq());
        offerBlock(System.nanoTime());
    }

    private boolean answerDue() {
        if (!synced || pending.isEmpty()) return false;
        if (!members.isEmpty()) {
            return members.getFirst().key() == selfKey && !answered.contains(pending.getFirst().member().key());
        }
        return indexOfPending(selfKey) >= 0 && !answered.contains(selfKey);
    }

    private void answer(long refKey, long refSeq) {
        boolean selfElected = members.isEmpty();
        Pending p = selfElected ? pending.get(indexOfPending(selfKey)) : pending.getFirst();
        answered.add(p.member().key());
        List<SdNode> current = nodes(members);
        ClusterListener.JoinDecision d;
        try {
            d = listener.onJoinRequest(p.member().node(), current, p.message());
        } catch (RuntimeException e) {
            LOG.error("onJoinRequest failed: refusing {}", p.member().node(), e);
            d = null;
        }
        boolean accept = d != null && d.accept();
        byte[] msg = accept && d.message() != null ? d.message() : p.message();
        ClusterEvent ev = new ClusterEvent(accept ? Kind.ACCEPT : Kind.REFUSE, p.member().key(), p.member().node(),
                selfElected ? 1 : 0, accept ? msg : null, members, blocks.snapshot(), pending);
        out.send(new CpgMessage(seq.incrementAndGet(), refKey, refSeq, ev));
    }

    // ---------------------------------------------------------------------------------------------------------

    private static void deliver(String what, Runnable callback) {
        try {
            callback.run();
        } catch (RuntimeException e) {
            LOG.error("{} failed", what, e);
        }
    }

    private static long key(Cpg.Address a) { return a.proc().key(); }

    private static boolean contains(List<Cpg.Address> list, long key) {
        for (Cpg.Address a : list) if (key(a) == key) return true;
        return false;
    }

    private Member member(long key) {
        int i = indexOfMember(key);
        return i < 0 ? null : members.get(i);
    }

    private int indexOfMember(long key) {
        for (int i = 0; i < members.size(); i++) if (members.get(i).key() == key) return i;
        return -1;
    }

    private int indexOfPending(long key) {
        for (int i = 0; i < pending.size(); i++) if (pending.get(i).member().key() == key) return i;
        return -1;
    }

    private static List<SdNode> nodes(List<Member> ms) {
        List<SdNode> out = new ArrayList<>(ms.size());
        for (Member m : ms) out.add(m.node());
        return List.copyOf(out);
    }
}
