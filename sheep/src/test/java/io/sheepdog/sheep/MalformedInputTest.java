package io.sheepdog.sheep;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.sheep.net.SdFrameDecoder;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input on the Sheepdog port: error results or a closed connection, never a crash, a hang or a changed object. */
class MalformedInputTest {
    @TempDir Path dir;
    Sheep sheep;
    int port;
    int vid;
    byte[] content = new byte[8192];

    @BeforeEach void start() throws Exception {
        port = SheepCoreTest.freePort();
        sheep = new Sheep(SheepOptions.builder(dir.resolve("store")).port(port).zone(0).bindAddr("127.0.0.1").cluster("solo").foreground(true).logDir(dir).noSync(true).build());
        sheep.start();
        try (SheepConnection c = SheepConnection.open("127.0.0.1", port)) {
            SdRequest f = SdRequest.of(Opcodes.MAKE_FS).clusterCopies(1).clusterCtime(5L << 32).clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES).flags(SdFlags.CMD_WRITE).dataLength(6);
            assertEquals(SdResult.SUCCESS, c.call(f, "plain\0".getBytes()).result());
            vid = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1L << 30).flags(SdFlags.CMD_WRITE).dataLength(256), Strings.fixed("m", 256)).header().vdiVid();
            new Random(3).nextBytes(content);
            assertEquals(SdResult.SUCCESS, c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(vid, 0))
                    .flags(SdFlags.CMD_WRITE).dataLength(content.length), content).result());
        }
    }

    @AfterEach void stop() { sheep.close(); }

    private void assertObjectUnchangedAndServerAlive() throws Exception {
        try (SheepConnection c = SheepConnection.open("127.0.0.1", port)) {
            Reply r = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(vid, 0)).dataLength(content.length));
            assertEquals(SdResult.SUCCESS, r.result());
            assertArrayEquals(content, r.data());
        }
    }

    @Test void truncatedHeaderAndCutPayload() throws Exception {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.getOutputStream().write(new byte[20]); // a third of a header, then gone
        }
        SdRequest w = SdRequest.of(Opcodes.WRITE_OBJ).objOid(Oids.dataOid(vid, 0)).flags(SdFlags.CMD_WRITE).dataLength(4096);
        try (Socket s = new Socket("127.0.0.1", port)) {
            OutputStream o = s.getOutputStream();
            o.write(w.bytes());
            o.write(new byte[1000]); // connection cut mid-payload: nothing may be written
        }
        Thread.sleep(200);
        assertObjectUnchangedAndServerAlive();
    }

    @Test void oversizePayloadClosesTheConnection() throws Exception {
        SdRequest w = SdRequest.of(Opcodes.WRITE_OBJ).objOid(Oids.dataOid(vid, 0)).flags(SdFlags.CMD_WRITE).dataLength(0xF0000000L);
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(5000);
            s.getOutputStream().write(w.bytes());
            InputStream in = s.getInputStream();
            assertEquals(-1, in.read(), "server closes a connection that announces an impossible payload");
        }
        assertObjectUnchangedAndServerAlive();
    }

    @Test void garbageHeadersGetErrors() throws Exception {
        Random rnd = new Random(11);
        try (SheepConnection c = SheepConnection.open("127.0.0.1", port)) {
            for (int i = 0; i < 300; i++) {
                byte[] h = new byte[48];
                rnd.nextBytes(h);
                SdRequest r = new SdRequest(h).flags(0).dataLength(rnd.nextInt(4096)); // no payload, bounded reply buffer
                if (r.opcode() == Opcodes.KILL_NODE || r.opcode() == Opcodes.SHUTDOWN || r.opcode() == Opcodes.MAKE_FS) continue;
                Reply rep = c.call(r);
                assertTrue(rep.result() != SdResult.SUCCESS || rep.data().length <= r.dataLength());
            }
        }
        assertObjectUnchangedAndServerAlive();
    }

    @Test void badErasureCodeFieldsAreRefused() throws Exception {
        try (SheepConnection c = SheepConnection.open("127.0.0.1", port)) {
            int epoch = sheep.state().epoch();
            long oid = Oids.dataOid(vid, 0);
            for (int[] policyIndex : new int[][] {{0x30, 0}, {0x91, 0}, {0x11, 3}, {0x22, 6}, {0xF0, 0}}) {
                SdRequest w = SdRequest.of(Opcodes.CREATE_AND_WRITE_PEER).epoch(epoch).objOid(oid).objCopyPolicy(policyIndex[0])
                        .objEcIndex(policyIndex[1]).flags(SdFlags.CMD_WRITE | SdFlags.CMD_FWD).dataLength(512);
                assertEquals(SdResult.INVALID_PARMS, c.call(w, new byte[512]).result(), java.util.Arrays.toString(policyIndex));
            }
            // a valid strip of a replicated object is a different file: the object itself is untouched
            SdRequest strip = SdRequest.of(Opcodes.READ_PEER).epoch(epoch).objOid(oid).objCopyPolicy(0x11).objEcIndex(1)
                    .flags(SdFlags.CMD_FWD).dataLength(512);
            assertEquals(SdResult.NO_OBJ, c.call(strip).result());
            // erasure code fields on an inode are ignored: inodes are always replicated
            SdRequest inode = SdRequest.of(Opcodes.READ_PEER).epoch(epoch).objOid(Oids.inodeOid(vid)).objCopyPolicy(0x22)
                    .objEcIndex(9).flags(SdFlags.CMD_FWD).dataLength(16);
            assertEquals(SdResult.SUCCESS, c.call(inode).result());
        }
        try (var files = java.nio.file.Files.list(dir.resolve("store").resolve("obj"))) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().contains("_")), "no strip file was created");
        }
        assertObjectUnchangedAndServerAlive();
    }

    @Test void badVdiRequests() throws Exception {
        try (SheepConnection c = SheepConnection.open("127.0.0.1", port)) {
            byte[] name = new byte[512];
            System.arraycopy(Strings.fixed("no-such-vdi", 256), 0, name, 0, 256);
            assertEquals(SdResult.NO_VDI, c.call(SdRequest.of(Opcodes.GET_VDI_INFO).flags(SdFlags.CMD_WRITE).dataLength(512), name).result());
            assertEquals(SdResult.INVALID_PARMS, c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1 << 20).flags(SdFlags.CMD_WRITE)
                    .dataLength(300), new byte[300]).result(), "a name field over 256 bytes");
            assertEquals(SdResult.INVALID_PARMS, c.call(SdRequest.of(Opcodes.WRITE_OBJ).objOid(Oids.dataOid(vid, 0))
                    .objOffset((4 << 20) - 10).flags(SdFlags.CMD_WRITE).dataLength(100), new byte[100]).result(), "write past object end");
            assertEquals(SdResult.INVALID_PARMS, c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(vid, 0))
                    .dataLength(64 << 20)).result(), "read beyond the object size");
            assertEquals(SdResult.VER_MISMATCH, c.call(SdRequest.of(Opcodes.READ_OBJ).protoVer(9).objOid(Oids.dataOid(vid, 0))
                    .dataLength(10)).result());
            assertEquals(SdResult.VER_MISMATCH, c.call(new SdRequest().opcode(Opcodes.READ_PEER).protoVer(2).objOid(Oids.dataOid(vid, 0))
                    .dataLength(10)).result());
        }
        assertObjectUnchangedAndServerAlive();
    }

    @Test void decoderFramesPipelinedRequestsAndWaitsForPartialOnes() {
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(new io.sheepdog.sheep.net.PayloadBudget(64L << 20)));
        SdRequest a = SdRequest.of(Opcodes.READ_OBJ).id(1).dataLength(4096);
        SdRequest b = SdRequest.of(Opcodes.WRITE_OBJ).id(2).flags(SdFlags.CMD_WRITE).dataLength(5);
        ByteBuf in = Unpooled.buffer();
        in.writeBytes(a.bytes()).writeBytes(b.bytes()).writeBytes(new byte[] {1, 2, 3});
        ch.writeInbound(in);
        SdFrameDecoder.Frame f1 = ch.readInbound();
        assertEquals(1, f1.hdr().id());
        assertEquals(0, f1.data().length);
        Object none = ch.readInbound();
        assertTrue(none == null, "payload incomplete: no frame yet");
        ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {4, 5}));
        SdFrameDecoder.Frame f2 = ch.readInbound();
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5}, f2.data());
        SdRequest huge = SdRequest.of(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE).dataLength(Proto.MAX_REQUEST_DATA + 1L);
        ch.writeInbound(Unpooled.wrappedBuffer(huge.bytes()));
        assertTrue(!ch.isOpen(), "oversize payload closes the channel");
    }
}
