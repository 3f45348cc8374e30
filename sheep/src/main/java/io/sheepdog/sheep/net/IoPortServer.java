package io.sheepdog.sheep.net;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.sheep.access.AccessPolicy;
import io.sheepdog.sheep.gateway.PeerService;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.ops.RequestProcessor;
import io.sheepdog.sheep.store.AlignedBuffers;
import io.sheepdog.sheep.store.StoreKey;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The I/O port ({@code sheep -i}): a second listener, where the other sheep's gateways send this node's copies of
 * objects. Their links carry one request at a time (gateway/PeerLink), so each connection is served by a thread of
 * its own that reads a request, serves it from the store and writes the reply itself: the kernel wakes that thread
 * when a request arrives, and nothing else. The payload of a replica's write of whole blocks is read from the socket
 * into an aligned direct buffer ({@link AlignedBuffers}) that the store writes to the disk as it is, with no copy
 * between ({@link #ONE_BUFFER}; bench/RESULTS.md, "One buffer from socket to disk"). On the main port the same request costs an event loop's wake, a hand-off
 * to a virtual thread and one back to the event loop for the reply, two thread wakes more per copy, which a
 * replicated write at queue depth 1 waits for (bench/RESULTS.md, "The I/O port"). A slow or hung disk blocks only
 * the connections with a request on it, never an event loop, so heartbeats and other requests go on.
 *
 * <p>The first connections get platform threads (a blocked read wakes them directly); past
 * {@link #PLATFORM_THREADS} they get virtual threads. On accept the server writes its node id (40 bytes) before
 * anything else, so that a gateway whose view of this node is stale (an old port, now another process's) finds out
 * before it sends a request there, and uses the main port instead.
 *
 * <p>The same rules as the main port: who is let in ({@link AccessPolicy}), the largest payloads, and memory admitted
 * before it is allocated (the main port's budget for requests between sheep: a request waits for room, in the
 * thread that serves it). A watch closes a connection idle for {@link #IDLE_MS} (a gateway closes its idle links
 * sooner), one that sent no request within {@link #FIRST_REQUEST_MS} of its accept (a gateway opens a link to send
 * one), one whose request's payload takes longer than {@link PayloadDeadline#DEFAULT_MS} after its header (it holds
 * budget meanwhile: a few such would stall every copy sent here), and one whose reply cannot be written for
 * {@link #WRITE_TIMEOUT_MS} (the gateway hangs).
 *
 * <p>A connection costs a thread and a read buffer, so their number is bounded ({@link #MAX_CONNECTIONS}): past it a
 * new one is closed at once, before the greeting, and the gateway that opened it sends to the main port instead
 * (gateway/PeerPool). Without the bound, anyone who may connect (everyone, unless sheep --allow says otherwise) could
 * open thousands of idle connections and run the node out of direct memory, which its main port and NBD clients
 * need too (it-test IoPortBlockedIT#aFloodOfConnectionsToAnIoPortFailsNoWrite). A read buffer is freed when its
 * connection ends, not when a garbage collection finds it.
 */
public final class IoPortServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(IoPortServer.class);
    private static final RateLimitedLog WARN = new RateLimitedLog(LOG);
    static final int PLATFORM_THREADS = Integer.getInteger("sheepdog.ioPortPlatformThreads", 128);
    static final int IDLE_MS = 120_000;
    static final long WRITE_TIMEOUT_MS = Long.getLong("sheepdog.peerTimeoutMs", 30_000);
    /**
     * Connections served at once (each a thread and a {@link #READ_BUFFER}): the gateways' links are one per request
     * in flight from each, far fewer; past it they go to the main port.
     */
    static final int MAX_CONNECTIONS = Integer.getInteger("sheepdog.ioPortMaxConnections", 1024);
    /** How soon after its accept a connection must send its first request. */
    static final long FIRST_REQUEST_MS = 10_000;
    /** Request bytes read ahead: a header with a payload of a few KiB arrives in one read. */
    private static final int READ_BUFFER = 16 << 10;
    private static final AtomicLong CONNECTIONS = new AtomicLong(1L << 40); // apart from the main port's ids
    /**
     * Whether a replica's write of whole aligned blocks is read into an aligned buffer and written from it (on unless
     * {@code -Dsheepdog.ioPortOneBuffer=false}, the A/B switch of bench/RESULTS.md).
     */
    static final boolean ONE_BUFFER = !"false".equals(System.getProperty("sheepdog.ioPortOneBuffer"));

    private final ServerSocketChannel server;
    private final Set<Connection> open = ConcurrentHashMap.newKeySet();
    private final AtomicInteger platformThreads = new AtomicInteger();
    private final AtomicLong served = new AtomicLong();
    private final AtomicLong oneBuffer = new AtomicLong();
    private volatile boolean closed;
    private byte[] greeting;
    private RequestProcessor processor;
    private Consumer<ClientInfo> onClose;
    private AccessPolicy access;
    private PayloadBudget budget;
    private Thread acceptor;
    private Thread watch;
    private int maxConnections = MAX_CONNECTIONS;
    private volatile long payloadTimeoutMs = PayloadDeadline.DEFAULT_MS;

    private IoPortServer(ServerSocketChannel server) {
        this.server = server;
    }

    /** Binds the port now (the node id that advertises it is made before the node serves); {@code port} 0: any. */
    public static IoPortServer bind(String bindAddr, int port) throws IOException {
        ServerSocketChannel s = ServerSocketChannel.open();
        try {
            s.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            s.bind(bindAddr == null ? new InetSocketAddress(port) : new InetSocketAddress(bindAddr, port), 1024);
        } catch (IOException e) {
            s.close();
            throw new IOException("cannot listen on I/O port " + (bindAddr == null ? "*" : bindAddr) + ":" + port + ": " + e.getMessage(), e);
        }
        return new IoPortServer(s);
    }

    /** The port bound. */
    public int port() { return server.socket().getLocalPort(); }

    /** Starts serving requests with {@code processor}, as the main port does, for the node {@code self}. */
    public void start(NodeId self, RequestProcessor processor, Consumer<ClientInfo> onClose, AccessPolicy access,
            PayloadBudget budget) {
        ByteBuffer b = ByteBuffer.allocate(NodeId.SIZE);
        self.encode(b);
        this.greeting = b.array();
        this.processor = processor;
        this.onClose = onClose;
        this.access = access;
        this.budget = budget;
        acceptor = Thread.ofPlatform().daemon().name("io-port-accept").start(this::acceptLoop);
        watch = Thread.ofPlatform().daemon().name("io-port-watch").start(this::watchLoop);
        LOG.info("I/O port listening on {}", server.socket().getLocalSocketAddress());
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel s;
            Connection c;
            try {
                s = server.accept();
            } catch (IOException e) {
                if (!closed) WARN.warn("accept", "I/O port: accept failed: {}", e.toString());
                continue;
            }
            try {
                s.setOption(StandardSocketOptions.TCP_NODELAY, true);
                c = new Connection(s);
            } catch (IOException e) {
                close(s);
                continue;
            }
            if (access != null && !access.letsIn(c.client.addr())) {
                WARN.warn("allow", "I/O port: connection from {} refused: not in sheep --allow and not a cluster member", c.client.display());
                close(s);
                continue;
            }
            if (open.size() >= maxConnections) {
                WARN.warn("full", "I/O port: connection from {} refused: {} connections open, the most it serves "
                        + "(-Dsheepdog.ioPortMaxConnections); a sheep's gateway then uses the main port", c.client.display(), maxConnections);
                close(s);
                continue;
            }
            open.add(c);
            if (closed) {
                c.close();
                continue;
            }
            boolean platform = platformThreads.incrementAndGet() <= PLATFORM_THREADS;
            if (!platform) platformThreads.decrementAndGet();
            Runnable serve = () -> {
                try {
                    c.serve();
                } finally {
                    if (platform) platformThreads.decrementAndGet();
                }
            };
            if (platform) Thread.ofPlatform().daemon().name("io-port-" + c.client.display()).start(serve);
            else Thread.ofVirtual().start(serve);
        }
    }

    /**
     * Closes the connections whose reply has not gone out for {@link #WRITE_TIMEOUT_MS} (their gateway hangs) and those
     * idle for {@link #IDLE_MS}.
     */
    private void watchLoop() {
        long timeout = TimeUnit.MILLISECONDS.toNanos(WRITE_TIMEOUT_MS);
        long idle = TimeUnit.MILLISECONDS.toNanos(IDLE_MS);
        long firstRequest = TimeUnit.MILLISECONDS.toNanos(FIRST_REQUEST_MS);
        while (!closed) {
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            long payloadTimeoutMs = this.payloadTimeoutMs;
            long payloadTimeout = TimeUnit.MILLISECONDS.toNanos(payloadTimeoutMs);
            for (Connection c : open) {
                long since = c.writingSince;
                if (since != 0 && now - since > timeout) {
                    LOG.warn("I/O port: closing the connection from {}: a reply could not be written for {} ms", c.client.display(), WRITE_TIMEOUT_MS);
                    c.close();
                }
                long idleSince = c.idleSince;
                long payloadSince = c.payloadSince;
                if (payloadSince != 0 && now - payloadSince > payloadTimeout) {
                    WARN.warn("slow", "I/O port: closing the connection from {}: a request's payload did not arrive within {} ms of its header",
                            c.client.display(), payloadTimeoutMs);
                    c.close();
                } else if (idleSince != 0 && now - idleSince > (c.requested ? idle : firstRequest)) {
                    // idle since its accept, or since its last reply: a connection that never sent a request is no
                    // gateway's link (those send one at once) and gets far less time
                    if (c.requested) LOG.debug("I/O port: closing the idle connection from {}", c.client.display());
                    else WARN.warn("silent", "I/O port: closing the connection from {}: no request within {} ms of its accept",
                            c.client.display(), FIRST_REQUEST_MS);
                    c.close();
                }
            }
        }
    }

    /** Sets the most connections served at once (tests; the default is {@link #MAX_CONNECTIONS}). */
    public IoPortServer maxConnections(int n) {
        this.maxConnections = n;
        return this;
    }

    /**
     * Sets how long a request's payload may take after its header (tests; by default {@link PayloadDeadline#DEFAULT_MS}):
     * it holds its share of the budget for requests between sheep meanwhile.
     */
    public IoPortServer payloadTimeoutMs(long ms) {
        this.payloadTimeoutMs = ms;
        return this;
    }

    /** Connections open now. */
    public int connections() { return open.size(); }

    /** Requests answered since the start. */
    public long requestsServed() { return served.get(); }

    /** Requests whose payload was read into an aligned buffer and handed to the store in it, since the start. */
    public long oneBufferWrites() { return oneBuffer.get(); }

    private static void close(AutoCloseable s) {
        try {
            s.close();
        } catch (Exception ignored) {
            // closing: nothing to do about it
        }
    }

    @Override
    public void close() {
        closed = true;
        close(server);
        for (Connection c : open) c.close();
        if (watch != null) watch.interrupt();
    }

    /** One gateway's link: requests read, served and answered in turn, by one thread. */
    private final class Connection {
        final SocketChannel socket;
        final ClientInfo client;
        /** When the reply being written started (System.nanoTime, never 0), 0 while none is. */
        volatile long writingSince;
        /** When the connection began waiting for its next request (System.nanoTime, never 0), 0 while serving one. */
        volatile long idleSince = System.nanoTime() | 1;
        /** When the payload being read started (System.nanoTime, never 0), 0 while none is. */
        volatile long payloadSince;
        /** Whether a request has come on it. */
        volatile boolean requested;

        Connection(SocketChannel s) throws IOException {
            this.socket = s;
            InetSocketAddress peer = (InetSocketAddress) s.getRemoteAddress();
            byte[] addr = peer == null || peer.getAddress() == null ? NodeId.addrBytes("127.0.0.1")
                    : NodeId.addrBytes(peer.getAddress().getHostAddress());
            this.client = new ClientInfo(addr, peer == null ? 0 : peer.getPort(), CONNECTIONS.incrementAndGet());
        }

        void serve() {
            // the read buffer is freed with the arena when the connection ends, not when a collection finds it
            try (socket; Arena arena = Arena.ofConfined()) {
                ChannelFrameReader in;
                try {
                    in = new ChannelFrameReader(socket, arena.allocate(READ_BUFFER).asByteBuffer());
                } catch (OutOfMemoryError e) {
                    WARN.warn("nomem", "I/O port: closing the connection from {}: no memory for its read buffer", client.display());
                    return;
                }
                writeFully(ByteBuffer.wrap(greeting));
                while (!closed) {
                    idleSince = System.nanoTime() | 1;
                    byte[] header = in.readHeader();
                    idleSince = 0;
                    if (header == null) return; // the gateway closed the link between requests
                    requested = true;
                    SdRequest req = new SdRequest(header);
                    boolean hasPayload = req.hasFlag(SdFlags.CMD_WRITE) && req.dataLength() > 0;
                    if (SdFrameDecoder.oversized(req, budget)) {
                        WARN.warn("oversize", "I/O port: closing the connection from {}: request payload of {} bytes exceeds the maximum for its opcode ({})",
                                client.display(), req.dataLength(), req);
                        return;
                    }
                    long reserved = SdFrameDecoder.admittedBytes(req, budget);
                    budget.acquire(reserved);
                    ByteBuffer body = hasPayload && oneBuffer(req) ? AlignedBuffers.take((int) req.dataLength()) : null;
                    try {
                        Request r;
                        if (hasPayload) payloadSince = System.nanoTime() | 1;
                        if (body != null) {
                            in.readPayload(body);
                            r = Request.withBody(req, body, client);
                            oneBuffer.incrementAndGet();
                        } else {
                            r = new Request(req, hasPayload ? in.readPayload((int) req.dataLength()) : Request.NO_DATA, client);
                        }
                        payloadSince = 0;
                        Reply rep = SdServerHandler.answer(processor, r);
                        rep.header().dataLength(rep.data().length);
                        writingSince = System.nanoTime() | 1;
                        try {
                            writeFully(ByteBuffer.wrap(rep.header().bytes()), ByteBuffer.wrap(rep.data()));
                        } finally {
                            writingSince = 0;
                        }
                        served.incrementAndGet();
                    } finally {
                        AlignedBuffers.release(body); // the store is done with it: the reply is built
                        budget.release(reserved);
                    }
                }
            } catch (EOFException e) {
                WARN.warn("cut", "I/O port: the connection from {} ended inside a request", client.display());
            } catch (IOException e) {
                if (!closed && socket.isOpen()) WARN.warn("io", "I/O port: the connection from {} failed: {}", client.display(), e.toString());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (RuntimeException | Error e) {
                WARN.error("unbuilt", "I/O port: closing the connection from {}: no reply could be built", client.display(), e);
            } finally {
                open.remove(this);
                onClose.accept(client);
            }
        }

        private void writeFully(ByteBuffer... bufs) throws IOException {
            ByteBuffer last = bufs[bufs.length - 1];
            while (last.hasRemaining() || bufs[0].hasRemaining()) socket.write(bufs);
        }

        void close() { IoPortServer.close(socket); }
    }

    /**
     * Whether the payload of {@code req} goes into an aligned buffer: a replica's write (not a strip's, which the
     * strip store journals) of whole aligned blocks, no larger than an object.
     */
    static boolean oneBuffer(SdRequest req) {
        if (!ONE_BUFFER || req.opcode() != Opcodes.WRITE_PEER) return false;
        long len = req.dataLength();
        if (len <= 0 || len > AlignedBuffers.LARGE || len % AlignedBuffers.BLOCK != 0 || req.objOffset() % AlignedBuffers.BLOCK != 0) return false;
        try {
            return !StoreKey.isStrip(PeerService.keyOf(req));
        } catch (IllegalArgumentException e) {
            return false; // a bad erasure code: answered by the peer service, from an array
        }
    }
}
