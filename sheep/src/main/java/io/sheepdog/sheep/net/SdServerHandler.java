package io.sheepdog.sheep.net;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.ops.RequestProcessor;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: every request runs on its own virtual thread, so many are in flight at once, and each reply
 * is written when it is ready (completion order, id echoed). Reading pauses while too many requests, or too many
 * payload bytes (written or to be read), are in flight: that bounds the heap one connection can hold, whatever the
 * client pipelines, and the sheep runs with a small heap.
 */
public final class SdServerHandler extends SimpleChannelInboundHandler<SdFrameDecoder.Frame> {
    private static final Logger LOG = LoggerFactory.getLogger(SdServerHandler.class);
    private static final AtomicLong CONNECTIONS = new AtomicLong();
    private static final int MAX_INFLIGHT = 256;
    /** Payload bytes in flight (write data and read lengths) at which reading pauses; one request may exceed it. */
    private static final long MAX_INFLIGHT_BYTES = 32L << 20;

    private final RequestProcessor processor;
    private final Consumer<ClientInfo> onClose;
    private final AtomicInteger inflight = new AtomicInteger();
    private final AtomicLong inflightBytes = new AtomicLong();
    private ClientInfo client;

    private final PayloadBudget budget;

    public SdServerHandler(RequestProcessor processor, Consumer<ClientInfo> onClose, PayloadBudget budget) {
        this.processor = processor;
        this.onClose = onClose;
        this.budget = budget;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        long id = CONNECTIONS.incrementAndGet();
        if (ctx.channel().remoteAddress() instanceof InetSocketAddress a) {
            client = new ClientInfo(NodeId.addrBytes(a.getAddress().getHostAddress()), a.getPort(), id);
        } else {
            client = new ClientInfo(NodeId.addrBytes("127.0.0.1"), 0, id);
        }
        ctx.fireChannelActive();
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, SdFrameDecoder.Frame f) {
        Request r = new Request(f.hdr(), f.data(), client);
        // a write's payload is here already; a read's reply will be about data_length bytes
        long bytes = Math.max(f.data().length, f.hdr().dataLength());
        int n = inflight.incrementAndGet();
        long b = inflightBytes.addAndGet(bytes);
        // paused before the request starts, so its own completion (below) always sees the pause and may lift it
        if (n >= MAX_INFLIGHT || b >= MAX_INFLIGHT_BYTES) ctx.channel().config().setAutoRead(false);
        Thread.ofVirtual().start(() -> {
            try {
                Reply rep = processOrFail(r);
                rep.header().dataLength(rep.data().length);
                ctx.writeAndFlush(Unpooled.wrappedBuffer(rep.header().bytes(), rep.data()));
            } finally {
                budget.release(f.reserved());
                int left = inflight.decrementAndGet();
                long leftBytes = inflightBytes.addAndGet(-bytes);
                if (left < MAX_INFLIGHT / 2 && leftBytes < MAX_INFLIGHT_BYTES / 2 && !ctx.channel().config().isAutoRead()) {
                    ctx.channel().config().setAutoRead(true);
                }
            }
        });
    }

    /**
     * The processor answers every request, failures included; an Error escapes it, and then the client still gets
     * an answer (NO_MEM when the heap, small on purpose, cannot hold what the request needs) instead of none.
     */
    private Reply processOrFail(Request r) {
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
