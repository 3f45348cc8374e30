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
