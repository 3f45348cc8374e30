package io.sheepdog.sheep.net;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
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
 * is written when it is ready (completion order, id echoed). Reading pauses while too many are in flight.
 */
public final class SdServerHandler extends SimpleChannelInboundHandler<SdFrameDecoder.Frame> {
    private static final Logger LOG = LoggerFactory.getLogger(SdServerHandler.class);
    private static final AtomicLong CONNECTIONS = new AtomicLong();
    private static final int MAX_INFLIGHT = 256;

    private final RequestProcessor processor;
    private final Consumer<ClientInfo> onClose;
    private final AtomicInteger inflight = new AtomicInteger();
    private ClientInfo client;

    public SdServerHandler(RequestProcessor processor, Consumer<ClientInfo> onClose) {
        this.processor = processor;
        this.onClose = onClose;
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
        if (inflight.incrementAndGet() >= MAX_INFLIGHT) ctx.channel().config().setAutoRead(false);
        Thread.ofVirtual().start(() -> {
            Reply rep = processor.process(r);
            rep.header().dataLength(rep.data().length);
            ctx.writeAndFlush(Unpooled.wrappedBuffer(rep.header().bytes(), rep.data()));
            if (inflight.decrementAndGet() < MAX_INFLIGHT / 2 && !ctx.channel().config().isAutoRead()) {
                ctx.channel().config().setAutoRead(true);
            }
        });
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
