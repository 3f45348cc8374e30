package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
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
                .sheepProperty("sheepdog.payloadTimeoutMs", PAYLOAD_TIMEOUT_MS)
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
                for (int i = 0; i < 2; i++) slow.add(sheepWriteHeader(gateway.port(), false, Opcodes.WRITE_OBJ, 32 * MiB, i));
                int ioPort = IoPortBlockedIT.ioPortOf(replica);
                for (int i = 0; i < 7; i++) slow.add(sheepWriteHeader(ioPort, true, Opcodes.WRITE_PEER, 4 * MiB, i));
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
            assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
            assertTrue(w.longestStallMs() < STALL_BOUND_MS, fig);
            assertTrue(dogMs < STALL_BOUND_MS, fig);
            assertEquals(slow.size(), closedByNodes, fig);
            CommandResult read = c.dog("vdi", "read", "d", "0", "1M");
            assertEquals(0, read.exitCode(), read.toString());
        }
    }

    /**
     * And clients that send large NBD reads and never read the replies: before a read's room was held until its reply
     * was written (it was given back once the reply was built), 30 connections with two 32 MiB reads each ran node 1
     * out of direct memory (OutOfDirectMemoryError on its NBD reads). Now the replies stay within the NBD budget
     * (48 MiB), each such connection whose reads got room is closed once it has read nothing for the reply limit
     * (60 s by default, {@code -Dsheepdog.replyTimeoutMs}; 5 s here), and a checked writer through the same port goes
     * on.
     */
    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void readersThatNeverReadTheirRepliesHoldBoundedMemoryAndAreClosed() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("slow-readers").nodes(3).copies(3).sync(true)
                .sheepProperty("sheepdog.replyTimeoutMs", PAYLOAD_TIMEOUT_MS)
                .build().start()) {
            c.dog("vdi", "create", "v", "32M").assertOk();
            c.dog("vdi", "create", "r", "64M").assertOk();
            SheepNode gateway = c.node(1);
            Path ackLog = c.dir().resolve("acks.log");
            CheckedNbdWriter w = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(gateway.nbdPort()), 8, ackLog).start(62);
            List<Socket> unread = new ArrayList<>();
            long peakRssKiB = 0;
            int closedByNode = 0;
            try {
                assertTrue(w.awaitAcks(300, 60), "the writer got going");
                for (int i = 0; i < 30; i++) unread.add(nbdReadsNeverRead(gateway.nbdPort(), "r", 2, 32 * MiB));
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(8);
                while (System.nanoTime() < until) {
                    peakRssKiB = Math.max(peakRssKiB, IoPortBlockedIT.rssKiB(gateway));
                    Thread.sleep(250);
                }
                assertTrue(w.awaitAcks(500, 60), "the writer goes on: acknowledged " + w.acknowledged());
                for (Socket s : unread) {
                    if (endedByServer(s)) closedByNode++;
                }
                peakRssKiB = Math.max(peakRssKiB, IoPortBlockedIT.rssKiB(gateway));
            } finally {
                w.close();
                for (Socket s : unread) s.close();
            }
            c.waitForRecovery();
            CheckedNbdWriter.Verification v = w.verifyThrough(gateway.nbdPort(), c.node(0).nbdPort());
            String fig = String.format("SLOW READERS on node 1's NBD port (30 x 2 reads of 32 MiB never read, limit %d ms): acknowledged %d, "
                    + "lost %d, mismatched %d, error replies %s, longest stall %d ms, peak RSS %d MiB, %d of %d closed by the node",
                    PAYLOAD_TIMEOUT_MS, w.acknowledged(), v.lost(), v.mismatched(), w.errorReplies(), w.longestStallMs(),
                    peakRssKiB >> 10, closedByNode, unread.size());
            CheckedNbdWriter.record(fig);
            v.assertClean();
            assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
            assertTrue(w.longestStallMs() < STALL_BOUND_MS, fig);
            assertTrue(peakRssKiB < 256 << 10, fig);
            // the connections whose reads got room (one 32 MiB read at a time fits the 48 MiB budget beside the
            // writer's) were closed once they had read nothing for the limit; those whose reads still wait for room
            // hold nothing and stay open
            assertTrue(closedByNode >= 1, fig);
            String log = gateway.logTail(100_000);
            assertTrue(log.contains("has read none of its replies"), "the node said why it closed them: " + fig);
            assertTrue(!log.contains("OutOfDirectMemoryError"), "no allocation failed: " + fig);
        }
    }

    /**
     * Whether the server has ended the connection (an end or a reset): what it had sent before is read and dropped, at
     * most 8 MiB (more than the socket buffers hold), so that a connection still open is not drained into a reader's.
     */
    private static boolean endedByServer(Socket s) throws IOException {
        byte[] sink = new byte[1 << 16];
        s.setSoTimeout(200);
        InputStream in = s.getInputStream();
        for (long got = 0; got < (8 << 20); ) {
            try {
                int n = in.read(sink);
                if (n < 0) return true;
                got += n;
            } catch (SocketTimeoutException e) {
                return false; // nothing more and no end: open
            } catch (SocketException e) {
                return true; // reset
            }
        }
        return false;
    }

    /**
     * An NBD connection with a small receive buffer that sends {@code n} reads of {@code length} bytes and reads none
     * of the replies (until {@link #endsWithin} drains it).
     */
    private static Socket nbdReadsNeverRead(int port, String export, int n, long length) throws IOException {
        Socket s = new Socket();
        s.setReceiveBufferSize(4096);
        s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        s.setSoTimeout(10_000);
        DataInputStream in = new DataInputStream(s.getInputStream());
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        CheckedNbdWriter.handshake(in, out, export);
        for (int i = 0; i < n; i++) CheckedNbdWriter.requestHeader(out, CheckedNbdWriter.CMD_READ, 100 + i, 0, (int) length);
        out.flush();
        return s;
    }

    /** An NBD connection that sends the header of a write of {@code length} bytes and 100 bytes of its payload. */
    private static Socket nbdWriteHeader(int port, String export, long length) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        s.setSoTimeout(10_000);
        DataInputStream in = new DataInputStream(s.getInputStream());
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        CheckedNbdWriter.handshake(in, out, export);
        CheckedNbdWriter.requestHeader(out, CheckedNbdWriter.CMD_WRITE, 42, 0, (int) length);
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
        SdRequest w = SdRequest.of(op).flags(SdFlags.CMD_WRITE).id(i + 1).dataLength(length)
                .objOid(0x00f0_0000_0000_0000L + i); // an object id nobody uses
        s.getOutputStream().write(w.bytes());
        s.getOutputStream().write(new byte[100]);
        s.getOutputStream().flush();
        return s;
    }
}
