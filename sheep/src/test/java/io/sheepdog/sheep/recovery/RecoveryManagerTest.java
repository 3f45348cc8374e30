package io.sheepdog.sheep.recovery;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.sheep.parts.OneNode;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Recovery on its own (no Sheep): what no longer belongs here becomes stale, and completion is announced. */
class RecoveryManagerTest {
    @TempDir
    Path dir;

    private static void awaitBroadcasts(OneNode n, int count) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 10_000;
        while (n.broadcasts.size() < count && System.currentTimeMillis() < deadline) Thread.sleep(20);
        assertEquals(count, n.broadcasts.size());
    }

    @Test
    void aRunAtTheSameEpochKeepsWhatIsHereAndAnnouncesCompletion() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            long oid = Oids.dataOid(3, 1);
            n.store.create(oid, 4096, null, 0, new byte[] {7});
            n.recovery.startLocal("a test");
            awaitBroadcasts(n, 1);
            assertEquals(Opcodes.COMPLETE_RECOVERY, n.broadcasts.get(0).opcode());
            assertEquals(1, n.broadcasts.get(0).objTgtEpoch());
            assertTrue(n.store.exists(oid), "the only node holds every object");
            assertFalse(n.recovery.inRecovery());
            n.recovery.awaitRecovered(oid); // no run: returns at once
        }
    }

    @Test
    void objectsThatMovedAwayBecomeStaleCopies() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            SdNode other = new SdNode(NodeId.of("127.0.0.2", 7000), Proto.DEFAULT_VNODES, 1, 1L << 30);
            for (int i = 0; i < 40; i++) n.store.create(Oids.dataOid(3, i), 4096, null, 0, new byte[] {1});
            // a second node joins (it holds nothing: unreachable here): with one copy, part of the objects are its
            n.recovery.start(2, List.of(n.self), 1);
            n.state.setView(Proto.STATUS_OK, 2, List.of(n.self, other), List.of(n.self, other));
            long deadline = System.currentTimeMillis() + 10_000;
            while (n.recovery.inRecovery() && System.currentTimeMillis() < deadline) Thread.sleep(20);
            int kept = n.store.list().size();
            int stale = n.store.listStaleCopies().size();
            assertEquals(40, kept + stale, "every object is either still placed here or kept as a stale copy");
            assertTrue(stale > 5 && kept > 5, "the ring split them: kept " + kept + ", stale " + stale);
            for (var c : n.store.listStaleCopies()) assertEquals(1, c.epoch(), "kept at the epoch they were current in");
        }
    }
}
