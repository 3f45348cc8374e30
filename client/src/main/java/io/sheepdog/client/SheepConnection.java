package io.sheepdog.client;

import io.sheepdog.proto.Header48;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One pipelined connection to a sheep over TCP or a Unix socket. Any number of requests may be in flight; each gets
 * a fresh id and its reply is matched by the id the server echoes. A single reader thread completes the futures.
 *
 * <p>TCP goes through a plain {@link Socket} without proxy, not a {@code SocketChannel}: opening the first channel of
 * a JVM looks up the {@code SelectorProvider} service, which opens and scans every jar on the class path (about
 * 15 ms of a 0.13 s {@code dog} command), and blocking streams are all a connection with its own reader thread needs.
 */
public final class SheepConnection implements ObjectTransport {
    /** Bytes of replies read ahead per connection. */
    private static final int READ_BUFFER = 64 << 10;

    private final Closeable socket;
    private final OutputStream out;
    private final String peer;
    private final ConcurrentHashMap<Integer, CompletableFuture<Reply>> inflight = new ConcurrentHashMap<>();
    private final AtomicInteger nextId = new AtomicInteger(1);
    private final ReentrantLock writeLock = new ReentrantLock();
    private final Thread reader;
    private volatile IOException failure;
    /** The reader thread's. */
    private final Frames.ReplyReader replies;

    private SheepConnection(Closeable socket, InputStream in, OutputStream out, String peer, boolean virtualReader) {
        this.socket = socket;
        this.out = out;
        this.peer = peer;
        this.replies = new Frames.ReplyReader(in, READ_BUFFER);
        // a virtual reader is cheap when there are many connections; a short-lived CLI saves the start-up of the
        // virtual thread scheduler (tens of milliseconds) with a platform daemon thread
        this.reader = (virtualReader ? Thread.ofVirtual() : Thread.ofPlatform().daemon()).name("sheep-conn-" + peer)
                .unstarted(this::readLoop);
        reader.start();
    }

    /** Connects over TCP with a connect timeout. */
    public static SheepConnection open(String host, int port, int connectTimeoutMs) throws IOException {
        return open(host, port, connectTimeoutMs, true);
    }

    /**
     * Connects over TCP with a connect timeout.
     *
     * @param virtualReader read replies on a virtual thread (else on a platform daemon thread)
     */
    public static SheepConnection open(String host, int port, int connectTimeoutMs, boolean virtualReader) throws IOException {
        Socket s = new Socket(Proxy.NO_PROXY);
        try {
            s.connect(new InetSocketAddress(host, port), connectTimeoutMs);
            s.setTcpNoDelay(true);
            return new SheepConnection(s, s.getInputStream(), s.getOutputStream(), host + ":" + port, virtualReader);
        } catch (IOException e) {
            s.close();
            throw new IOException("failed to connect to " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    public static SheepConnection open(String host, int port) throws IOException { return open(host, port, 5000); }

    /** Connects to a sheep's Unix socket ({@code STORE_DIR/sock}). */
    public static SheepConnection openUnix(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            ch.close();
            throw new IOException("failed to connect to " + socket + ": " + e.getMessage(), e);
        }
        return new SheepConnection(ch, Channels.newInputStream(ch), Channels.newOutputStream(ch), socket.toString(), true);
    }

    public String peer() { return peer; }

    public boolean isOpen() { return failure == null; }

    public int inflight() { return inflight.size(); }

    @Override
    public CompletableFuture<Reply> submit(SdRequest req, byte[] payload) {
        CompletableFuture<Reply> f = new CompletableFuture<>();
        IOException fail = failure;
        if (fail != null) {
            f.completeExceptionally(fail);
            return f;
        }
        int id = nextId.getAndIncrement();
        SdRequest r = req.copy().id(id);
        boolean write = r.hasFlag(SdFlags.CMD_WRITE) && r.dataLength() > 0;
        if (write && (payload == null || payload.length != r.dataLength())) {
            f.completeExceptionally(new IllegalArgumentException("payload length " + (payload == null ? 0 : payload.length)
                    + " does not match data_length " + r.dataLength()));
            return f;
        }
        inflight.put(id, f);
        writeLock.lock();
        try {
            Frames.writeFrame(out, r.bytes(), write ? payload : null);
        } catch (IOException e) {
            fail(new IOException("connection to " + peer + " failed: " + e.getMessage(), e));
        } finally {
            writeLock.unlock();
        }
        return f;
    }

    /** Writes every request's header with one write (requests with a payload are refused). */
    @Override
    public List<CompletableFuture<Reply>> submitAll(List<SdRequest> reqs) {
        List<CompletableFuture<Reply>> futures = new ArrayList<>(reqs.size());
        IOException fail = failure;
        byte[] all = new byte[Header48.SIZE * reqs.size()];
        int len = 0;
        for (SdRequest req : reqs) {
            CompletableFuture<Reply> f = new CompletableFuture<>();
            futures.add(f);
            if (fail != null) {
                f.completeExceptionally(fail);
            } else if (req.hasFlag(SdFlags.CMD_WRITE) && req.dataLength() > 0) {
                f.completeExceptionally(new IllegalArgumentException("submitAll takes requests without payload: " + req));
            } else {
                int id = nextId.getAndIncrement();
                inflight.put(id, f);
                System.arraycopy(req.copy().id(id).bytes(), 0, all, len, Header48.SIZE);
                len += Header48.SIZE;
            }
        }
        if (fail != null || len == 0) return futures;
        writeLock.lock();
        try {
            out.write(all, 0, len);
        } catch (IOException e) {
            fail(new IOException("connection to " + peer + " failed: " + e.getMessage(), e));
        } finally {
            writeLock.unlock();
        }
        return futures;
    }

    private void readLoop() {
        try {
            while (true) readReply();
        } catch (IOException e) {
            fail(e instanceof EOFException ? new EOFException("connection to " + peer + " closed")
                    : new IOException("connection to " + peer + " failed: " + e.getMessage(), e));
        } catch (OutOfMemoryError e) {
            // no room for a reply: the stream cannot be resynchronised, but every caller waiting on it gets an error
            fail(new IOException("connection to " + peer + " dropped: out of memory for a reply"));
        }
    }

    /**
     * Reads one reply and completes its future (a method of its own so that the JIT compiles it early). Replies are
     * read ahead ({@link Frames.ReplyReader}), so that a run of small replies (dog reading ten thousand inodes) costs
     * a few large socket reads instead of two per reply.
     */
    private void readReply() throws IOException {
        Reply reply = replies.read();
        CompletableFuture<Reply> f = inflight.remove(reply.header().id());
        if (f != null) f.complete(reply);
    }

    private void fail(IOException e) {
        if (failure == null) failure = e;
        try { socket.close(); } catch (IOException ignored) { }
        for (var it = inflight.entrySet().iterator(); it.hasNext(); ) {
            var en = it.next();
            it.remove();
            en.getValue().completeExceptionally(failure);
        }
    }

    @Override
    public void close() {
        fail(new IOException("connection to " + peer + " closed"));
        // A platform reader still inside the socket read (native code) makes the JVM's exit wait up to 300 ms for
        // it; once the channel is closed it returns at once, so wait for it here (short-lived tools like dog).
        if (!reader.isVirtual() && Thread.currentThread() != reader) {
            try {
                reader.join(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
