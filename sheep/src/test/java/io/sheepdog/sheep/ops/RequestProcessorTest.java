package io.sheepdog.sheep.ops;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.access.AccessOptions;
import io.sheepdog.sheep.access.AddressAllowList;
import io.sheepdog.sheep.parts.OneNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The request chain on its own (no Sheep): version check, the cluster-state gate and routing by the opcode table. */
class RequestProcessorTest {
    @TempDir
    Path dir;

    private static Reply process(OneNode n, SdRequest h, byte[] data) {
        return n.processor.process(new Request(h, data, ClientInfo.INTERNAL));
    }

    @Test
    void routesEachKindOfOpcode() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            long oid = Oids.dataOid(0x10, 0);
            // peer (an internal opcode needs the sheep protocol version)
            SdRequest bad = new SdRequest().opcode(Opcodes.CREATE_AND_WRITE_PEER).protoVer(Proto.PROTO_VER).epoch(1)
                    .objOid(oid).dataLength(512).flags(SdFlags.CMD_WRITE);
            assertEquals(SdResult.VER_MISMATCH, process(n, bad, new byte[512]).result());
            SdRequest create = new SdRequest().opcode(Opcodes.CREATE_AND_WRITE_PEER).protoVer(Proto.SHEEP_PROTO_VER)
                    .epoch(1).objOid(oid).dataLength(512).flags(SdFlags.CMD_WRITE);
            assertEquals(SdResult.SUCCESS, process(n, create, new byte[512]).result());
            assertTrue(n.store.exists(oid));
            // gateway
            SdRequest read = SdRequest.of(Opcodes.READ_OBJ).objOid(oid).dataLength(512);
            Reply r = process(n, read, Request.NO_DATA);
            assertEquals(SdResult.SUCCESS, r.result());
            assertEquals(512, r.data().length);
            assertEquals(read.id(), r.header().id());
            // local
            SdRequest stores = SdRequest.of(Opcodes.GET_STORE_LIST).dataLength(512);
            assertEquals("tree plain ", new String(process(n, stores, Request.NO_DATA).data(), StandardCharsets.US_ASCII));
            SdRequest level = SdRequest.of(Opcodes.SET_LOGLEVEL).flags(SdFlags.CMD_WRITE).dataLength(4);
            assertEquals(SdResult.SUCCESS, process(n, level, new byte[] {3, 0, 0, 0}).result());
            assertEquals(List.of("loglevel 3"), n.events);
            // not an opcode
            assertEquals(SdResult.INVALID_PARMS, process(n, SdRequest.of(0x7e), Request.NO_DATA).result());
            // noted by the framing but not served over the port
            assertEquals(SdResult.INVALID_PARMS, process(n, SdRequest.of(Opcodes.COMPLETE_RECOVERY), Request.NO_DATA).result());
        }
    }

    @Test
    void aNodeThatIsNotRunningServesOnlyWhatTheTableAllows() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            n.state.setSettings(io.sheepdog.sheep.node.ClusterSettings.NONE);
            n.state.setView(Proto.STATUS_WAIT, 0, List.of(n.self), List.of(n.self));
            SdRequest create = SdRequest.of(Opcodes.NEW_VDI).flags(SdFlags.CMD_WRITE).dataLength(256);
            assertEquals(SdResult.WAIT_FOR_FORMAT, process(n, create, new byte[256]).result());
            SdRequest read = SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(1, 1)).dataLength(512);
            assertEquals(SdResult.WAIT_FOR_FORMAT, process(n, read, Request.NO_DATA).result());
            SdRequest nodes = SdRequest.of(Opcodes.GET_NODE_LIST).dataLength(4096);
            Reply r = process(n, nodes, Request.NO_DATA);
            assertEquals(SdResult.SUCCESS, r.result(), "dog can look at a node waiting for a format");
            n.state.setStatus(Proto.STATUS_SHUTDOWN);
            assertEquals(SdResult.SHUTDOWN, process(n, read, Request.NO_DATA).result());
        }
    }

    @Test
    void restrictedAccessRefusesPeerIoFromClientsAndAdminOpsFromOthers() throws Exception {
        AccessOptions restricted = new AccessOptions(null, false, AddressAllowList.parse("10.0.0.0/8"),
                AddressAllowList.parse("10.1.1.1"));
        try (OneNode n = new OneNode(dir, restricted)) {
            ClientInfo stranger = new ClientInfo(NodeId.of("10.2.3.4", 1).addr(), 5555, 9);
            SdRequest peerRead = new SdRequest().opcode(Opcodes.READ_PEER).protoVer(Proto.SHEEP_PROTO_VER).epoch(1)
                    .objOid(Oids.dataOid(1, 1)).dataLength(512);
            assertEquals(SdResult.ACCESS_DENIED, n.processor.process(new Request(peerRead, Request.NO_DATA, stranger)).result());
            SdRequest kill = SdRequest.of(Opcodes.KILL_NODE);
            assertEquals(SdResult.ACCESS_DENIED, n.processor.process(new Request(kill, Request.NO_DATA, stranger)).result());
            assertTrue(n.events.isEmpty(), "nothing done: " + n.events);
            ClientInfo admin = new ClientInfo(NodeId.of("10.1.1.1", 1).addr(), 5555, 10);
            assertEquals(SdResult.SUCCESS, n.processor.process(new Request(kill, Request.NO_DATA, admin)).result());
            assertEquals(List.of("kill"), n.events);
        }
    }
}
