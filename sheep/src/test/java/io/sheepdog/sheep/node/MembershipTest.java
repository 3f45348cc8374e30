package io.sheepdog.sheep.node;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.ops.OpMessage;
import io.sheepdog.sheep.parts.OneNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Membership on its own (no Sheep, no cluster driver): the main phase of a format, and a member's departure. */
class MembershipTest {
    @TempDir
    Path dir;

    @Test
    void aFormatStartsTheClusterAtEpochOneAndSavesTheConfig() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            n.state.setSettings(io.sheepdog.sheep.node.ClusterSettings.NONE);
            n.state.setView(Proto.STATUS_WAIT, 0, List.of(n.self), List.of(n.self));
            n.store.create(io.sheepdog.proto.Oids.dataOid(5, 5), 4096, null, 0, new byte[] {1});
            SdRequest h = SdRequest.of(Opcodes.MAKE_FS).flags(io.sheepdog.proto.SdFlags.CMD_WRITE).clusterCopies(2)
                    .clusterCtime(12345).clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES);
            byte[] store = "tree".getBytes(StandardCharsets.US_ASCII);
            OpMessage m = new OpMessage(0, h, store, SdResponse.replyTo(h, SdResult.SUCCESS), new byte[0]);
            assertEquals(SdResult.SUCCESS, n.membership.clusterMain(n.self, m).result());
            assertEquals(Proto.STATUS_OK, n.state.status());
            assertEquals(1, n.state.epoch());
            assertEquals(2, n.state.settings().copies());
            assertEquals(12345, n.state.settings().ctime());
            assertEquals("tree", n.state.settings().defaultStore());
            assertNotNull(n.epochLog.read(1));
            assertTrue(n.store.list().isEmpty(), "a format empties the store");
            assertEquals(List.of("store tree", "saveConfig"), n.events);
        }
    }

    @Test
    void aMemberLeavingMakesANewEpochAndStartsRecovery() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            SdNode other = new SdNode(NodeId.of("127.0.0.2", 7000), Proto.DEFAULT_VNODES, 1, 1L << 30);
            n.epochLog.write(2, List.of(n.self, other), 2);
            n.state.setView(Proto.STATUS_OK, 2, List.of(n.self, other), List.of(n.self, other));
            n.membership.onLeave(other, List.of(n.self));
            assertEquals(3, n.state.epoch());
            assertEquals(List.of(n.self.nid()), n.state.view().members().stream().map(SdNode::nid).toList());
            EpochRecordCheck.assertMembers(n.epochLog, 3, n.self.nid());
            // the run for epoch 3 finds nothing to bring here and tells every node (here: the broadcast list)
            long deadline = System.currentTimeMillis() + 10_000;
            while (n.broadcasts.isEmpty() && System.currentTimeMillis() < deadline) Thread.sleep(20);
            assertEquals(1, n.broadcasts.size());
            assertEquals(Opcodes.COMPLETE_RECOVERY, n.broadcasts.get(0).opcode());
            assertEquals(3, n.broadcasts.get(0).objTgtEpoch());
        }
    }

    /** Reads an epoch record's member list. */
    static final class EpochRecordCheck {
        static void assertMembers(EpochLog log, int epoch, NodeId... want) throws java.io.IOException {
            var rec = log.read(epoch);
            assertNotNull(rec, "epoch " + epoch + " recorded");
            assertEquals(List.of(want), rec.nodes.stream().map(SdNode::nid).toList());
        }
    }
}
