package io.sheepdog.sheep.net;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.access.AccessPolicy;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.ops.RequestProcessor;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: every request runs on a thread of its own (a platform thread while few are in flight, else
 * a virtual one: threads/PlatformFirstExecutor), so many are in flight at once, and each reply
 * is written when it is ready (completion order, id echoed). The bytes a request holds (its payload, its reply) were
 * admitted by {@link SdFrameDecoder} and are given back when the reply has been written to the socket, not before:
 * a reply queued behind a slow reader still counts. Reading also pauses while the connection's {@link ConnectionLimit}
 * is full (as the NBD front door does). A reply that cannot be written closes the connection, loudly: the client must never wait for an
 * answer that was lost.
 */
public final class SdServerHandler extends SimpleChannelInboundHandler<SdFrameDecoder.Frame> {
    private static final Logger LOG = LoggerFactory.getLogger(SdServerHandler.class);
    private static final AtomicLong CONNECTIONS = new AtomicLong();
    private static final int MAX_INFLIGHT = 256;

    private final RequestProcessor processor;
    private final Consumer<ClientInfo> onClose;
    /** Requests of this connection in flight (and the bytes the decoder admitted them for). */
    private final ConnectionLimit limit = new ConnectionLimit(MAX_INFLIGHT, Long.MAX_VALUE);
    private ClientInfo client;
    private final AccessPolicy access;
    private final Executor requests;
    /** Lines a client can cause again and again (refusals, failures it triggers): rate-limited. */
    private static final RateLimitedLog REFUSED = new RateLimitedLog(LOG);

    public SdServerHandler(RequestProcessor processor, Consumer<ClientInfo> onClose) {
        this(processor, onClose, null, null);
    }

    /** {@code access}: who is let in (null: everybody); {@code requests}: where requests run (null: a virtual thread each). */
    public SdServerHandler(RequestProcessor processor, Consumer<ClientInfo> onClose,
            AccessPolicy access, Executor requests) {
        this.processor = processor;
        this.onClose = onClose;
        this.access = access;
        this.requests = requests != null ? requests : r -> Thread.ofVirtual().start(r);
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        long id = CONNECTIONS.incrementAndGet();
        if (ctx.channel().remoteAddress() instanceof InetSocketAddress a) {
            client = new ClientInfo(NodeId.addrBytes(a.getAddress().getHostAddress()), a.getPort(), id);
        } else {
            client = new ClientInfo(NodeId.addrBytes("127.0.0.1"), 0, id);
        }
        if (access != null && ctx.channel().remoteAddress() instanceof InetSocketAddress && !access.letsIn(client.addr())) {
            REFUSED.warn("allow", "connection from {} refused: not in sheep --allow and not a cluster member", client.display());
            ctx.close();
            return;
        }
        ctx.fireChannelActive();
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, SdFrameDecoder.Frame f) {
        Request r = new Request(f.hdr(), f.data(), client);
        // paused before the request starts, so its own completion (below) always sees the pause and may lift it
        if (limit.begin(f.reserved())) ctx.channel().config().setAutoRead(false);
        Runnable serve = () -> {
            boolean written = false;
            try {
                Reply rep = answer(processor, r);
                rep.header().dataLength(rep.data().length);
                ctx.writeAndFlush(Unpooled.wrappedBuffer(rep.header().bytes(), rep.data())).addListener(w -> {
                    f.release();
                    if (!w.isSuccess() && ctx.channel().isActive()) {
                        LOG.warn("closing connection from {}: the reply to {} could not be written: {}",
                                client.display(), r.hdr(), w.cause() == null ? "?" : w.cause().toString());
                        ctx.close();
                    }
                });
                written = true;
            } catch (RuntimeException | Error e) {
                REFUSED.error("unbuilt", "closing connection from {}: no reply to {} could be built", client.display(), r.hdr(), e);
                ctx.close();
            } finally {
                if (!written) f.release();
                if (limit.end(f.reserved()) && !ctx.channel().config().isAutoRead()) {
                    ctx.channel().config().setAutoRead(true);
                }
            }
        };
        try {
            requests.execute(serve);
        } catch (RejectedExecutionException e) {
            // shutting down: the client is told by the connection closing, not left waiting
            f.release();
            limit.end(f.reserved());
            ctx.close();
        }
    }

    /**
     * The processor answers every request, failures included; an Error escapes it, and then the client still gets
     * an answer (NO_MEM when the heap, small on purpose, cannot hold what the request needs) instead of none.
     */
    static Reply answer(RequestProcessor processor, Request r) {
        try {
            return processor.process(r);
        } catch (OutOfMemoryError e) {
            LOG.warn("out of memory serving {} from {}: answering NO_MEM", r.hdr(), r.client().display());
            return new Reply(SdResponse.replyTo(r.hdr(), SdResult.NO_MEM), Request.NO_DATA);
        } catch (Error e) {
            LOG.error("failure serving {} from {}", r.hdr(), r.client().display(), e);
            return new Reply(SdResponse.replyTo(r.hdr(), SdResult.SYSTEM_ERROR), Request.NO_DATA);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (client != null) onClose.accept(client);
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (!(cause instanceof IOException)) LOG.warn("closing connection from {}: {}", ctx.channel().remoteAddress(), cause.toString());
        ctx.close();
    }
}
