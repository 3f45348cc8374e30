package io.sheepdog.sheep.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** {@link FailureDetector} against stand-in members on real sockets. */
class FailureDetectorTest {

    /**
     * A member that answers heartbeats on every connection but its first, where it reads them and answers nothing
     * (a connection that went quiet for good: its far end restarted, a reply lost). Without a bound on the wait for
     * an answer, the detector kept asking on that connection and evicted a live member (a chaos run: four times in
     * 4 s); it must give the connection up and ask on a new one.
     */
    @Test
    void aHeartbeatConnectionThatGoesQuietIsReplacedAndTheMemberStays() throws Exception {
        try (StandIn quietFirst = new StandIn(1); StandIn healthy = new StandIn(0)) {
            NodeState state = withMembers(quietFirst, healthy);
            List<SdNode> evicted = new CopyOnWriteArrayList<>();
            try (FailureDetector d = new FailureDetector(state, evicted::add, 3000).start()) {
                Thread.sleep(7000);
            }
            assertEquals(List.of(), evicted, "no live member evicted");
            assertTrue(quietFirst.connections.get() >= 2, "asked again on a new connection: " + quietFirst.connections.get());
            assertTrue(quietFirst.answered.get() >= 2, "and was answered there: " + quietFirst.answered.get());
        }
    }

    /**
     * Cut off from both other members (a partition): this node must hold its I/O before the others, which evict it at
     * the failure timeout, can have moved on without it, so well within that timeout; and it evicts nobody, as it
     * hears from no majority. (Both used to happen at the whole timeout, racing within a heartbeat round.)
     */
    @Test
    void aNodeCutOffFromTheMajorityHoldsItsIoBeforeItCanHaveBeenEvicted() throws Exception {
        long timeoutMs = 6000;
        try (StandIn b0 = new StandIn(0); StandIn c0 = new StandIn(0)) {
            NodeState state = withMembers(b0, c0);
            List<SdNode> evicted = new CopyOnWriteArrayList<>();
            try (FailureDetector d = new FailureDetector(state, evicted::add, timeoutMs).start()) {
                Thread.sleep(2500);
                assertEquals(null, state.suspended(), "serving while it hears from the others");
                long t0 = System.nanoTime();
                b0.mute = true;
                c0.mute = true;
                while (state.suspended() == null && System.nanoTime() - t0 < 3 * timeoutMs * 1_000_000L) Thread.sleep(20);
                long heldAfterMs = (System.nanoTime() - t0) / 1_000_000;
                assertTrue(state.suspended() != null, "holds its I/O");
                // the others last heard from it no earlier than it last heard from them, at most a round (1 s) before
                // t0: they evict at t0 - 1 s + the timeout at the earliest
                assertTrue(heldAfterMs < timeoutMs - 1500, "held " + heldAfterMs + " ms after the cut, before the others could evict it");
                Thread.sleep(timeoutMs - heldAfterMs + 1500); // past the whole timeout since the cut
                assertEquals(List.of(), evicted, "hearing from no majority, it evicts nobody");
                b0.mute = false;
                c0.mute = false;
                long t1 = System.nanoTime();
                while (state.suspended() != null && System.nanoTime() - t1 < 10_000_000_000L) Thread.sleep(20);
                assertEquals(null, state.suspended(), "serves again once it hears from a majority at its own epoch");
            }
        }
    }

    /** The state of a node (zone 0) in a running cluster of itself and {@code b} and {@code c} (zones 1 and 2). */
    private static NodeState withMembers(StandIn b, StandIn c) {
        SdNode self = new SdNode(NodeId.of("127.0.0.1", 1), Proto.DEFAULT_VNODES, 0, 1L << 30);
        SdNode nb = new SdNode(NodeId.of("127.0.0.1", b.port()), Proto.DEFAULT_VNODES, 1, 1L << 30);
        SdNode nc = new SdNode(NodeId.of("127.0.0.1", c.port()), Proto.DEFAULT_VNODES, 2, 1L << 30);
        NodeState state = new NodeState(self);
        state.setView(Proto.STATUS_OK, 1, List.of(self, nb, nc), List.of(self, nb, nc));
        return state;
    }

    /** Answers GET_LOGLEVEL (4 bytes) on each connection after the first {@code silentConnections}. */
    private static final class StandIn implements AutoCloseable {
        final ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        final AtomicInteger connections = new AtomicInteger();
        final AtomicInteger answered = new AtomicInteger();
        final List<Socket> open = new CopyOnWriteArrayList<>();
        /** Set: reads the questions and answers none (the far side of a partition, as this node sees it). */
        volatile boolean mute;

        StandIn(int silentConnections) throws IOException {
            Thread.ofPlatform().daemon().start(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        open.add(s);
                        boolean silent = connections.incrementAndGet() <= silentConnections;
                        Thread.ofVirtual().start(() -> serve(s, silent));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        int port() { return server.getLocalPort(); }

        private void serve(Socket s, boolean silent) {
            try (s) {
                DataInputStream in = new DataInputStream(s.getInputStream());
                OutputStream out = s.getOutputStream();
                while (true) {
                    byte[] hdr = new byte[48];
                    in.readFully(hdr);
                    SdRequest req = new SdRequest(hdr);
                    in.skipNBytes(req.hasFlag(io.sheepdog.proto.SdFlags.CMD_WRITE) ? req.dataLength() : 0);
                    if (silent || mute) continue;
                    SdResponse rsp = SdResponse.replyTo(req, SdResult.SUCCESS).epoch(1).dataLength(4);
                    out.write(rsp.bytes());
                    out.write(new byte[4]);
                    out.flush();
                    answered.incrementAndGet();
                }
            } catch (IOException e) {
                // closed by the detector or by close()
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (Socket s : open) s.close();
        }
    }
}
