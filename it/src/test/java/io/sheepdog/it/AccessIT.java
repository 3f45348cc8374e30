package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.client.SheepClient;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@code sheep --allow} and {@code --admin-allow} on real sheep: clients connect from other loopback addresses
 * (the whole of 127.0.0.0/8 is this host) by binding their sockets to them. A client allowed in but not an admin
 * gets "access denied" for every cluster-changing request and for the requests only sheep send each other, and
 * nothing changes; a client from an address not allowed is closed at once, on the Sheepdog port and on the NBD port.
 */
@ExtendWith(MiniClusterExtension.class)
class AccessIT {
    private static final int MiB = 1 << 20;

    @Test
    void nonAdminsChangeNothingAndStrangersAreClosed() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("access").nodes(3).copies(3)
                .sheepArgs("--allow", "127.0.0.1,127.0.0.2", "--admin-allow", "127.0.0.1").build().start()) {
            // dog runs from 127.0.0.1: an admin address (and the members' own)
            c.dog("vdi", "create", "v", "8M").assertOk();
            byte[] data = new byte[MiB];
            new Random(5).nextBytes(data);
            c.dogWithInput(data, "vdi", "write", "v", "0", Integer.toString(MiB)).assertOk();
            int epoch = c.epoch(c.node(0));
            int port = c.node(0).port();
            int vid;
            try (var conn = c.connect(c.node(0))) {
                vid = new SheepClient(conn).getVdiInfo("v", 0, "").vid();
            }

            // from 127.0.0.2: let in, may read, may not change the cluster nor speak as a sheep
            assertEquals(SdResult.SUCCESS, call("127.0.0.2", port, SdRequest.of(Opcodes.READ_VDIS).dataLength(Proto.VDI_BITMAP_BYTES), null));
            assertEquals(SdResult.SUCCESS, call("127.0.0.2", port, SdRequest.of(Opcodes.GET_NODE_LIST).dataLength(4096), null));
            byte[] name = SheepClient.nameTag("v", "");
            int[] denied = {
                call("127.0.0.2", port, SdRequest.of(Opcodes.MAKE_FS).vdiCopies(3).flags(SdFlags.CMD_WRITE), null),
                call("127.0.0.2", port, SdRequest.of(Opcodes.DEL_VDI).flags(SdFlags.CMD_WRITE).dataLength(name.length), name),
                call("127.0.0.2", port, SdRequest.of(Opcodes.SHUTDOWN), null),
                call("127.0.0.2", port, SdRequest.of(Opcodes.KILL_NODE), null),
                call("127.0.0.2", port, SdRequest.of(Opcodes.DISABLE_RECOVER), null),
                call("127.0.0.2", port, new SdRequest().opcode(Opcodes.WRITE_PEER).protoVer(Proto.SHEEP_PROTO_VER)
                        .epoch(epoch).objOid(io.sheepdog.proto.Oids.inodeOid(vid)).flags(SdFlags.CMD_WRITE)
                        .dataLength(512), new byte[512]),
            };
            for (int r : denied) assertEquals(SdResult.ACCESS_DENIED, r, "a non-admin request: " + SdResult.message(r));

            // from 127.0.0.5: closed at once, on both ports
            assertClosed("127.0.0.5", port);
            assertClosed("127.0.0.5", c.node(0).nbdPort());

            // nothing changed: the same epoch, every node up, the VDI and its bytes still there
            assertEquals(epoch, c.epoch(c.node(0)));
            assertEquals(3, c.liveNodes().size());
            assertTrue(c.dog("vdi", "list").assertOk().stdout().contains("v "), "the VDI is still there");
            byte[] back = c.dog("vdi", "read", "v", "0", Integer.toString(MiB)).assertOk().stdoutBytes();
            assertArrayEquals(data, back);
            assertTrue(c.node(0).logContains("refused MAKE_FS from 127.0.0.2"), "the refusal is logged");
            assertTrue(c.node(0).logContains("connection from 127.0.0.5"), "the closed connection is logged");
            // dog from an admin address still may
            c.dog("vdi", "delete", "v").assertOk();
        }
    }

    /** Sends one request from {@code from} and returns the result of its reply. */
    private static int call(String from, int port, SdRequest req, byte[] payload) throws IOException {
        try (Socket s = new Socket()) {
            s.bind(new InetSocketAddress(from, 0));
            s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
            s.setSoTimeout(30_000);
            OutputStream out = s.getOutputStream();
            out.write(req.bytes());
            if (payload != null) out.write(payload);
            out.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] h = new byte[48];
            in.readFully(h);
            SdResponse rsp = new SdResponse(h);
            in.skipNBytes(rsp.dataLength());
            return rsp.result();
        }
    }

    private static void assertClosed(String from, int port) throws IOException {
        try (Socket s = new Socket()) {
            s.bind(new InetSocketAddress(from, 0));
            s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
            s.setSoTimeout(10_000);
            InputStream in = s.getInputStream();
            try {
                s.getOutputStream().write(SdRequest.of(Opcodes.GET_NODE_LIST).dataLength(4096).bytes());
                int b = in.read();
                // the NBD port would greet with its magic first: a connection let in reads bytes, a closed one -1
                assertEquals(-1, b, "a connection from " + from + " to port " + port + " must be closed");
            } catch (SocketException | EOFException e) {
                // reset: closed as well
            }
        }
    }
}
