package io.sheepdog.sheep.vdi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Proto;
import org.junit.jupiter.api.Test;

/** The lock rules of {@link VdiRegistry}: ordered events decide, a peer's snapshot only fills in what they did not touch. */
class VdiRegistryTest {
    private static final NodeId A = NodeId.of("127.0.0.1", 7000), B = NodeId.of("127.0.0.1", 7001);
    private static final NodeId CLIENT = NodeId.of("127.0.0.1", 40000);
    private static final int VID = 0x1e5c0;

    /** A peer that still holds {@code VID} locked by {@code owner}: its GET_VDI_COPIES answer. */
    private static byte[] peerWithLock(NodeId owner) {
        VdiRegistry peer = new VdiRegistry();
        peer.add(VID, 0, 3, 0, 22, 0);
        assertTrue(peer.lock(VID, owner, CLIENT, 9));
        return peer.encodeStates();
    }

    @Test
    void aJoinerTakesTheLocksOfLiveMembers() {
        VdiRegistry joiner = new VdiRegistry();
        joiner.merge(peerWithLock(A), owner -> true);
        VdiState s = joiner.state(VID);
        assertTrue(s.locked());
        assertEquals(A, s.lockOwner);
        assertEquals(9, s.lockConnection);
        assertEquals(3, s.nrCopies);
    }

    /**
     * The case a chaos run found: a gateway restarted at once; its new self pulled the VDI state from a member that
     * had not yet applied the old self's leave, and the other members pulled from the joiner, so a lock released by
     * that leave came back everywhere and no client could take it again.
     */
    @Test
    void aLockReleasedByAnEventDoesNotComeBackFromAnOlderSnapshot() {
        VdiRegistry member = new VdiRegistry();
        member.add(VID, 0, 3, 0, 22, 0);
        assertTrue(member.lock(VID, A, CLIENT, 9));
        byte[] before = member.encodeStates();
        member.unlockAllOf(A); // A left
        member.merge(before, owner -> true);
        assertFalse(member.state(VID).locked(), "released by A's leave, and it stays released");

        VdiRegistry other = new VdiRegistry();
        other.add(VID, 0, 3, 0, 22, 0);
        assertTrue(other.lock(VID, A, CLIENT, 9));
        other.release(VID, A, 9);
        other.merge(before, owner -> true);
        assertFalse(other.state(VID).locked(), "released by its client, and it stays released");
    }

    @Test
    void locksOfNodesTheFilterRefusesOrWithNoFilterAreNotTaken() {
        VdiRegistry joiner = new VdiRegistry();
        joiner.merge(peerWithLock(A), owner -> !owner.equals(A)); // A: this node's former self, or gone
        assertFalse(joiner.state(VID).locked());
        assertEquals(3, joiner.state(VID).nrCopies, "the rest of the state is taken");
        joiner.merge(peerWithLock(B), null);
        assertFalse(joiner.state(VID).locked(), "no locks from this pull at all");
        joiner.merge(peerWithLock(B), owner -> true);
        assertEquals(B, joiner.state(VID).lockOwner);
    }

    @Test
    void lockAndReleaseFollowTheOriginalRules() {
        VdiRegistry r = new VdiRegistry();
        assertTrue(r.lock(VID, A, CLIENT, 9));
        assertTrue(r.lock(VID, A, CLIENT, 9), "the holder locking again");
        assertFalse(r.lock(VID, B, CLIENT, 10), "another holder is refused");
        r.release(VID, B, 10);
        assertTrue(r.state(VID).locked(), "release-if-owner by another leaves it");
        r.release(VID, null, 0);
        assertFalse(r.state(VID).locked(), "a forced release (dog vdi lock unlock)");
        assertNull(r.state(VID).lockOwner);
        assertEquals(Proto.LOCK_STATE_UNLOCKED, r.state(VID).lockState);
    }

    /**
     * A snapshot of a locked VDI: the writer goes on in the new working VDI, so its lock moves there (kept on the
     * snapshot, deleting the snapshot took it from the writer and left the working VDI open to a second writer).
     */
    @Test
    void aSnapshotMovesTheLockToTheNewWorkingVdi() {
        VdiRegistry r = new VdiRegistry();
        r.add(VID, 0, 3, 0, 22, 0);
        assertTrue(r.lock(VID, A, CLIENT, 9));
        r.add(VID + 1, VID, 3, 0, 22, 0); // snapshot: VID + 1 is the working VDI now
        r.add(VID + 2, VID + 1, 3, 0, 22, 0); // and another
        assertFalse(r.state(VID).locked());
        assertFalse(r.state(VID + 1).locked());
        VdiState w = r.state(VID + 2);
        assertTrue(w.locked());
        assertEquals(A, w.lockOwner);
        assertEquals(9, w.lockConnection);
        assertEquals(VID + 2, r.workingVid(VID));
        assertEquals(VID + 2, r.workingVid(VID + 1));
        assertEquals(VID + 2, r.workingVid(VID + 2));
        // deleting the old snapshot leaves the writer its lock; a second writer is refused
        r.markDeleted(VID);
        assertTrue(r.state(VID + 2).locked());
        assertFalse(r.lock(VID + 2, B, CLIENT, 10));
        // a release that names the VID the lock was taken on (its client went away before the snapshot was seen)
        // finds it where it moved
        r.release(r.workingVid(VID), A, 9);
        assertFalse(r.state(VID + 2).locked());
        // a VDI this node never saw snapshotted is its own working VDI
        assertEquals(0x777, r.workingVid(0x777));
    }
}
