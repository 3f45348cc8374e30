package io.sheepdog.client;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import java.io.IOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class ConnectionPoolTest {

    @Test
    void pipelinedRepliesAreMatchedById() throws Exception {
        try (ModelSheep sheep = new ModelSheep(); ConnectionPool pool = new ConnectionPool(2, 2000)) {
            sheep.format();
            int vid = sheep.createVdi("pipe", 64L << 20);
            SheepClient c = new SheepClient(pool.peer("127.0.0.1", sheep.port()));
            // distinct content per object, then read back with replies arriving in random order
            for (int i = 0; i < 16; i++) {
                byte[] d = new byte[512];
                java.util.Arrays.fill(d, (byte) i);
                c.createAndWriteObj(Oids.dataOid(vid, i), 0, 0, d, 1, 0);
            }
            sheep.maxDelayMs = 20;
            List<CompletableFuture<byte[]>> fs = new ArrayList<>();
            for (int round = 0; round < 4; round++) {
                for (int i = 0; i < 16; i++) fs.add(c.readObjAsync(Oids.dataOid(vid, i), 0, 512, 0, 0, 0));
            }
            for (int k = 0; k < fs.size(); k++) {
                byte[] d = fs.get(k).get();
                assertEquals((byte) (k % 16), d[0], "reply " + k + " matched to the wrong request");
                assertEquals((byte) (k % 16), d[511]);
            }
            assertTrue(pool.openConnections("127.0.0.1", sheep.port()) >= 1);
            assertTrue(pool.openConnections("127.0.0.1", sheep.port()) <= 2);
        }
    }

    @Test
    void submitAllSendsTogetherAndMatchesEveryReply() throws Exception {
        try (ModelSheep sheep = new ModelSheep(); ConnectionPool pool = new ConnectionPool(2, 2000)) {
            sheep.format();
            int vid = sheep.createVdi("batch", 64L << 20);
            SheepClient c = new SheepClient(pool.peer("127.0.0.1", sheep.port()));
            for (int i = 0; i < 16; i++) {
                byte[] d = new byte[1 << 20];
                java.util.Arrays.fill(d, (byte) (i + 1));
                c.createAndWriteObj(Oids.dataOid(vid, i), 0, 0, d, 1, 0);
            }
            sheep.maxDelayMs = 10;
            // small replies and replies far larger than the connection's read-ahead buffer, out of order
            long[] oids = new long[16];
            for (int i = 0; i < 16; i++) oids[i] = Oids.dataOid(vid, i);
            List<CompletableFuture<byte[]>> small = c.readObjsAsync(oids, 100, 8);
            List<CompletableFuture<byte[]>> large = c.readObjsAsync(oids, 0, 1 << 20);
            for (int i = 0; i < 16; i++) {
                assertArrayEquals(filled(8, i + 1), small.get(i).get(), "small reply " + i);
                assertArrayEquals(filled(1 << 20, i + 1), large.get(i).get(), "large reply " + i);
            }
            // a failing request fails alone
            List<CompletableFuture<byte[]>> mixed = c.readObjsAsync(new long[] {oids[0], Oids.dataOid(vid, 40), oids[1]}, 0, 4);
            assertArrayEquals(filled(4, 1), mixed.get(0).get());
            var e = assertThrows(java.util.concurrent.ExecutionException.class, () -> mixed.get(1).get());
            assertEquals(SdResult.NO_OBJ, ((SheepdogException) e.getCause()).result());
            assertArrayEquals(filled(4, 2), mixed.get(2).get());
        }
    }

    @Test
    void submitAllRefusesRequestsWithAPayload() throws Exception {
        try (ModelSheep sheep = new ModelSheep(); SheepConnection conn = SheepConnection.open("127.0.0.1", sheep.port())) {
            sheep.format();
            int vid = sheep.createVdi("refuse", 4L << 20);
            SdRequest write = SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).flags(io.sheepdog.proto.SdFlags.CMD_WRITE)
                    .dataLength(4).objOid(Oids.dataOid(vid, 0));
            SdRequest read = SdRequest.of(Opcodes.READ_OBJ).dataLength(4).objOid(Oids.inodeOid(vid));
            List<CompletableFuture<Reply>> fs = conn.submitAll(List.of(write, read));
            var e = assertThrows(java.util.concurrent.ExecutionException.class, () -> fs.get(0).get());
            assertInstanceOf(IllegalArgumentException.class, e.getCause());
            assertTrue(fs.get(1).get().ok(), "the other request still goes out");
            assertFalse(sheep.hasObject(Oids.dataOid(vid, 0)));
        }
    }

    static byte[] filled(int n, int v) {
        byte[] b = new byte[n];
        java.util.Arrays.fill(b, (byte) v);
        return b;
    }

    @Test
    void manyVirtualThreadsShareThePool() throws Exception {
        try (ModelSheep sheep = new ModelSheep(); ConnectionPool pool = new ConnectionPool(4, 2000);
             var exec = Executors.newVirtualThreadPerTaskExecutor()) {
            sheep.format();
            sheep.maxDelayMs = 2;
            int vid = sheep.createVdi("many", 4L << 20);
            new SheepClient(pool.peer("127.0.0.1", sheep.port())).createAndWriteObj(Oids.dataOid(vid, 0), 0, 0, new byte[0], 1, 0);
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 64; t++) {
                int id = t;
                fs.add(exec.submit(() -> {
                    SheepClient c = new SheepClient(pool.peer("127.0.0.1", sheep.port()));
                    for (int k = 0; k < 20; k++) {
                        byte[] mine = new byte[8];
                        java.util.Arrays.fill(mine, (byte) id);
                        c.writeObj(Oids.dataOid(vid, 0), id * 8L, mine);
                        assertArrayEquals(mine, c.readObj(Oids.dataOid(vid, 0), id * 8L, 8));
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) f.get();
            assertTrue(pool.openConnections("127.0.0.1", sheep.port()) <= 4);
        }
    }

    @Test
    void brokenConnectionsAreReplaced() throws Exception {
        try (ModelSheep sheep = new ModelSheep(); ConnectionPool pool = new ConnectionPool(2, 2000)) {
            sheep.format();
            SheepClient c = new SheepClient(pool.peer("127.0.0.1", sheep.port()));
            assertEquals(1, c.getNodeList().size());
            sheep.dropConnections();
            // the reader notices EOF asynchronously; a request sent before it did may fail, the next ones must not
            for (int i = 0; i < 50 && pool.openConnections("127.0.0.1", sheep.port()) > 0; i++) Thread.sleep(10);
            assertEquals(1, c.getNodeList().size());
            assertEquals(1, pool.openConnections("127.0.0.1", sheep.port()));
        }
    }

    @Test
    void connectionRefusedIsAClearIOException() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) { port = s.getLocalPort(); }
        try (ConnectionPool pool = new ConnectionPool()) {
            SheepClient c = new SheepClient(pool.peer("127.0.0.1", port));
            IOException e = assertThrows(IOException.class, c::getNodeList);
            assertEquals("failed to connect to 127.0.0.1:" + port + ": Connection refused", e.getMessage());
        }
    }

    @Test
    void serverErrorsCarryTheResultCode() throws Exception {
        try (ModelSheep sheep = new ModelSheep(); ConnectionPool pool = new ConnectionPool()) {
            sheep.format();
            SheepClient c = new SheepClient(pool.peer("127.0.0.1", sheep.port()));
            SheepdogException e = assertThrows(SheepdogException.class, () -> c.getVdiInfo("nope", 0, ""));
            assertEquals(SdResult.NO_VDI, e.result());
            assertEquals("No VDI found", e.getMessage());
            // an unknown opcode: the model answers INVALID_PARMS
            Reply r = c.exec(SdRequest.of(Opcodes.FLUSH_VDI), null);
            assertEquals(SdResult.INVALID_PARMS, r.result());
        }
    }
}
