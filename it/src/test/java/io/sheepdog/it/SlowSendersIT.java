package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Clients that send the header of a large write and then almost nothing of its payload, on every front door at once:
 * node 1's NBD port (three writes of 16 MiB: its whole 48 MiB budget), node 1's main port (a write of 32 MiB: its
 * whole budget for clients) and node 2's I/O port (seven copies of 4 MiB: more than its 24 MiB for requests between
 * sheep). A write holds its share of the budget from its header on, so before payloads had a time limit these few
 * sockets stalled every other client of those doors for as long as they stayed open: here, the checked writer
 * through node 1's NBD port (3 copies, one of them sent to node 2's I/O port) and a {@code dog vdi write} through
 * node 1's main port. Now each such connection is closed once its payload is later than the limit (30 s by default,
 * {@code -Dsheepdog.payloadTimeoutMs}; 5 s here), its room goes back, and the writes go on: no error reply, no stall
 * much longer than the limit, every acknowledged block reads back through two nodes.
 */
@ExtendWith(MiniClusterExtension.class)
class SlowSendersIT {
    private static final long MiB = 1 << 20;
    private static final long PAYLOAD_TIMEOUT_MS = 5_000;
    /** The limit, the watch's second, and room for a busy machine. */
    private static final long STALL_BOUND_MS = PAYLOAD_TIMEOUT_MS + 10_000;

    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void writeHeadersWhosePayloadsNeverComeStallNobodyForLong() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("slow-senders").nodes(3).copies(3).sync(true)
                .sheepJavaOpts("-Xms32m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dsheepdog.payloadTimeoutMs=" + PAYLOAD_TIMEOUT_MS)
                .build().start()) {
            c.dog("vdi", "create", "v", "32M").assertOk();
            c.dog("vdi", "create", "d", "64M").assertOk();
            SheepNode gateway = c.node(1);
            SheepNode replica = c.node(2);
            Path ackLog = c.dir().resolve("acks.log");
            CheckedNbdWriter w = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(gateway.nbdPort()), 8, ackLog).start(61);
            List<Socket> slow = new ArrayList<>();
            long dogMs;
            int closedByNodes = 0;
            try {
                assertTrue(w.awaitAcks(300, 60), "the writer got going");
                long stallBefore = w.longestStallMs();
                for (int i = 0; i < 3; i++) slow.add(nbdWriteHeader(gateway.nbdPort(), "v", 16 * MiB));
                for (int i = 0; i < 2; i++) slow.add(sheepWriteHeader(gateway.port(), false, 0x03, 32 * MiB, i));
                int ioPort = IoPortBlockedIT.ioPortOf(replica);
                for (int i = 0; i < 7; i++) slow.add(sheepWriteHeader(ioPort, true, 0xA5, 4 * MiB, i));
                long t0 = System.nanoTime();
                byte[] data = new byte[1 << 20];
                new Random(9).nextBytes(data);
                CommandResult dog = c.dogAt(gateway, data, "vdi", "write", "d", "0", "1M");
                dogMs = (System.nanoTime() - t0) / 1_000_000;
                assertEquals(0, dog.exitCode(), "dog vdi write through node 1's main port: " + dog);
                assertTrue(w.awaitAcks(500, 60), "the writer goes on: acknowledged " + w.acknowledged());
                // every slow socket was closed by its node
                for (Socket s : slow) {
                    s.setSoTimeout(20_000);
                    try {
                        InputStream in = s.getInputStream();
                        while (in.read() >= 0) {
                            // an NBD error reply, or nothing: read to the end
                        }
                        closedByNodes++;
                    } catch (SocketTimeoutException e) {
                        // still open: counted as not closed
                    } catch (SocketException e) {
                        closedByNodes++; // reset
                    }
                }
                KillRestartIT.log("slow senders: dog's write took " + dogMs + " ms; the writer's longest stall "
                        + w.longestStallMs() + " ms (before them " + stallBefore + " ms)");
            } finally {
                w.close();
                for (Socket s : slow) s.close();
            }
            c.waitForRecovery();
            CheckedNbdWriter.Verification v = w.verifyThrough(gateway.nbdPort(), c.node(0).nbdPort());
            String fig = String.format("SLOW SENDERS on the NBD, main and I/O ports (limit %d ms): acknowledged %d, lost %d, "
                    + "mismatched %d, error replies %s, longest stall %d ms, dog's write %d ms, %d of %d slow connections closed by the nodes",
                    PAYLOAD_TIMEOUT_MS, w.acknowledged(), v.lost(), v.mismatched(), w.errorReplies(), w.longestStallMs(), dogMs,
                    closedByNodes, slow.size());
            CheckedNbdWriter.record(fig);
            v.assertClean();
            assertEquals(0L, w.errorReplies().values().stream().reduce(0L, Long::sum), "no error reply: " + fig);
            assertTrue(w.longestStallMs() < STALL_BOUND_MS, fig);
            assertTrue(dogMs < STALL_BOUND_MS, fig);
            assertEquals(slow.size(), closedByNodes, fig);
            CommandResult read = c.dog("vdi", "read", "d", "0", "1M");
            assertEquals(0, read.exitCode(), read.toString());
        }
    }

    /** An NBD connection that sends the header of a write of {@code length} bytes and 100 bytes of its payload. */
    private static Socket nbdWriteHeader(int port, String export, long length) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        s.setSoTimeout(10_000);
        DataInputStream in = new DataInputStream(s.getInputStream());
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        CheckedNbdWriter.handshake(in, out, export);
        out.writeInt(0x25609513); // request magic
        out.writeShort(0);
        out.writeShort(1); // NBD_CMD_WRITE
        out.writeLong(42);
        out.writeLong(0);
        out.writeInt((int) length);
        out.write(new byte[100]);
        out.flush();
        return s;
    }

    /**
     * A Sheepdog-protocol connection (a sheep's main port, or its I/O port, which greets first) that sends the header
     * of a write of {@code length} bytes with opcode {@code op} and 100 bytes of its payload.
     */
    private static Socket sheepWriteHeader(int port, boolean greets, int op, long length, int i) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        s.setSoTimeout(10_000);
        if (greets) new DataInputStream(s.getInputStream()).readFully(new byte[40]);
        ByteBuffer h = ByteBuffer.allocate(48).order(ByteOrder.LITTLE_ENDIAN);
        h.put((byte) 2).put((byte) op).putShort((short) 1 /* SD_FLAG_CMD_WRITE */).putInt(0).putInt(i + 1).putInt((int) length);
        h.putLong(0x00f0_0000_0000_0000L + i); // an object id nobody uses
        s.getOutputStream().write(h.array());
        s.getOutputStream().write(new byte[100]);
        s.getOutputStream().flush();
        return s;
    }
}
