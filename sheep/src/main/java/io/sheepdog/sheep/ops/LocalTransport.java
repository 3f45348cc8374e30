package io.sheepdog.sheep.ops;

import io.sheepdog.client.ObjectTransport;
import io.sheepdog.client.Reply;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdRequest;
import java.util.concurrent.CompletableFuture;

/**
 * An {@link ObjectTransport} that hands requests straight to this sheep's request processor, for front ends inside
 * the daemon (NBD): the same path as a TCP client, without the loopback hop. Requests carry the given client's
 * identity, so a VDI lock taken through it belongs to that client's connection.
 */
public final class LocalTransport implements ObjectTransport {
    /** Largest read run on the submitting thread. */
    private static final int INLINE_READ_MAX = 64 << 10;

    private final RequestProcessor processor;
    private final ClientInfo client;

    public LocalTransport(RequestProcessor processor, ClientInfo client) {
        this.processor = processor;
        this.client = client;
    }

    public ClientInfo client() { return client; }

    /**
     * Runs the request on a virtual thread of its own, except a small read submitted from a virtual thread (the NBD
     * workers), which runs right here: starting a thread and waking the caller again cost more than reading a few
     * KiB of a cached object. A small read spans at most two objects, so at most two pieces run one after the
     * other; large reads and writes keep running in parallel, so that the pieces of a request that spans objects
     * overlap their copies, syncs and replica round trips.
     */
    @Override
    public CompletableFuture<Reply> submit(SdRequest req, byte[] payload) {
        Request r = new Request(req.copy(), payload == null ? Request.NO_DATA : payload, client);
        if (req.opcode() == Opcodes.READ_OBJ && req.dataLength() <= INLINE_READ_MAX && Thread.currentThread().isVirtual()) {
            try {
                return CompletableFuture.completedFuture(processor.process(r));
            } catch (Throwable t) {
                return CompletableFuture.failedFuture(t);
            }
        }
        CompletableFuture<Reply> f = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                f.complete(processor.process(r));
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }

    /** Runs the request on the calling thread (already a virtual thread in the front ends). */
    @Override
    public Reply call(SdRequest req, byte[] payload) {
        return processor.process(new Request(req.copy(), payload == null ? Request.NO_DATA : payload, client));
    }

    @Override
    public void close() { }
}
