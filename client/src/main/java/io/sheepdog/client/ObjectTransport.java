package io.sheepdog.client;

import io.sheepdog.proto.SdRequest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * Something that executes Sheepdog requests: a TCP or Unix connection to a sheep, a pool of them, or (inside the
 * daemon) the local request processor. Requests may be pipelined: many in flight, answered in any order.
 */
public interface ObjectTransport extends AutoCloseable {

    /**
     * Sends {@code req}; {@code payload} is sent when the WRITE flag is set (its length must equal data_length).
     * The future fails with an {@link IOException} if the connection breaks.
     */
    CompletableFuture<Reply> submit(SdRequest req, byte[] payload);

    /**
     * As {@link #submit(SdRequest, byte[])}, the payload being {@code body}'s remaining bytes (its position is left as
     * it is). The caller keeps {@code body} unchanged until the future completes. This form copies them into an array;
     * a transport inside the daemon takes a direct buffer as it is (one buffer from the client's socket to the disks).
     */
    default CompletableFuture<Reply> submitBuffer(SdRequest req, ByteBuffer body) {
        return submit(req, arrayOf(body));
    }

    /** Blocking form of {@link #submitBuffer}. */
    default Reply callBuffer(SdRequest req, ByteBuffer body) throws IOException {
        return call(req, arrayOf(body));
    }

    /** {@code b}'s remaining bytes as an array: its own array when that is exactly them, else a copy. */
    static byte[] arrayOf(ByteBuffer b) {
        if (b.hasArray() && b.arrayOffset() == 0 && b.position() == 0 && b.remaining() == b.array().length) return b.array();
        byte[] a = new byte[b.remaining()];
        b.duplicate().get(a);
        return a;
    }

    /**
     * Sends requests that carry no payload (reads), in order; the same as {@link #submit} for each, but a connection
     * writes them all at once, which saves a system call per request on both ends when many are sent together.
     */
    default List<CompletableFuture<Reply>> submitAll(List<SdRequest> reqs) {
        List<CompletableFuture<Reply>> out = new ArrayList<>(reqs.size());
        for (SdRequest r : reqs) out.add(submit(r, null));
        return out;
    }

    /** Blocking form of {@link #submit}. */
    default Reply call(SdRequest req, byte[] payload) throws IOException {
        try {
            return submit(req, payload).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof IOException io) throw io;
            if (c instanceof UncheckedIOException u) throw u.getCause();
            throw new IOException(c.getMessage(), c);
        }
    }

    default Reply call(SdRequest req) throws IOException { return call(req, null); }

    @Override void close();
}
