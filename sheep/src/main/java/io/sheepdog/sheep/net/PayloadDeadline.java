package io.sheepdog.sheep.net;

import io.netty.channel.ChannelHandlerContext;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * How long a connection may take to send the payload of a request once its header was admitted: a write holds its
 * share of the front door's {@link PayloadBudget} from its header on, so a client that sends a few large write
 * headers and then trickles (or nothing) would otherwise hold the whole budget, and every other client's writes
 * would wait for as long as it likes. Past {@link #DEFAULT_MS} (30 s, {@code -Dsheepdog.payloadTimeoutMs}: at least
 * 1 MiB/s for the largest request) the connection is closed and its room given back.
 *
 * <p>Time the server itself stopped reading the connection (its own back-pressure: too many of its requests in
 * flight) does not count. One timer per connection at most, re-armed only while a payload is in progress, so a
 * stream of requests costs no timer each. Event loop only.
 */
public final class PayloadDeadline {
    /** The default limit, in milliseconds. */
    public static final long DEFAULT_MS = Long.getLong("sheepdog.payloadTimeoutMs", 30_000);

    private final long timeoutNanos;
    private final LongSupplier clock;
    private final Runnable onExpiry;
    /** When the payload in progress started (clock, never 0); 0 when none is. */
    private long since;
    private boolean armed;

    /**
     * The time limit and the clock that deadlines keep: the defaults, or a test's (an EmbeddedChannel's scheduled time
     * moves only when the test says so, and the clock must move with it).
     */
    public record Limit(long timeoutMs, LongSupplier nanoClock) {
        /** {@link #DEFAULT_MS} by the system's clock. */
        public Limit() {
            this(DEFAULT_MS, System::nanoTime);
        }

        /** A deadline whose {@code onExpiry} runs on the event loop when a payload took longer than the limit. */
        public PayloadDeadline deadline(Runnable onExpiry) {
            return new PayloadDeadline(timeoutMs, nanoClock, onExpiry);
        }
    }

    private PayloadDeadline(long timeoutMs, LongSupplier clock, Runnable onExpiry) {
        if (timeoutMs < 1) throw new IllegalArgumentException("payload timeout must be positive: " + timeoutMs);
        this.timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        this.clock = clock;
        this.onExpiry = onExpiry;
    }

    /** The limit, in milliseconds. */
    public long timeoutMs() { return TimeUnit.NANOSECONDS.toMillis(timeoutNanos); }

    /** A payload starts arriving (its header was admitted). */
    public void started(ChannelHandlerContext ctx) {
        since = clock.getAsLong() | 1;
        arm(ctx, timeoutNanos);
    }

    /** The payload is complete, or the connection is gone. */
    public void ended() {
        since = 0;
    }

    private void arm(ChannelHandlerContext ctx, long delayNanos) {
        if (armed) return; // the timer already set finds this payload when it fires
        armed = true;
        ctx.executor().schedule(() -> expire(ctx), delayNanos, TimeUnit.NANOSECONDS);
    }

    private void expire(ChannelHandlerContext ctx) {
        armed = false;
        if (since == 0 || !ctx.channel().isActive()) return;
        long now = clock.getAsLong();
        if (!ctx.channel().config().isAutoRead()) {
            // this server stopped reading: the client cannot be late meanwhile
            since = now | 1;
            arm(ctx, timeoutNanos);
            return;
        }
        long left = since + timeoutNanos - now;
        if (left > 0) {
            arm(ctx, left);
            return;
        }
        since = 0;
        onExpiry.run();
    }
}
