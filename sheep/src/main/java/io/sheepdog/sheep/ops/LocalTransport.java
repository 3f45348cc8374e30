package io.sheepdog.sheep.ops;

import io.sheepdog.client.ObjectTransport;
import io.sheepdog.client.Reply;
import io.sheepdog.proto.SdRequest;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * An {@link ObjectTransport} that hands requests straight to this sheep's request processor, for front ends inside
 * the daemon (NBD): the same path as a TCP client, without the loopback hop. Requests carry the given client's
 * identity, so a VDI lock taken through it belongs to that client's connection.
 */
public final class LocalTransport implements ObjectTransport {
    private final RequestProcessor processor;
    private final ClientInfo client;

    public LocalTransport(RequestProcessor processor, ClientInfo client) {
        this.processor = processor;
        this.client = client;
    }

    public ClientInfo client() { return client; }

    @Override
    public CompletableFuture<Reply> submit(SdRequest req, byte[] payload) {
        return start(new Request(req.copy(), payload == null ? Request.NO_DATA : payload, client));
    }

    /** A direct buffer goes to the gateway as it is (the request's body): no copy on the way to the disks. */
    @Override
    public CompletableFuture<Reply> submitBuffer(SdRequest req, ByteBuffer body) {
        return start(request(req, body));
    }

    @Override
    public Reply callBuffer(SdRequest req, ByteBuffer body) {
        return processor.process(request(req, body));
    }

    private Request request(SdRequest req, ByteBuffer body) {
        if (body.isDirect()) return Request.withBody(req.copy(), body.duplicate(), client);
        return new Request(req.copy(), ObjectTransport.arrayOf(body), client);
    }

    private CompletableFuture<Reply> start(Request r) {
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
