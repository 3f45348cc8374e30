package io.sheepdog.sheep.gateway;

import io.sheepdog.client.Frames;
import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdRequest;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import io.sheepdog.sheep.log.RateLimitedLog;
import org.slf4j.LoggerFactory;

/**
 * One TCP connection to another sheep that carries one request at a time: the thread that sends a request reads its
 * reply itself. So a peer request costs no thread of its own: no sender thread, no reader thread completing a
 * future that then wakes the caller; the caller's write goes straight to the socket and the reply wakes the caller
 * (the JDK's poller unparks the virtual thread blocked in the read). {@link PeerPool} keeps idle links for reuse,
 * one per request in flight to a peer.
 *
 * <p>Not thread-safe except {@link #close()}, which any thread may call to end a send or a wait (a peer that hangs
 * or left the cluster): the blocked call then fails with an IOException.
 */
final class PeerLink {
    /**
     * Reply bytes read ahead: a reply header and a small payload come in one read; a larger payload is read straight
     * into its array. Small, since a gateway may hold a link per request in flight.
     */
    private static final int READ_BUFFER = 2 << 10;
    private static final RateLimitedLog FALLBACK = new RateLimitedLog(LoggerFactory.getLogger(PeerLink.class));

    private final NodeId peer;
    private final boolean viaIoPort;
    /**
     * Blocking. Requests are written with the channel's gathering write, so a direct payload (an aligned buffer the
     * NBD front end filled: one buffer from the client's socket to the disks) goes to the socket without a copy;
     * replies are read through its socket's stream, which honours the read timeout.
     */
    private final SocketChannel channel;
    private final Frames.ReplyReader replies;
    private int nextId = 1;
    private int waitingFor;
    /** When the request in flight was sent (System.nanoTime, never 0), 0 while none is. */
    private volatile long busySince;
    private volatile boolean closed;
    /** When the link was last given back to the pool (System.nanoTime), guarded by the pool. */
    private long idleSince;
    /** Why another thread closed the link (the peer left, or hangs), said by the failure it causes. */
    private volatile String closedBecause;

    private PeerLink(NodeId peer, SocketChannel channel, InputStream in, boolean viaIoPort) {
        this.peer = peer;
        this.viaIoPort = viaIoPort;
        this.channel = channel;
        this.replies = new Frames.ReplyReader(in, READ_BUFFER);
    }

    /**
     * Connects to {@code peer}: to its I/O port if it has one and {@code ioPort} allows it (net/IoPortServer: a
     * thread per link serves it), else, or if that fails ({@code ioPortFailed} is told), to its main port.
     *
     * @param readTimeoutMs how long a reply may take before the read fails (a last resort: the gateway's watch
     *                      closes links to peers that hang or leave much sooner)
     */
    static PeerLink open(NodeId peer, int connectTimeoutMs, int readTimeoutMs, boolean ioPort, Runnable ioPortFailed)
            throws IOException {
        if (ioPort && peer.ioPort() != 0) {
            try {
                return connect(peer, ioHost(peer), peer.ioPort(), connectTimeoutMs, readTimeoutMs, true);
            } catch (IOException e) {
                FALLBACK.warn("io-port", "I/O port of {} unusable, sending to its main port: {}", peer, e.getMessage());
                ioPortFailed.run();
            }
        }
        return connect(peer, peer.host(), peer.port(), connectTimeoutMs, readTimeoutMs, false);
    }

    /** Whether this link goes to the peer's I/O port (not its main port). */
    boolean viaIoPort() { return viaIoPort; }

    private static String ioHost(NodeId peer) {
        for (byte b : peer.ioAddr()) if (b != 0) return NodeId.hostOf(peer.ioAddr());
        return peer.host();
    }

    private static PeerLink connect(NodeId peer, String host, int port, int connectTimeoutMs, int readTimeoutMs,
            boolean ioPort) throws IOException {
        SocketChannel ch = SocketChannel.open();
        try {
            // through the channel's socket: its connect takes a timeout, and its stream a read timeout
            ch.socket().connect(new InetSocketAddress(host, port), connectTimeoutMs);
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            InputStream in = ch.socket().getInputStream();
            if (ioPort) {
                // the I/O port says whose it is first: a stale view's port may now be another process's
                ch.socket().setSoTimeout(connectTimeoutMs);
                byte[] id = in.readNBytes(NodeId.SIZE);
                if (id.length < NodeId.SIZE) throw new IOException("no node id from " + host + ":" + port);
                NodeId who = NodeId.decode(ByteBuffer.wrap(id));
                if (!who.equals(peer)) throw new IOException(host + ":" + port + " is the I/O port of " + who + ", not of " + peer);
            }
            ch.socket().setSoTimeout(readTimeoutMs);
            return new PeerLink(peer, ch, in, ioPort);
        } catch (IOException e) {
            ch.close();
            throw new IOException("failed to connect to " + peer + (ioPort ? " (I/O port " + port + ")" : "") + ": " + e.getMessage(), e);
        }
    }

    NodeId peer() { return peer; }

    boolean isOpen() { return !closed; }

    long idleSince() { return idleSince; }

    void idleSince(long t) { idleSince = t; }

    /** When the request in flight was sent (System.nanoTime), 0 if there is none. */
    long busySince() { return busySince; }

    /**
     * Sends {@code req} (its id replaced by this link's next one) and its payload, if it has one: {@code payload}, or
     * else {@code body}'s remaining bytes (its position is left as it is). Returns when all is written (or failed):
     * then nothing here reads {@code body} any more.
     */
    void send(SdRequest req, byte[] payload, ByteBuffer body) throws IOException {
        if (closed) throw new IOException("connection to " + peer + " closed");
        int id = nextId++;
        waitingFor = id;
        busySince = System.nanoTime() | 1;
        try {
            ByteBuffer header = ByteBuffer.wrap(req.copy().id(id).bytes());
            ByteBuffer rest = body != null ? body.duplicate() : payload != null && payload.length > 0 ? ByteBuffer.wrap(payload) : null;
            if (rest == null) {
                while (header.hasRemaining()) channel.write(header);
            } else {
                ByteBuffer[] both = {header, rest};
                while (rest.hasRemaining() || header.hasRemaining()) channel.write(both);
            }
        } catch (IOException e) {
            close();
            throw failure(e);
        }
    }

    private IOException failure(IOException e) {
        String why = closedBecause;
        if (why != null) return new IOException("connection to " + peer + " closed: " + why, e);
        return e instanceof EOFException ? new EOFException("connection to " + peer + " closed")
                : new IOException("connection to " + peer + " failed: " + e.getMessage(), e);
    }

    /** Reads the reply to the request last sent. A reply with another id means the stream is lost: the link closes. */
    Reply receive() throws IOException {
        try {
            Reply reply = replies.read();
            int id = reply.header().id();
            if (id != waitingFor) throw new IOException("reply for request " + id + ", expected " + waitingFor);
            return reply;
        } catch (IOException e) {
            close();
            throw failure(e);
        } finally {
            busySince = 0;
        }
    }

    /** Closes the connection; a send or receive blocked in another thread fails. */
    void close() {
        closed = true;
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing: nothing to do about it
        }
    }

    /** Closes the connection from another thread, saying why (the failure of the call in flight says it). */
    void close(String why) {
        closedBecause = why;
        closed = true;
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing: nothing to do about it
        }
    }

    @Override public String toString() { return "link to " + peer; }
}
