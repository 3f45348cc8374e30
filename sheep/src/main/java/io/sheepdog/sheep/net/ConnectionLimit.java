package io.sheepdog.sheep.net;

/**
 * What one client connection may have in flight: a number of requests and a number of payload bytes. Both front doors
 * (the Sheepdog protocol server and the NBD server) stop reading a connection while it is {@link #full()}, so a client
 * that pipelines without bound waits in TCP instead of filling the heap; over all connections of a front door, the
 * {@link PayloadBudget} bounds the bytes.
 *
 * <p>A request is counted from {@link #begin} (when its header has been read) until {@link #end} (when its reply has
 * been handed to the socket). Thread-safe: the Sheepdog server ends requests on their own virtual threads.
 */
public final class ConnectionLimit {
    private final int maxRequests;
    private final long maxBytes;
    private int requests;   // guarded by this
    private long bytes;     // guarded by this

    public ConnectionLimit(int maxRequests, long maxBytes) {
        if (maxRequests < 1 || maxBytes < 1) {
            throw new IllegalArgumentException("in-flight limits must be positive: " + maxRequests + " requests, " + maxBytes + " bytes");
        }
        this.maxRequests = maxRequests;
        this.maxBytes = maxBytes;
    }

    /** A request of {@code n} payload bytes is in flight; true if the connection is full now (stop reading). */
    public synchronized boolean begin(long n) {
        requests++;
        bytes += n;
        return isFull();
    }

    /** A request of {@code n} bytes was answered; true if the connection has room now (reading may go on). */
    public synchronized boolean end(long n) {
        requests--;
        bytes -= n;
        if (requests < 0 || bytes < 0) {
            requests = Math.max(requests, 0);
            bytes = Math.max(bytes, 0);
            throw new IllegalStateException("in-flight limit ended more than was begun");
        }
        return !isFull();
    }

    public synchronized boolean full() { return isFull(); }

    private boolean isFull() { return requests >= maxRequests || bytes >= maxBytes; }

    public synchronized int requests() { return requests; }

    public synchronized long bytes() { return bytes; }
}
