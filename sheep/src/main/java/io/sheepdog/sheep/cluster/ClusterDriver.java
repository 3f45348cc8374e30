package io.sheepdog.sheep.cluster;

import io.sheepdog.proto.SdNode;

/**
 * Membership and totally ordered broadcast for a cluster of sheep (docs/daemon.md §4). Implementations: local
 * (one machine, file rendezvous), ZooKeeper, Corosync.
 *
 * <p>Contract, the same for every driver:
 * <ul>
 *   <li>Every callback of {@link ClusterListener} is made from one driver thread per node, one at a time, and all
 *   nodes see the same sequence of join/leave/notify/block events (total order, virtual synchrony).</li>
 *   <li>{@link #join}: at least one existing member (the master) runs {@link ClusterListener#onJoinRequest}; the
 *   message it returns is handed to {@link ClusterListener#onAccept} on every node, the joiner included. A node that
 *   joins an empty cluster runs onJoinRequest itself with no members.</li>
 *   <li>A member that crashes (kill -9, host gone) is reported to the survivors by {@link ClusterListener#onLeave}.</li>
 *   <li>{@link #block}: asks for cluster-wide mutual exclusion. When granted, {@link ClusterListener#onBlock} runs on
 *   the requesting node, in the total order: every event ordered before the grant has been delivered first. If it
 *   returns false the driver retries later. No other block is granted until {@link #unblock}, which releases the
 *   block and broadcasts its message (delivered by onNotify on every node). If the holder dies the block is
 *   released.</li>
 * </ul>
 */
public interface ClusterDriver extends AutoCloseable {

    /** Name as given to {@code sheep -c}, e.g. {@code local}. */
    String name();

    /**
     * Starts event delivery and asks to join with {@code joinMessage} (an encoded ClusterInfo; at most
     * 1 MiB). Returns once the request is sent; acceptance arrives as onAccept.
     *
     * @throws ClusterDriverException with a one-line reason if the driver cannot reach its server
     */
    void join(SdNode self, byte[] joinMessage, ClusterListener listener) throws ClusterDriverException;

    /** Announces a clean departure; other members see onLeave. */
    void leave();

    /**
     * Totally ordered broadcast to every member, the sender included (at most 128 KiB for non-join messages).
     * @return false if nothing was sent because this node is not a member now (joining, or re-joining after a lost
     *         session): the caller must not wait for the message
     */
    boolean notify(byte[] msg);

    /**
     * Requests the cluster-wide block; see the class comment.
     * @return false if nothing was sent because this node is not a member now (see {@link #notify})
     */
    boolean block();

    /** Releases the block held by this node and broadcasts {@code msg}. */
    void unblock(byte[] msg);

    /** Broadcasts changed node info (vnodes, space); every node gets onUpdateNode. */
    void updateNode(SdNode node);

    /**
     * Takes {@code node} out of the cluster because it stopped answering (a hung process, a partitioned host) although
     * the driver still counts it as a member: every member gets onLeave for it in the total order and the blocks it
     * asked for are dropped, as if it had crashed. If its process is still alive it finds itself removed when it
     * runs again and joins anew, as after a lost session ({@link ClusterListener#onRejoin}). A no-op if {@code node}
     * is not a member; several members may evict the same node.
     */
    void evict(SdNode node);

    /** A line on the driver's state for the log when something waits on it too long (membership, blocks). */
    default String describe() { return name(); }

    /** Stops the driver without announcing a leave (process shutdown). */
    @Override void close();
}
