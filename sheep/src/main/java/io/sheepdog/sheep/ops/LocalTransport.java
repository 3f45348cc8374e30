package io.sheepdog.sheep.ops;

import io.sheepdog.client.ObjectTransport;
import io.sheepdog.client.Reply;
import io.sheepdog.proto.SdRequest;
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
        CompletableFuture<Reply> f = new CompletableFuture<>();
        Request r = new Request(req.copy(), payload == null ? Request.NO_DATA : payload, client);
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
