package io.sheepdog.sheep.net;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.sheepdog.sheep.log.RateLimitedLog;
import java.util.function.LongSupplier;
import org.slf4j.LoggerFactory;

/**
 * Closes a connection whose client has not read its replies for {@link #DEFAULT_MS} (60 s,
 * {@code -Dsheepdog.replyTimeoutMs}): the channel stayed unwritable (more than Netty's high watermark waiting to go
 * out) all that time. A reply holds its share of the front door's {@link PayloadBudget} until it has been written, so
 * a few clients that send large reads and never read the answers would otherwise hold the whole budget, and every
 * other client's requests would wait for as long as they like. A client that reads at all, even slowly, lets the
 * channel become writable again now and then (at least 0.5 MiB/s for the largest reply, 32 MiB).
 *
 * <p>A {@link StallTimer}, started when the channel becomes unwritable and ended when it is writable again. Event
 * loop only; put it first in the pipeline (the writability events reach every inbound handler that passes them on).
 */
public final class SlowReaderGuard extends ChannelInboundHandlerAdapter {
    /** The default limit, in milliseconds. */
    public static final long DEFAULT_MS = Long.getLong("sheepdog.replyTimeoutMs", 60_000);
    private static final RateLimitedLog WARN = new RateLimitedLog(LoggerFactory.getLogger(SlowReaderGuard.class));

    private final StallTimer unread;
    private ChannelHandlerContext ctx;

    /** For the front door named {@code door} (said in the log), with the default limit. */
    public SlowReaderGuard(String door) {
        this(door, DEFAULT_MS, System::nanoTime);
    }

    /** With a test's limit and clock (an EmbeddedChannel's scheduled time moves only when the test says so). */
    SlowReaderGuard(String door, long timeoutMs, LongSupplier clock) {
        // never paused: this server not reading the client (as NBD does while unwritable) is no reason to wait longer
        this.unread = new StallTimer(timeoutMs, clock, ch -> false, () -> {
            WARN.warn("unread", "{}: closing the connection from {}: its client has read none of its replies for {} ms",
                    door, ctx.channel().remoteAddress(), timeoutMs);
            ctx.close();
        });
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) { this.ctx = ctx; }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        // Netty says every change, so the timer runs exactly while the channel is unwritable
        if (ctx.channel().isWritable()) unread.ended();
        else unread.started(ctx);
        ctx.fireChannelWritabilityChanged();
    }
}
