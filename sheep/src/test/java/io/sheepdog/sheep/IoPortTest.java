package io.sheepdog.sheep;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Header48;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.cluster.InJvmClusterBus;
import java.io.DataInputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The I/O port ({@code sheep -i}, net/IoPortServer): advertised in the node id, used by the other nodes' gateways for
 * the copies they write, served a request at a time per connection; a node without one ({@code -i off}) gets its
 * copies on the main port.
 */
class IoPortTest {
    @TempDir Path dir;
    final InJvmClusterBus bus = new InJvmClusterBus();
    final List<Sheep> nodes = new ArrayList<>();

    Sheep startNode(int i, boolean ioPort) throws Exception {
        return startNode(i, ioPort, false);
    }

    Sheep startNode(int i, boolean ioPort, boolean sync) throws Exception {
        int port = SheepCoreTest.freePort();
        Sheep s = new Sheep(SheepOptions.builder(dir.resolve("s" + i)).port(port).zone(i).bindAddr("127.0.0.1")
                .ioPort(null, ioPort ? 0 : SheepOptions.NO_IO_PORT).cluster("injvm").foreground(true).noSync(!sync).build(),
                bus.newDriver());
        s.start();
        nodes.add(s);
        return s;
    }

    @AfterEach void stop() {
        for (Sheep s : nodes) s.close();
    }

    @Test void copiesGoToTheIoPortsAndANodeWithoutOneGetsThemOnItsMainPort() throws Exception {
        startNode(0, true);
        startNode(1, true);
        startNode(2, false);
        ReplicationTest.waitFor(() -> nodes.get(0).state().view().members().size() == 3, "3 members");
        for (SdNode n : nodes.get(1).state().view().members()) {
            Sheep s = nodes.stream().filter(x -> x.options().port() == n.nid().port()).findFirst().orElseThrow();
            if (s.ioPort() == null) assertEquals(0, n.nid().ioPort(), "-i off: no I/O port advertised");
            else assertEquals(s.ioPort().port(), n.nid().ioPort(), "the I/O port is in the node id the others see");
        }
        assertNull(nodes.get(2).ioPort());
        Random rnd = new Random(3);
        byte[][] data = new byte[6][];
        int vid;
        try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(1).options().port())) {
            vid = ReplicationTest.formatAndCreateVdi(c, 3, "io");
            long before = nodes.get(0).ioPort().requestsServed();
            for (int i = 0; i < data.length; i++) {
                // small (sent by the request thread) and large (sent by a sender thread) payloads
                data[i] = new byte[i % 2 == 0 ? 4096 : 1 << 20];
                rnd.nextBytes(data[i]);
                Reply w = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(vid, i)).flags(SdFlags.CMD_WRITE)
                        .dataLength(data[i].length), data[i]);
                assertEquals(SdResult.SUCCESS, w.result());
            }
            assertTrue(nodes.get(0).ioPort().requestsServed() - before >= data.length, "node 0's copies came through its I/O port");
            assertTrue(nodes.get(0).ioPort().connections() >= 1, "the gateway's link stays open for the next request");
        }
        // the bytes of every copy, on every node's disk, the one without an I/O port included
        for (int n = 0; n < 3; n++) {
            for (int i = 0; i < data.length; i++) {
                Path f = dir.resolve("s" + n + "/obj/" + Oids.fileName(Oids.dataOid(vid, i)));
                assertArrayEquals(data[i], java.util.Arrays.copyOf(Files.readAllBytes(f), data[i].length), "node " + n + " object " + i);
            }
        }
    }

    /**
     * A replica's write of whole aligned blocks is read from the I/O port's socket into an aligned buffer and written
     * from it (net/IoPortServer, "one buffer"); any other write as before. Durable writes (no -n), so that the store
     * may take the buffer as it is; the bytes of every copy must be the same either way.
     */
    @Test void alignedCopiesGoFromTheSocketToTheDiskInOneBufferAndEveryCopyIsRight() throws Exception {
        for (int i = 0; i < 3; i++) startNode(i, true, true);
        ReplicationTest.waitFor(() -> nodes.get(0).state().view().members().size() == 3, "3 members");
        int obj = 4 << 20;
        byte[] want = new byte[obj];
        Random rnd = new Random(11);
        int vid;
        try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(1).options().port())) {
            vid = ReplicationTest.formatAndCreateVdi(c, 3, "one");
            long oid = Oids.dataOid(vid, 0);
            byte[] first = new byte[4096];
            rnd.nextBytes(first);
            assertEquals(SdResult.SUCCESS, c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(oid).flags(SdFlags.CMD_WRITE)
                    .dataLength(first.length), first).result());
            System.arraycopy(first, 0, want, 0, first.length);
            long before = nodes.stream().mapToLong(n -> n.ioPort().oneBufferWrites()).sum();
            // {offset, length}: a block, a MiB, the whole object (a large buffer), then two that are not whole blocks
            long[][] writes = {{8192, 4096}, {1 << 20, 1 << 20}, {0, obj}, {12288, 4096}, {5000, 100}, {4096, 6000}};
            int aligned = 4;
            for (long[] w : writes) {
                byte[] d = new byte[(int) w[1]];
                rnd.nextBytes(d);
                Reply r = c.call(SdRequest.of(Opcodes.WRITE_OBJ).objOid(oid).objOffset(w[0]).flags(SdFlags.CMD_WRITE)
                        .dataLength(d.length), d);
                assertEquals(SdResult.SUCCESS, r.result(), "write at " + w[0]);
                System.arraycopy(d, 0, want, (int) w[0], d.length);
            }
            long oneBuffer = nodes.stream().mapToLong(n -> n.ioPort().oneBufferWrites()).sum() - before;
            // two of the three copies of each write go to another node's I/O port
            assertEquals(2L * aligned, oneBuffer, "the aligned writes' remote copies, each in one buffer");
        }
        for (int n = 0; n < 3; n++) {
            Path f = dir.resolve("s" + n + "/obj/" + Oids.fileName(Oids.dataOid(vid, 0)));
            assertArrayEquals(want, java.util.Arrays.copyOf(Files.readAllBytes(f), obj), "node " + n + "'s copy");
        }
    }

    /**
     * The gateway's side of one buffer: an NBD write of whole aligned blocks is copied once, from the network buffers
     * the NBD server lends, into an aligned buffer that the gateway's own copy is written from and the other copies
     * are sent from (nbd/VdiExportProvider, Gateway.writeBody). Writes that are not of whole aligned blocks go as
     * arrays. Every copy on every node's disk must hold exactly what was written, either way.
     */
    @Test void nbdWritesOfAlignedBlocksReachEveryCopyFromOneBuffer() throws Exception {
        for (int i = 0; i < 3; i++) startNode(i, true, true);
        ReplicationTest.waitFor(() -> nodes.get(0).state().view().members().size() == 3, "3 members");
        int obj = 4 << 20, objects = 3;
        byte[] model = new byte[objects * obj];
        Random rnd = new Random(29);
        int vid;
        try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(1).options().port())) {
            vid = ReplicationTest.formatAndCreateVdi(c, 3, "nbd");
        }
        Sheep gw = nodes.get(1);
        io.sheepdog.sheep.nbd.VdiExportProvider provider = new io.sheepdog.sheep.nbd.VdiExportProvider(gw.processor());
        try (io.sheepdog.sheep.nbd.NbdExport e = provider.open("nbd", false)) {
            // first an unaligned write over all three objects: it creates them (creations go as arrays)
            write(e, 1, model.length - 2, rnd, model);
            // {offset, length, the pieces that go as one buffer at least, at most}: a block; a MiB inside an object;
            // 8 MiB across three objects (pieces of 1, 4 and 3 MiB: large buffers are few, shared by the process (here
            // by the three nodes), so a piece that finds none goes as an array); writes not of whole aligned blocks
            long[][] writes = {{8192, 4096, 1, 1}, {1 << 20, 1 << 20, 1, 1}, {3 << 20, 8 << 20, 1, 3},
                    {5000, 100, 0, 0}, {4096, 6000, 0, 0}, {obj - 512, 4096, 0, 0}};
            for (long[] w : writes) {
                long before = gw.gateway().bodyWrites();
                write(e, w[0], (int) w[1], rnd, model);
                long one = gw.gateway().bodyWrites() - before;
                assertTrue(one >= w[2] && one <= w[3], "write at " + w[0] + "+" + w[1] + ": " + one + " pieces in one buffer");
            }
        }
        for (int n = 0; n < 3; n++) {
            for (int i = 0; i < objects; i++) {
                Path f = dir.resolve("s" + n + "/obj/" + Oids.fileName(Oids.dataOid(vid, i)));
                byte[] want = java.util.Arrays.copyOfRange(model, i * obj, (i + 1) * obj);
                assertArrayEquals(want, java.util.Arrays.copyOf(Files.readAllBytes(f), obj), "node " + n + " object " + i);
            }
        }
    }

    /** Writes random bytes lent as the NBD server lends them (a composite of direct pieces), and into the model. */
    private static void write(io.sheepdog.sheep.nbd.NbdExport e, long off, int len, Random rnd, byte[] model) throws Exception {
        byte[] d = new byte[len];
        rnd.nextBytes(d);
        io.netty.buffer.CompositeByteBuf c = io.netty.buffer.PooledByteBufAllocator.DEFAULT.compositeDirectBuffer(64);
        try {
            for (int at = 0; at < len; ) {
                int n = Math.min(len - at, 1 + rnd.nextInt(700_000));
                c.addComponent(true, io.netty.buffer.PooledByteBufAllocator.DEFAULT.directBuffer(n).writeBytes(d, at, n));
                at += n;
            }
            e.write(off, c, true);
        } finally {
            c.release();
        }
        System.arraycopy(d, 0, model, (int) off, len);
    }

    @Test void theIoPortSaysWhoseItIsAndAnswersEachRequestOnItsConnection() throws Exception {
        Sheep s = startNode(0, true);
        ReplicationTest.waitFor(() -> s.state().view().members().size() == 1, "1 member");
        try (Socket sock = new Socket("127.0.0.1", s.ioPort().port())) {
            DataInputStream in = new DataInputStream(sock.getInputStream());
            OutputStream out = sock.getOutputStream();
            byte[] greeting = new byte[NodeId.SIZE];
            in.readFully(greeting);
            NodeId who = NodeId.decode(ByteBuffer.wrap(greeting));
            assertEquals(s.state().self().nid(), who);
            assertEquals(s.ioPort().port(), who.ioPort());
            for (int id = 7; id < 10; id++) {
                SdRequest read = SdRequest.of(Opcodes.READ_PEER).objOid(Oids.dataOid(0x42, id)).epoch(s.state().epoch()).dataLength(4096).id(id);
                out.write(read.bytes());
                byte[] h = new byte[Header48.SIZE];
                in.readFully(h);
                SdResponse rsp = new SdResponse(h);
                assertEquals(id, rsp.id(), "the reply echoes the request's id");
                assertNotEquals(SdResult.SUCCESS, rsp.result(), "no such object");
                in.readFully(new byte[(int) rsp.dataLength()]);
            }
            // a payload larger than any request may carry: the connection closes (the stream cannot be resynchronised)
            SdRequest huge = SdRequest.of(Opcodes.WRITE_PEER).objOid(Oids.dataOid(0x42, 1)).flags(SdFlags.CMD_WRITE)
                    .dataLength(Integer.MAX_VALUE).id(11);
            out.write(huge.bytes());
            sock.setSoTimeout(10_000);
            assertEquals(-1, in.read(), "closed");
        }
        ReplicationTest.waitFor(() -> s.ioPort().connections() == 0, "the connection's thread ended");
    }

    /**
     * A node serves at most so many I/O port connections (a flood of idle ones must not run it out of threads and
     * direct memory): past the limit a connection is closed before the greeting, and a gateway whose link is refused
     * sends its copies to the main port instead, so writes go on and every copy is right.
     */
    @Test void connectionsPastTheLimitAreRefusedAndCopiesGoToTheMainPortInstead() throws Exception {
        startNode(0, true);
        Sheep full = startNode(1, true);
        ReplicationTest.waitFor(() -> nodes.get(0).state().view().members().size() == 2, "2 members");
        full.ioPort().maxConnections(3);
        List<Socket> held = new ArrayList<>();
        try {
            int greeted = 0;
            int refused = 0;
            for (int i = 0; i < 8; i++) {
                Socket sock = new Socket("127.0.0.1", full.ioPort().port());
                held.add(sock);
                sock.setSoTimeout(10_000);
                byte[] greeting = sock.getInputStream().readNBytes(NodeId.SIZE);
                if (greeting.length == NodeId.SIZE) greeted++;
                else if (greeting.length == 0) refused++;
            }
            // (node 0's gateway may hold a link of its own there already)
            assertEquals(8, greeted + refused, "each greeted or closed at once");
            assertTrue(greeted >= 1 && greeted <= 3, "at most 3 served: " + greeted);
            assertTrue(full.ioPort().connections() <= 3, "at most 3 open: " + full.ioPort().connections());

            Random rnd = new Random(5);
            byte[][] data = new byte[4][];
            int vid;
            try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(0).options().port())) {
                vid = ReplicationTest.formatAndCreateVdi(c, 2, "full");
                for (int i = 0; i < data.length; i++) {
                    data[i] = new byte[4096];
                    rnd.nextBytes(data[i]);
                    Reply w = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(vid, i)).flags(SdFlags.CMD_WRITE)
                            .dataLength(data[i].length), data[i]);
                    assertEquals(SdResult.SUCCESS, w.result(), "written while node 1's I/O port is full");
                }
            }
            for (int n = 0; n < 2; n++) {
                for (int i = 0; i < data.length; i++) {
                    Path f = dir.resolve("s" + n + "/obj/" + Oids.fileName(Oids.dataOid(vid, i)));
                    assertArrayEquals(data[i], java.util.Arrays.copyOf(Files.readAllBytes(f), data[i].length), "node " + n + " object " + i);
                }
            }
        } finally {
            for (Socket sock : held) sock.close();
        }
        // the held ones gone, their places are free again
        ReplicationTest.waitFor(() -> full.ioPort().connections() < 3, "the held connections' threads ended");
        try (Socket sock = new Socket("127.0.0.1", full.ioPort().port())) {
            sock.setSoTimeout(10_000);
            assertEquals(NodeId.SIZE, sock.getInputStream().readNBytes(NodeId.SIZE).length, "greeted again");
        }
    }

    /**
     * Write headers whose payloads never come hold the budget for requests between sheep (24 MiB): seven of 4 MiB
     * would stall every copy sent to the node for as long as they stay. Each is closed once its payload is later
     * than the limit (1 s here, 30 s by default), and the copies go on.
     */
    @Test void aPayloadThatDoesNotComeIsCutOffAndTheCopiesGoOn() throws Exception {
        startNode(0, true);
        Sheep slow = startNode(1, true);
        ReplicationTest.waitFor(() -> nodes.get(0).state().view().members().size() == 2, "2 members");
        slow.ioPort().payloadTimeoutMs(1000);
        List<Socket> held = new ArrayList<>();
        try {
            for (int i = 0; i < 7; i++) {
                Socket sock = new Socket("127.0.0.1", slow.ioPort().port());
                held.add(sock);
                sock.setSoTimeout(15_000);
                assertEquals(NodeId.SIZE, sock.getInputStream().readNBytes(NodeId.SIZE).length, "greeted");
                SdRequest w = SdRequest.of(Opcodes.WRITE_PEER).objOid(Oids.dataOid(0x77, i)).flags(SdFlags.CMD_WRITE)
                        .epoch(slow.state().epoch()).dataLength(4 << 20).id(i + 1);
                OutputStream out = sock.getOutputStream();
                out.write(w.bytes());
                out.write(new byte[100]);
                out.flush();
            }
            byte[] data = new byte[4096];
            new Random(7).nextBytes(data);
            long t0 = System.nanoTime();
            int vid;
            try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(0).options().port())) {
                vid = ReplicationTest.formatAndCreateVdi(c, 2, "slow");
                Reply w = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(vid, 0)).flags(SdFlags.CMD_WRITE)
                        .dataLength(data.length), data);
                assertEquals(SdResult.SUCCESS, w.result());
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 10_000, "the copies went on within seconds: " + ms + " ms");
            Path f = dir.resolve("s1/obj/" + Oids.fileName(Oids.dataOid(vid, 0)));
            assertArrayEquals(data, java.util.Arrays.copyOf(Files.readAllBytes(f), data.length), "node 1's copy");
            for (Socket sock : held) {
                try {
                    assertEquals(-1, sock.getInputStream().read(), "closed by the node, with no reply");
                } catch (java.net.SocketException e) {
                    // reset by the node: closed too
                }
            }
        } finally {
            for (Socket sock : held) sock.close();
        }
    }
}
