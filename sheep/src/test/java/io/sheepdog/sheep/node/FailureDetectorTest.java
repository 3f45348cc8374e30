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
            SdNode self = new SdNode(NodeId.of("127.0.0.1", 1), Proto.DEFAULT_VNODES, 0, 1L << 30);
            SdNode b = new SdNode(NodeId.of("127.0.0.1", quietFirst.port()), Proto.DEFAULT_VNODES, 1, 1L << 30);
            SdNode c = new SdNode(NodeId.of("127.0.0.1", healthy.port()), Proto.DEFAULT_VNODES, 2, 1L << 30);
            NodeState state = new NodeState(self);
            state.setView(Proto.STATUS_OK, 1, List.of(self, b, c), List.of(self, b, c));
            List<SdNode> evicted = new CopyOnWriteArrayList<>();
            try (FailureDetector d = new FailureDetector(state, evicted::add, 3000).start()) {
                Thread.sleep(7000);
            }
            assertEquals(List.of(), evicted, "no live member evicted");
            assertTrue(quietFirst.connections.get() >= 2, "asked again on a new connection: " + quietFirst.connections.get());
            assertTrue(quietFirst.answered.get() >= 2, "and was answered there: " + quietFirst.answered.get());
        }
    }

    /** Answers GET_LOGLEVEL (4 bytes) on each connection after the first {@code silentConnections}. */
    private static final class StandIn implements AutoCloseable {
        final ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        final AtomicInteger connections = new AtomicInteger();
        final AtomicInteger answered = new AtomicInteger();
        final List<Socket> open = new CopyOnWriteArrayList<>();

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
                    if (silent) continue;
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
