package io.sheepdog.sheep.gateway;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.ops.Request;
import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * A peer request sent and not yet answered, or an answer already known (this node's own copy, or a failure to
 * send). {@link #await()} gives the reply exactly once; a call that is sent must be awaited, since its link goes
 * back to the pool only then. Failures of the connection are answered NETWORK_ERROR, which the gateway retries.
 */
abstract class PeerCall {
    /** The node asked. */
    abstract NodeId target();

    /** Waits for the reply (NETWORK_ERROR if the connection failed or was closed while waiting). */
    abstract Reply await();

    /** A call whose reply is already known. */
    static PeerCall done(NodeId target, Reply r) {
        return new PeerCall() {
            @Override NodeId target() { return target; }
            @Override Reply await() { return r; }
        };
    }

    static Reply networkError(SdRequest req) {
        return new Reply(SdResponse.replyTo(req, SdResult.NETWORK_ERROR), Request.NO_DATA);
    }

    /**
     * A request on a link of its own. The caller sent it (small payloads) or a sender thread is sending it
     * ({@code sending} not null: large payloads, so that the copies go out side by side); the caller reads the reply.
     */
    static final class OnLink extends PeerCall {
        private final PeerPool pool;
        private final PeerLink link;
        private final SdRequest req;
        private final CompletableFuture<Void> sending;
        private Reply reply;

        /**
         * @param sending the send in progress on another thread, or null if the caller has sent the request
         */
        OnLink(PeerPool pool, PeerLink link, SdRequest req, CompletableFuture<Void> sending) {
            this.pool = pool;
            this.link = link;
            this.req = req;
            this.sending = sending;
        }

        @Override NodeId target() { return link.peer(); }

        @Override Reply await() {
            if (reply != null) return reply;
            try {
                if (sending != null) sending.get();
                reply = link.receive();
            } catch (IOException | ExecutionException e) {
                Gateway.warnPeerFailure(link.peer(), req, e.getMessage());
                link.close();
                reply = networkError(req);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                link.close();
                // the closed link ends the send soon; wait for it, since the caller may reuse the payload's buffer as
                // soon as this returns (join ignores the interrupt)
                if (sending != null) sending.handle((v, t) -> null).join();
                reply = networkError(req);
            } finally {
                pool.release(link);
            }
            return reply;
        }
    }
}
