package io.sheepdog.sheep.net;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Predicate;

/**
 * Times one thing a connection waits on (a write's payload, its client reading the replies) and runs an action once
 * it has lasted longer than a limit: {@link PayloadDeadline}, {@link SlowReaderGuard}. One timer per connection at
 * most, re-armed only while something is timed, so a stream of short waits costs no timer each. While {@code paused}
 * says so (this server's own back-pressure), the clock starts again instead. Event loop only.
 */
public final class StallTimer {
    private final long timeoutNanos;
    private final LongSupplier clock;
    private final Predicate<Channel> paused;
    private final Runnable onExpiry;
    /** When what is timed started (clock, never 0); 0 when nothing is. */
    private long since;
    private boolean armed;

    /**
     * @param clock    nanoseconds (System::nanoTime; a test's, whose EmbeddedChannel's scheduled time moves only when
     *                 the test says so)
     * @param paused   whether the channel's time does not count now (the clock starts again when the timer finds it so)
     * @param onExpiry run on the event loop when what is timed has lasted longer than {@code timeoutMs}
     */
    StallTimer(long timeoutMs, LongSupplier clock, Predicate<Channel> paused, Runnable onExpiry) {
        if (timeoutMs < 1) throw new IllegalArgumentException("timeout must be positive: " + timeoutMs);
        this.timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        this.clock = clock;
        this.paused = paused;
        this.onExpiry = onExpiry;
    }

    /** The limit, in milliseconds. */
    public long timeoutMs() { return TimeUnit.NANOSECONDS.toMillis(timeoutNanos); }

    /** What is timed starts now (a payload's header was admitted; the channel became unwritable). */
    public void started(ChannelHandlerContext ctx) {
        since = clock.getAsLong() | 1;
        arm(ctx, timeoutNanos);
    }

    /** What was timed is over (the payload is complete, the channel writable again, the connection gone). */
    public void ended() {
        since = 0;
    }

    private void arm(ChannelHandlerContext ctx, long delayNanos) {
        if (armed) return; // the timer already set finds the new start when it fires
        armed = true;
        ctx.executor().schedule(() -> expire(ctx), delayNanos, TimeUnit.NANOSECONDS);
    }

    private void expire(ChannelHandlerContext ctx) {
        armed = false;
        if (since == 0 || !ctx.channel().isActive()) return;
        long now = clock.getAsLong();
        if (paused.test(ctx.channel())) {
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
