package io.sheepdog.sheep.cluster;

import io.sheepdog.proto.SdNode;
import java.util.List;

/** The callbacks a {@link ClusterDriver} makes into the daemon, one at a time from one thread, in total order. */
public interface ClusterListener {

    /** What the master decided about a joiner: accept with a (possibly rewritten) message, or refuse. */
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
     * corosync). While unhealthy the node must not serve writes.
     */
    default void onDriverHealth(boolean healthy, String reason) {}
}
