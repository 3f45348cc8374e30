package io.sheepdog.sheep.gateway;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.Header48;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.TestPorts;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Links to a peer, against a stand-in peer on a real socket: one request at a time per link, links reused, a reply
 * read by the caller, and every way a call can fail (a peer that never answers, a wrong reply, a peer that left)
 * answered NETWORK_ERROR without the link going back into use.
 */
class PeerPoolTest {
    /** What the stand-in peer does with a request: answer it, keep silent, or answer with another id. */
    enum Mode { ANSWER, SILENT, WRONG_ID }

    private volatile Mode mode = Mode.ANSWER;
    private ServerSocket server;
    private NodeId peer;
    private final AtomicInteger accepted = new AtomicInteger();
    private final ConcurrentLinkedQueue<Socket> sockets = new ConcurrentLinkedQueue<>();
    /** Requests the stand-in peer has read (and, when answering, answers after {@link #hold} opens). */
    private final AtomicInteger received = new AtomicInteger();
    private volatile CountDownLatch hold = new CountDownLatch(0);
    private PeerPool pool;

    @BeforeEach
    void start() throws IOException {
        int port = TestPorts.free();
        server = new ServerSocket();
        server.bind(new InetSocketAddress("127.0.0.1", port));
        peer = NodeId.of("127.0.0.1", port);
        pool = new PeerPool(2000);
        Thread.ofVirtual().start(() -> {
            while (true) {
                Socket s;
                try {
                    s = server.accept();
                } catch (IOException e) {
                    return;
                }
                accepted.incrementAndGet();
                sockets.add(s);
                Thread.ofVirtual().start(() -> serve(s));
            }
        });
    }

    /** Reads requests (header and payload) and answers each as {@link #mode} says: the payload's length and sum. */
    private void serve(Socket s) {
        try (s; DataInputStream in = new DataInputStream(s.getInputStream()); OutputStream out = s.getOutputStream()) {
            while (true) {
                byte[] h = new byte[Header48.SIZE];
                in.readFully(h);
                SdRequest req = new SdRequest(h);
                byte[] payload = new byte[(int) (req.hasFlag(SdFlags.CMD_WRITE) ? req.dataLength() : 0)];
                in.readFully(payload);
                received.incrementAndGet();
                hold.await();
                if (mode == Mode.SILENT) continue;
                byte[] data = new byte[8];
                ByteBuffer.wrap(data).putInt(payload.length).putInt(Arrays.hashCode(payload));
                SdResponse rsp = SdResponse.replyTo(req, SdResult.SUCCESS);
                if (mode == Mode.WRONG_ID) rsp.id(req.id() + 1);
                rsp.dataLength(data.length);
                out.write(rsp.bytes());
                out.write(data);
            }
        } catch (IOException | InterruptedException e) {
            // the link closed
        }
    }

    @AfterEach
    void stop() throws IOException {
        pool.close();
        server.close();
        for (Socket s : sockets) s.close();
    }

    private static SdRequest write(int len) {
        return new SdRequest().opcode(Opcodes.WRITE_PEER).flags(SdFlags.CMD_WRITE).dataLength(len);
    }

    private PeerCall call(SdRequest req, byte[] payload) throws IOException {
        PeerLink l = pool.acquire(peer);
        PeerCall c = new PeerCall.OnLink(pool, l, req, null);
        try {
            l.send(req, payload, null);
        } catch (IOException e) {
            // answered NETWORK_ERROR by await
        }
        return c;
    }

    @Test
    void aCallerReadsItsOwnReplyAndTheLinkIsReused() throws Exception {
        for (int i = 0; i < 20; i++) {
            byte[] p = new byte[4096 + i];
            Arrays.fill(p, (byte) i);
            Reply r = call(write(p.length), p).await();
            assertEquals(SdResult.SUCCESS, r.result());
            ByteBuffer b = ByteBuffer.wrap(r.data());
            assertEquals(p.length, b.getInt(), "the peer got the whole payload");
            assertEquals(Arrays.hashCode(p), b.getInt(), "and its bytes");
        }
        assertEquals(1, accepted.get(), "one request at a time: one link, reused");
        assertEquals(1, pool.openLinks(peer));
    }

    @Test
    void requestsInFlightTogetherTakeALinkEachAndTheirOwnReplies() throws Exception {
        hold = new CountDownLatch(1);
        List<PeerCall> calls = new ArrayList<>();
        List<byte[]> payloads = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            byte[] p = new byte[512 * (i + 1)];
            Arrays.fill(p, (byte) (i + 1));
            payloads.add(p);
            calls.add(call(write(p.length), p));
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (received.get() < 8 && System.nanoTime() < deadline) Thread.sleep(5);
        assertEquals(8, received.get(), "all eight sent before any reply");
        hold.countDown();
        for (int i = 7; i >= 0; i--) { // awaited in another order than sent
            Reply r = calls.get(i).await();
            assertEquals(SdResult.SUCCESS, r.result());
            assertEquals(payloads.get(i).length, ByteBuffer.wrap(r.data()).getInt());
        }
        assertEquals(8, accepted.get());
        assertEquals(8, pool.openLinks(peer), "kept for reuse");
        call(write(4), new byte[4]).await();
        assertEquals(8, accepted.get(), "an idle link was reused");
    }

    @Test
    void linksStayOpenBetweenRequestsUntilUnusedForLong() throws Exception {
        hold = new CountDownLatch(1);
        List<PeerCall> calls = new ArrayList<>();
        for (int i = 0; i < 3; i++) calls.add(call(write(8), new byte[8]));
        hold.countDown();
        for (PeerCall c : calls) assertEquals(SdResult.SUCCESS, c.await().result());
        assertEquals(3, pool.openLinks(peer));
        pool.closeIdle(TimeUnit.HOURS.toNanos(1));
        assertEquals(3, pool.openLinks(peer), "used a moment ago: kept");
        Thread.sleep(50);
        pool.closeIdle(TimeUnit.MILLISECONDS.toNanos(10));
        assertEquals(0, pool.openLinks(peer), "idle for longer than asked: closed");
        assertEquals(SdResult.SUCCESS, call(write(8), new byte[8]).await().result());
        assertEquals(4, accepted.get(), "the next request connects again");
    }

    @Test
    void aCallWhoseLinkTheWatchClosesAnswersNetworkErrorAndItsLinkIsNotReused() throws Exception {
        mode = Mode.SILENT;
        PeerCall c = call(write(4096), new byte[4096]);
        Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                return;
            }
            // as the gateway's watch does for a peer that left or hangs: close the busy link from another thread
            pool.forEachBusy(l -> l.close("the request was given up"));
        });
        long t0 = System.nanoTime();
        assertEquals(SdResult.NETWORK_ERROR, c.await().result());
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5), "ended by the close, not a timeout");
        assertEquals(0, pool.openLinks(peer), "the silent link is closed");
        mode = Mode.ANSWER;
        assertEquals(SdResult.SUCCESS, call(write(1), new byte[1]).await().result());
        assertEquals(2, accepted.get(), "a new link for the next request");
    }

    @Test
    void aReplyWithAnotherIdClosesTheLink() throws Exception {
        mode = Mode.WRONG_ID;
        assertEquals(SdResult.NETWORK_ERROR, call(write(16), new byte[16]).await().result());
        assertEquals(0, pool.openLinks(peer));
    }

    @Test
    void forgettingAPeerEndsTheCallsInFlightToIt() throws Exception {
        mode = Mode.SILENT;
        PeerCall c = call(write(16), new byte[16]);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (received.get() < 1 && System.nanoTime() < deadline) Thread.sleep(5);
        pool.forget(peer);
        assertEquals(SdResult.NETWORK_ERROR, c.await().result());
        assertEquals(0, pool.openLinks(peer));
    }

    @Test
    void anUnreachablePeerFailsToConnect() throws Exception {
        server.close();
        // the listening socket goes away once the stand-in's accept loop (a virtual thread parked in accept) has let
        // go of it, which takes a moment on a busy machine: wait until a plain connect is refused
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", peer.port()), 1000);
            } catch (IOException refused) {
                break;
            }
            assertTrue(System.nanoTime() < deadline, "the stand-in peer's port still accepts 10 s after its close");
            Thread.sleep(20);
        }
        assertThrows(IOException.class, () -> pool.acquire(peer));
    }

    /** A stand-in I/O port that greets with {@code who}'s node id, then serves as the main stand-in does. */
    private ServerSocket ioPortGreetingAs(NodeId who, AtomicInteger acceptedThere) throws IOException {
        ServerSocket io = new ServerSocket();
        io.bind(new InetSocketAddress("127.0.0.1", TestPorts.free()));
        Thread.ofVirtual().start(() -> {
            while (true) {
                Socket s;
                try {
                    s = io.accept();
                } catch (IOException e) {
                    return;
                }
                acceptedThere.incrementAndGet();
                sockets.add(s);
                try {
                    ByteBuffer b = ByteBuffer.allocate(NodeId.SIZE);
                    who.encode(b);
                    s.getOutputStream().write(b.array());
                } catch (IOException e) {
                    continue;
                }
                Thread.ofVirtual().start(() -> serve(s));
            }
        });
        return io;
    }

    private static NodeId withIoPort(NodeId n, int ioPort) {
        return new NodeId(n.addr(), n.port(), NodeId.addrBytes("127.0.0.1"), ioPort);
    }

    @Test
    void aPeerWithAnIoPortGetsItsRequestsThere() throws Exception {
        AtomicInteger there = new AtomicInteger();
        NodeId viaIo;
        try (ServerSocket io = ioPortGreetingAs(peer, there)) {
            viaIo = withIoPort(peer, io.getLocalPort());
            PeerLink l = pool.acquire(viaIo);
            PeerCall c = new PeerCall.OnLink(pool, l, write(100), null);
            l.send(write(100), new byte[100], null);
            assertEquals(SdResult.SUCCESS, c.await().result());
            assertEquals(1, there.get(), "the link went to the I/O port");
            assertEquals(0, accepted.get(), "not to the main port");
        }
    }

    @Test
    void anIoPortThatIsAnotherNodesOrClosedFallsBackToTheMainPort() throws Exception {
        AtomicInteger there = new AtomicInteger();
        // a stale view: the port is now the I/O port of another node
        try (ServerSocket io = ioPortGreetingAs(NodeId.of("127.0.0.1", peer.port() + 1), there)) {
            NodeId stale = withIoPort(peer, io.getLocalPort());
            PeerLink l = pool.acquire(stale);
            PeerCall c = new PeerCall.OnLink(pool, l, write(10), null);
            l.send(write(10), new byte[10], null);
            assertEquals(SdResult.SUCCESS, c.await().result());
            assertEquals(1, there.get(), "the I/O port was tried");
            assertEquals(1, accepted.get(), "and the request went to the main port, not to the other node");
        }
        // nothing listens on the I/O port any more
        pool.forget(peer);
        int closedPort = TestPorts.free();
        PeerLink l = pool.acquire(withIoPort(peer, closedPort));
        PeerCall c = new PeerCall.OnLink(pool, l, write(10), null);
        l.send(write(10), new byte[10], null);
        assertEquals(SdResult.SUCCESS, c.await().result());
        assertEquals(2, accepted.get(), "a refused I/O port: the main port");
    }

    @Test
    void anIoPortThatHangsIsAvoidedByTheNextLinks() throws Exception {
        AtomicInteger there = new AtomicInteger();
        try (ServerSocket silent = new ServerSocket()) {
            // accepts (the kernel does, from its backlog) and never says a word: a hung or filtered data port
            silent.bind(new InetSocketAddress("127.0.0.1", TestPorts.free()));
            Thread.ofVirtual().start(() -> {
                try {
                    while (true) {
                        sockets.add(silent.accept());
                        there.incrementAndGet();
                    }
                } catch (IOException e) {
                    // closed
                }
            });
            NodeId viaIo = withIoPort(peer, silent.getLocalPort());
            long t0 = System.nanoTime();
            PeerLink first = pool.acquire(viaIo);
            assertFalse(first.viaIoPort(), "fell back to the main port after the I/O port's greeting did not come");
            assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(1500), "it waited for the greeting");
            // the first link is in use: the next request needs a link of its own, and goes to the main port at once
            t0 = System.nanoTime();
            PeerLink second = pool.acquire(viaIo);
            assertTrue(System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(1000), "no second wait for the I/O port");
            assertFalse(second.viaIoPort());
            PeerCall c1 = new PeerCall.OnLink(pool, first, write(10), null);
            first.send(write(10), new byte[10], null);
            PeerCall c2 = new PeerCall.OnLink(pool, second, write(20), null);
            second.send(write(20), new byte[20], null);
            assertEquals(SdResult.SUCCESS, c1.await().result());
            assertEquals(SdResult.SUCCESS, c2.await().result());
            assertEquals(2, accepted.get(), "both served on the main port");
            waitUntil(() -> there.get() >= 1);
            assertEquals(1, there.get(), "the I/O port was tried once");
        }
    }

    private static void waitUntil(java.util.function.BooleanSupplier c) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!c.getAsBoolean() && System.nanoTime() < deadline) Thread.sleep(10);
    }

    @Test
    void idleLinksToAnIoPortThatFailedAreClosed() throws Exception {
        AtomicInteger there = new AtomicInteger();
        try (ServerSocket io = ioPortGreetingAs(peer, there)) {
            NodeId viaIo = withIoPort(peer, io.getLocalPort());
            PeerLink a = pool.acquire(viaIo);
            PeerLink b = pool.acquire(viaIo);
            assertTrue(a.viaIoPort() && b.viaIoPort());
            pool.release(b); // idle
            pool.avoidIoPort(viaIo); // a call on a gave up (the gateway's watch)
            assertFalse(b.isOpen(), "the idle link to the I/O port is closed");
            PeerLink c = pool.acquire(viaIo);
            assertFalse(c.viaIoPort(), "the next link goes to the main port");
            assertTrue(a.isOpen(), "a link in use ends with its call, not before");
        }
    }
}
