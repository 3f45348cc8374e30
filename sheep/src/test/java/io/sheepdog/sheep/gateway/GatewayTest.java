package io.sheepdog.sheep.gateway;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.parts.OneNode;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The gateway on its own (no Sheep, no network): a one-node ring, so every copy is the local store. */
class GatewayTest {
    @TempDir
    Path dir;

    @Test
    void createWriteReadAndRemoveLandInTheStore() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            long oid = Oids.dataOid(0x77, 3);
            byte[] a = new byte[8192];
            Arrays.fill(a, (byte) 0x5a);
            SdRequest create = SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).flags(SdFlags.CMD_WRITE).objOid(oid)
                    .objOffset(4096).dataLength(a.length).objCopies(1);
            assertEquals(SdResult.SUCCESS, n.gateway.handle(Request.internal(create, a)).result());
            assertArrayEquals(a, n.store.read(oid, 4096, a.length), "on disk");
            assertArrayEquals(new byte[4096], n.store.read(oid, 0, 4096), "the rest of the object is zeros");

            SdRequest read = SdRequest.of(Opcodes.READ_OBJ).objOid(oid).objOffset(4096).dataLength(a.length);
            Reply r = n.gateway.handle(Request.internal(read, Request.NO_DATA));
            assertEquals(SdResult.SUCCESS, r.result());
            assertArrayEquals(a, r.data());

            byte[] b = new byte[512];
            Arrays.fill(b, (byte) 1);
            SdRequest write = SdRequest.of(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE).objOid(oid).objOffset(4096)
                    .dataLength(b.length).objCopies(1);
            assertEquals(SdResult.SUCCESS, n.gateway.handle(Request.internal(write, b)).result());
            assertArrayEquals(b, n.store.read(oid, 4096, 512));

            SdRequest remove = SdRequest.of(Opcodes.REMOVE_OBJ).objOid(oid).objCopies(1);
            assertEquals(SdResult.SUCCESS, n.gateway.handle(Request.internal(remove, Request.NO_DATA)).result());
            assertFalse(n.store.exists(oid));
        }
    }

    @Test
    void withNoLivingNodeIoHalts() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            n.state.setView(Proto.STATUS_OK, 2, List.of(), List.of());
            SdRequest read = SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(1, 1)).dataLength(512);
            assertEquals(SdResult.HALT, n.gateway.handle(Request.internal(read, Request.NO_DATA)).result());
        }
    }
}
