package io.sheepdog.sheep.cluster.common;

import io.sheepdog.sheep.cluster.ClusterListener;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.LongConsumer;
import org.slf4j.LoggerFactory;

/**
 * The cluster-wide FIFO of block requests, replicated on every node by applying the same ordered events. The head
 * is the active block: only its owner's onBlock runs, and no other block is granted until the head is removed
 * (unblock, or its owner left).
 *
 * <p>Besides the replicated queue it keeps this node's local grant bookkeeping: whether the daemon already accepted
 * the head (onBlock returned true) and when to ask again after it declined.
 */
public final class BlockFifo {

    /** One block request: the requesting member's key and an id unique for that member. */
    public record Block(long owner, long id) {}

    /** How long to wait before calling onBlock again after it returned false. */
    public static final long RETRY_NANOS = 100_000_000L;

    private final List<Block> queue = new ArrayList<>();
    private long grantedId = -1;
    private long retryAt;

    /** Appends a request unless it is already queued (applying the same event twice is harmless). */
    public void add(Block b) {
        if (!queue.contains(b)) queue.add(b);
    }

    /** Removes the request with this owner and id; returns whether it was there. */
    public boolean remove(long owner, long id) {
        return queue.remove(new Block(owner, id));
    }

    /** Removes every request of a member that left; a block it held is released. */
    public void removeOwner(long owner) {
        queue.removeIf(b -> b.owner() == owner);
    }

    /** Removes the requests of every owner not in {@code owners} (members that are gone). */
    public void retainOwners(Set<Long> owners) {
        queue.removeIf(b -> !owners.contains(b.owner()));
    }

    public Block head() { return queue.isEmpty() ? null : queue.getFirst(); }

    public List<Block> snapshot() { return List.copyOf(queue); }

    public void replaceAll(List<Block> blocks) {
        queue.clear();
        queue.addAll(blocks);
    }

    public void clear() {
        queue.clear();
        grantedId = -1;
        retryAt = 0;
    }

    /**
     * Whether the daemon of {@code self} must be asked (onBlock) now: the head is ours, not yet accepted, and no
     * retry delay is pending.
     */
    public boolean shouldOffer(long self, long nowNanos) {
        Block h = head();
        return h != null && h.owner() == self && h.id() != grantedId && nowNanos - retryAt >= 0;
    }

    /** Records the daemon's answer to onBlock for the current head. */
    /**
     * Offers the head block to this node's listener (the caller checked {@link #shouldOffer}) and records the
     * answer; an exception counts as "not now", so the block is offered again later. {@code offering} learns the id
     * offered before the listener is asked (the listener may start work that unblocks at once, on another thread,
     * before this returns), and -1 again if the offer was declined.
     */
    public void offerTo(ClusterListener listener, LongConsumer offering) {
        long id = head().id();
        offering.accept(id);
        boolean ok;
        try {
            ok = listener.onBlock();
        } catch (RuntimeException e) {
            LoggerFactory.getLogger(BlockFifo.class).error("onBlock failed; will offer the block again", e);
            ok = false;
        }
        if (!ok) offering.accept(-1);
        offered(ok, System.nanoTime());
    }

    public void offered(boolean accepted, long nowNanos) {
        Block h = head();
        if (h == null) return;
        if (accepted) grantedId = h.id();
        else retryAt = nowNanos + RETRY_NANOS;
    }

    /** Nanoseconds until a declined offer should be repeated, or -1 when nothing is pending for {@code self}. */
    public long retryDelay(long self, long nowNanos) {
        Block h = head();
        if (h == null || h.owner() != self || h.id() == grantedId) return -1;
        return Math.max(0, retryAt - nowNanos);
    }

    /** The id of the block this node holds (granted and accepted by the daemon), or -1. */
    public long heldId(long self) {
        Block h = head();
        return h != null && h.owner() == self && h.id() == grantedId ? grantedId : -1;
    }
}
