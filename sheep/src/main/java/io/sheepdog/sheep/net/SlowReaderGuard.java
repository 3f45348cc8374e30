package io.sheepdog.sheep.net;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.sheepdog.sheep.log.RateLimitedLog;
import java.util.concurrent.TimeUnit;
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
 * <p>One timer per connection at most, set while the channel is unwritable. Event loop only; put it anywhere in the
 * pipeline (the writability events reach every inbound handler that passes them on: put it first).
 */
public final class SlowReaderGuard extends ChannelInboundHandlerAdapter {
    /** The default limit, in milliseconds. */
    public static final long DEFAULT_MS = Long.getLong("sheepdog.replyTimeoutMs", 60_000);
    private static final RateLimitedLog WARN = new RateLimitedLog(LoggerFactory.getLogger(SlowReaderGuard.class));

    private final long timeoutNanos;
    private final LongSupplier clock;
    private final String door;
    /** Since when (clock, never 0) the channel has been unwritable; 0 while it is writable. */
    private long unwritableSince;
    private boolean armed;

    /** For the front door named {@code door} (said in the log), with the default limit. */
    public SlowReaderGuard(String door) {
        this(door, DEFAULT_MS, System::nanoTime);
    }

    /** With a test's limit and clock (an EmbeddedChannel's scheduled time moves only when the test says so). */
    SlowReaderGuard(String door, long timeoutMs, LongSupplier clock) {
        if (timeoutMs < 1) throw new IllegalArgumentException("reply timeout must be positive: " + timeoutMs);
        this.door = door;
        this.timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        this.clock = clock;
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (ctx.channel().isWritable()) {
            unwritableSince = 0;
        } else if (unwritableSince == 0) {
            unwritableSince = clock.getAsLong() | 1;
            arm(ctx, timeoutNanos);
        }
        ctx.fireChannelWritabilityChanged();
    }

    private void arm(ChannelHandlerContext ctx, long delayNanos) {
        if (armed) return; // the timer already set finds the new start when it fires
        armed = true;
        ctx.executor().schedule(() -> expire(ctx), delayNanos, TimeUnit.NANOSECONDS);
    }

    private void expire(ChannelHandlerContext ctx) {
        armed = false;
        if (unwritableSince == 0 || !ctx.channel().isActive()) return;
        if (ctx.channel().isWritable()) {
            unwritableSince = 0;
            return;
        }
        long left = unwritableSince + timeoutNanos - clock.getAsLong();
        if (left > 0) {
            arm(ctx, left);
            return;
        }
        WARN.warn("unread", "{}: closing the connection from {}: its client has read none of its replies for {} ms",
                door, ctx.channel().remoteAddress(), TimeUnit.NANOSECONDS.toMillis(timeoutNanos));
        ctx.close();
    }
}
