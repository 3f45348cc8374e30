package io.sheepdog.client;

import io.sheepdog.proto.Header48;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
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
 */
public final class SheepConnection implements ObjectTransport {
    /** Bytes of replies read ahead per connection. */
    private static final int READ_BUFFER = 64 << 10;
    private final SocketChannel ch;
    private final String peer;
    private final ConcurrentHashMap<Integer, CompletableFuture<Reply>> inflight = new ConcurrentHashMap<>();
    private final AtomicInteger nextId = new AtomicInteger(1);
    private final ReentrantLock writeLock = new ReentrantLock();
    private final Thread reader;
    private volatile IOException failure;

    private SheepConnection(SocketChannel ch, String peer, boolean virtualReader) {
        this.ch = ch;
        this.peer = peer;
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
        SocketChannel ch = SocketChannel.open();
        try {
            ch.socket().connect(new InetSocketAddress(host, port), connectTimeoutMs);
            ch.socket().setTcpNoDelay(true);
        } catch (IOException e) {
            ch.close();
            throw new IOException("failed to connect to " + host + ":" + port + ": " + e.getMessage(), e);
        }
        return new SheepConnection(ch, host + ":" + port, virtualReader);
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
        return new SheepConnection(ch, socket.toString(), true);
    }

    public String peer() { return peer; }

    public boolean isOpen() { return failure == null && ch.isOpen(); }

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
            ByteBuffer h = ByteBuffer.wrap(r.bytes());
            if (write) {
                ByteBuffer[] bufs = {h, ByteBuffer.wrap(payload)};
                long total = Header48.SIZE + (long) payload.length;
                long done = 0;
                while (done < total) done += ch.write(bufs);
            } else {
                while (h.hasRemaining()) ch.write(h);
            }
        } catch (IOException e) {
            fail(new IOException("connection to " + peer + " failed: " + e.getMessage(), e));
        } finally {
            writeLock.unlock();
        }
        return f;
    }

    /** Writes every request's header with one gathering write (requests with a payload are refused). */
    @Override
    public List<CompletableFuture<Reply>> submitAll(List<SdRequest> reqs) {
        List<CompletableFuture<Reply>> out = new ArrayList<>(reqs.size());
        IOException fail = failure;
        ByteBuffer all = ByteBuffer.allocate(Header48.SIZE * reqs.size());
        for (SdRequest req : reqs) {
            CompletableFuture<Reply> f = new CompletableFuture<>();
            out.add(f);
            if (fail != null) {
                f.completeExceptionally(fail);
            } else if (req.hasFlag(SdFlags.CMD_WRITE) && req.dataLength() > 0) {
                f.completeExceptionally(new IllegalArgumentException("submitAll takes requests without payload: " + req));
            } else {
                int id = nextId.getAndIncrement();
                inflight.put(id, f);
                all.put(req.copy().id(id).bytes());
            }
        }
        if (fail != null) return out;
        all.flip();
        writeLock.lock();
        try {
            while (all.hasRemaining()) ch.write(all);
        } catch (IOException e) {
            fail(new IOException("connection to " + peer + " failed: " + e.getMessage(), e));
        } finally {
            writeLock.unlock();
        }
        return out;
    }

    private void readLoop() {
        // Replies are read through a buffer, so that a run of small replies (dog reading ten thousand inodes) costs
        // a few large socket reads instead of two per reply; a payload larger than what is buffered is read
        // straight into its array.
        ByteBuffer in = ByteBuffer.allocateDirect(READ_BUFFER).flip();
        try {
            while (true) readReply(in);
        } catch (IOException e) {
            fail(e instanceof EOFException ? new EOFException("connection to " + peer + " closed")
                    : new IOException("connection to " + peer + " failed: " + e.getMessage(), e));
        }
    }

    /** Reads one reply and completes its future (a method of its own so that the JIT compiles it early). */
    private void readReply(ByteBuffer in) throws IOException {
        fill(in, Header48.SIZE);
        byte[] h = new byte[Header48.SIZE];
        in.get(h);
        SdResponse rsp = new SdResponse(h);
        long len = rsp.dataLength();
        if (len > Integer.MAX_VALUE - 16) throw new IOException("reply too large: " + len);
        byte[] data = new byte[(int) len];
        int buffered = Math.min(in.remaining(), data.length);
        in.get(data, 0, buffered);
        if (buffered < data.length) readFully(ByteBuffer.wrap(data, buffered, data.length - buffered));
        CompletableFuture<Reply> f = inflight.remove(rsp.id());
        if (f != null) f.complete(new Reply(rsp, data));
    }

    /** Makes at least {@code need} bytes available in {@code in} (in read mode), reading as much as the socket has. */
    private void fill(ByteBuffer in, int need) throws IOException {
        if (in.remaining() >= need) return;
        in.compact();
        try {
            while (in.position() < need) {
                if (ch.read(in) < 0) throw new EOFException();
            }
        } finally {
            in.flip();
        }
    }

    private void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) throw new EOFException();
        }
    }

    private void fail(IOException e) {
        if (failure == null) failure = e;
        try { ch.close(); } catch (IOException ignored) { }
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
