package io.sheepdog.sheep.cluster;

import io.sheepdog.proto.SdNode;
import java.util.List;
import org.slf4j.LoggerFactory;

/** The callbacks a {@link ClusterDriver} makes into the daemon, one at a time from one thread, in total order. */
public interface ClusterListener {

    /**
     * What the master decided about a joiner: accept with a (possibly rewritten) message, or refuse; a refusal's
     * message, if any, is the reason as UTF-8 text, handed to the joiner's {@link #onJoinRefused}.
     */
    record JoinDecision(boolean accept, byte[] message) {}

    /**
     * Runs on exactly one existing member (the master) when {@code joining} asks to join, or on the joiner itself when
     * the cluster has no members yet.
     *
     * @param members the current members, not including the joiner
     */
    JoinDecision onJoinRequest(SdNode joining, List<SdNode> members, byte[] message);

    /** Runs on every node, the joiner included, with the message the master returned. */
    void onAccept(SdNode joined, List<SdNode> membersIncludingJoined, byte[] message);

    /** A member left or crashed. */
    void onLeave(SdNode left, List<SdNode> remainingMembers);

    /** A notify (or the message of an unblock) from {@code sender}. */
    void onNotify(SdNode sender, byte[] message);

    /** The block this node asked for is granted. Return false to have the driver retry later. */
    boolean onBlock();

    /** A member's node info changed. */
    void onUpdateNode(SdNode node);

    /**
     * The driver lost (healthy=false) or regained (healthy=true) its connection to its server (ZooKeeper,
     * corosync). While unhealthy the node must not serve writes, except within a lease (see the three-argument form).
     */
    default void onDriverHealth(boolean healthy, String reason) {}

    /**
     * As {@link #onDriverHealth(boolean, String)}, with a lease: until {@code System.nanoTime()} reaches
     * {@code memberUntilNanos}, the driver guarantees that no other member can have seen this node leave (its session
     * cannot have expired yet), so writes, which need every copy's answer anyway, may go on although the membership
     * cannot be followed. 0: no such guarantee (the default, and always for healthy=true). A later report replaces
     * an earlier one's lease (an expired session ends it at once).
     */
    default void onDriverHealth(boolean healthy, String reason, long memberUntilNanos) {
        onDriverHealth(healthy, reason);
    }

    /**
     * The join this node asked for was refused; {@code reason} says by whom and, if the master gave one, why. No
     * further callbacks follow. By default this is reported as an unhealthy driver.
     */
    default void onJoinRefused(String reason) { onDriverHealth(false, reason); }

    /**
     * This node was dropped from the cluster while running (its ZooKeeper session expired, corosync restarted,
     * ...): the other members have already seen {@link #onLeave} for it. The driver joins again by itself and asks
     * here for the join message to send (the node's current cluster info); {@code null} re-sends the message given
     * to {@link ClusterDriver#join}. Called after {@code onDriverHealth(false, ...)}. What follows is the sequence of
     * a first join: {@link #onJoinRequest} if the cluster is now empty, then {@link #onAccept} for this node with the
     * new member list, then {@code onDriverHealth(true, ...)}. Cluster requests that were waiting for events of the
     * old membership (a block not yet granted or held, notifies not yet delivered) never complete: fail or re-send
     * them (the original's reconnect_handler).
     */
    default byte[] onRejoin(String reason) { return null; }

    /**
     * What a driver re-joins with: {@code l}'s {@link #onRejoin} message, or {@code first} (the message given to
     * {@link ClusterDriver#join}) if it gives none or fails.
     */
    static byte[] rejoinMessage(ClusterListener l, String reason, byte[] first) {
        byte[] m;
        try {
            m = l.onRejoin(reason);
        } catch (RuntimeException e) {
            LoggerFactory.getLogger(ClusterListener.class).error("onRejoin failed; re-joining with the first join message", e);
            m = null;
        }
        return m != null ? m : first;
    }
}
