package io.sheepdog.sheep.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.ops.ClientInfo;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The handover rules of {@link WriterLocks}, with the cluster's lock state faked. */
class WriterLocksTest {
    private static final NodeId SELF = NodeId.of("127.0.0.1", 7000);
    private static final ClientInfo A = new ClientInfo(NodeId.addrBytes("127.0.0.1"), 40000, 1);
    private static final ClientInfo B = new ClientInfo(NodeId.addrBytes("127.0.0.1"), 40001, 2);

    /** One VDI, locked by {@code holder} (null: unlocked). */
    private static final class FakeCluster implements WriterLocks.Cluster {
        volatile ClientInfo holder = A;
        volatile NodeId holderNode = SELF;
        volatile int handoverAnswer = SdResult.SYSTEM_ERROR;
        final AtomicInteger asked = new AtomicInteger();
        /** Snapshots taken: VID -> the working VDI it became. */
        final java.util.Map<Integer, Integer> successor = new java.util.concurrent.ConcurrentHashMap<>();

        @Override public int working(int vid) {
            Integer next;
            while ((next = successor.get(vid)) != null) vid = next;
            return vid;
        }

        @Override public NodeId holderNode(int vid) { return holder == null ? null : holderNode; }
        @Override public boolean holds(int vid, ClientInfo c) { return holder != null && holder.connectionId() == c.connectionId(); }
        @Override public NodeId self() { return SELF; }
        @Override public int askHandover(NodeId node, int vid) {
            asked.incrementAndGet();
            return handoverAnswer;
        }
    }

    @Test
    void aHolderThatFlushedIsFencedAtOnceAndGivesTheLockBack() {
        FakeCluster cluster = new FakeCluster();
        WriterLocks locks = new WriterLocks(cluster);
        WriterLocks.Writer a = locks.add(7, "v", A, WriterLocks.Standing.HOLDING);
        AtomicInteger released = new AtomicInteger();
        a.onRelease(() -> { released.incrementAndGet(); cluster.holder = null; });
        WriterLocks.Writer b = locks.add(7, "v", B, WriterLocks.Standing.WAITING);
        assertEquals(1, locks.waiting().size());
        assertTrue(a.beginWrite());
        a.endWrite();
        a.flushed(); // a migration's source flushes when it stops
        long t0 = System.nanoTime();
        assertEquals(SdResult.SUCCESS, locks.handover(7));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= WriterLocks.QUIET_FLUSHED_MS - 20 && ms < WriterLocks.QUIET_MS,
                "a flushed holder is taken over after the short quiet time: " + ms + " ms");
        assertEquals(1, released.get());
        assertEquals(WriterLocks.Standing.FENCED, a.standing());
        assertFalse(a.beginWrite(), "a fenced writer never writes again");
        b.holding();
        assertTrue(b.beginWrite());
        b.endWrite();
    }

    @Test
    void aHolderWithAWriteInFlightIsFencedOnlyAfterIt() throws Exception {
        FakeCluster cluster = new FakeCluster();
        WriterLocks locks = new WriterLocks(cluster);
        WriterLocks.Writer a = locks.add(7, "v", A, WriterLocks.Standing.HOLDING);
        a.onRelease(() -> cluster.holder = null);
        assertTrue(a.beginWrite());
        Thread finisher = Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(300);
            } catch (InterruptedException ignored) {
                return;
            }
            a.endWrite();
            a.flushed();
        });
        long t0 = System.nanoTime();
        assertEquals(SdResult.SUCCESS, locks.handover(7));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 250, "waited for the write in flight: " + ms + " ms");
        finisher.join();
        assertEquals(WriterLocks.Standing.FENCED, a.standing());
    }

    @Test
    void aHolderThatKeepsWritingKeepsTheLock() throws Exception {
        FakeCluster cluster = new FakeCluster();
        WriterLocks locks = new WriterLocks(cluster);
        WriterLocks.Writer a = locks.add(7, "v", A, WriterLocks.Standing.HOLDING);
        a.onRelease(() -> cluster.holder = null);
        java.util.concurrent.CountDownLatch wrote = new java.util.concurrent.CountDownLatch(1);
        Thread busy = Thread.ofVirtual().start(() -> {
            long end = System.nanoTime() + (WriterLocks.HANDOVER_WAIT_MS + 1000) * 1_000_000;
            while (System.nanoTime() < end && a.beginWrite()) {
                a.endWrite();
                a.flushed(); // flushing after every write does not make it quiet
                wrote.countDown();
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        wrote.await();
        assertEquals(SdResult.VDI_LOCKED, locks.handover(7), "a busy holder is not taken over");
        assertEquals(WriterLocks.Standing.HOLDING, a.standing());
        busy.join();
    }

    @Test
    void aLockHeldOutsideThisNodesNbdWritersIsNotHandedOver() {
        FakeCluster cluster = new FakeCluster();
        WriterLocks locks = new WriterLocks(cluster);
        assertEquals(SdResult.VDI_LOCKED, locks.handover(7), "held by a Sheepdog-protocol client, say");
        cluster.holder = null;
        assertEquals(SdResult.SUCCESS, locks.handover(7), "free");
    }

    /** A lock held through another node, whose HANDOVER_VDI answer is {@code answer}. */
    private static FakeCluster heldOnAnotherNode(int answer) {
        FakeCluster cluster = new FakeCluster();
        cluster.holderNode = NodeId.of("127.0.0.1", 7001);
        cluster.handoverAnswer = answer;
        return cluster;
    }

    private static long inMs(long ms) { return System.nanoTime() + ms * 1_000_000; }

    /**
     * A holder on a node that does not answer (killed, not yet evicted): the taker waits until the cluster evicts
     * that node (which releases its locks) instead of being refused at once, so a VM whose gateway died and that
     * reconnected through another sheep sees a pause, not write errors.
     */
    @Test
    void aTakerWaitsForAHolderNodeThatDoesNotAnswerToBeEvicted() throws Exception {
        FakeCluster cluster = heldOnAnotherNode(SdResult.NETWORK_ERROR);
        WriterLocks locks = new WriterLocks(cluster);
        Thread evict = Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(700);
            } catch (InterruptedException e) {
                return;
            }
            cluster.holder = null; // the node left: the cluster released its locks
        });
        long t0 = System.nanoTime();
        assertEquals(SdResult.SUCCESS, locks.askHolder(7, inMs(WriterLocks.HOLDER_GONE_WAIT_MS)));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        evict.join();
        assertTrue(ms >= 650, "waited for the eviction: " + ms + " ms");
        assertTrue(cluster.asked.get() >= 2, "asked the holder's node again while waiting: " + cluster.asked.get());
    }

    @Test
    void aTakerStopsWaitingAtItsDeadline() throws Exception {
        WriterLocks locks = new WriterLocks(heldOnAnotherNode(SdResult.NETWORK_ERROR));
        long t0 = System.nanoTime();
        assertEquals(SdResult.NETWORK_ERROR, locks.askHolder(7, inMs(400)), "the holder's node never answered");
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 380 && ms < 2000, "gave up at the deadline: " + ms + " ms");
    }

    @Test
    void aHolderNodeThatAnswersBusyIsNotWaitedFor() throws Exception {
        FakeCluster cluster = heldOnAnotherNode(SdResult.VDI_LOCKED);
        assertEquals(SdResult.VDI_LOCKED, new WriterLocks(cluster).askHolder(7, inMs(WriterLocks.HOLDER_GONE_WAIT_MS)));
        assertEquals(1, cluster.asked.get());
    }

    /**
     * A migration after snapshots: the holder opened VID 7, which snapshots made 9 (its lock moved along); the taker
     * opened the VDI as 9 and asks the holder's node to hand 9 over: the holder filed under 7 is the one it means.
     */
    @Test
    void aHandoverFindsTheHolderThatOpenedTheVdiBeforeItsSnapshots() {
        FakeCluster cluster = new FakeCluster();
        WriterLocks locks = new WriterLocks(cluster);
        WriterLocks.Writer a = locks.add(7, "v", A, WriterLocks.Standing.HOLDING);
        AtomicInteger released = new AtomicInteger();
        a.onRelease(() -> { released.incrementAndGet(); cluster.holder = null; });
        a.flushed();
        cluster.successor.put(7, 8);
        cluster.successor.put(8, 9);
        assertEquals(SdResult.SUCCESS, locks.handover(9));
        assertEquals(1, released.get());
        assertEquals(WriterLocks.Standing.FENCED, a.standing());
        // a VDI nobody here writes: nothing to hand over, and nothing held
        assertEquals(SdResult.SUCCESS, locks.handover(42));
    }
}
