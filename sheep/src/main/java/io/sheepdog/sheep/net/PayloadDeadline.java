package io.sheepdog.sheep.net;

import java.util.function.LongSupplier;

/**
 * How long a connection may take to send the payload of a request once its header was admitted: a write holds its
 * share of the front door's {@link PayloadBudget} from its header on, so a client that sends a few large write
 * headers and then trickles (or nothing) would otherwise hold the whole budget, and every other client's writes
 * would wait for as long as it likes. Past {@link #DEFAULT_MS} (30 s, {@code -Dsheepdog.payloadTimeoutMs}: at least
 * 1 MiB/s for the largest request) the connection is closed and its room given back.
 *
 * <p>Time the server itself stopped reading the connection (its own back-pressure: too many of its requests in
 * flight) does not count. The decoders time each payload with a {@link StallTimer} from {@link Limit#deadline}.
 */
public final class PayloadDeadline {
    /** The default limit, in milliseconds. */
    public static final long DEFAULT_MS = Long.getLong("sheepdog.payloadTimeoutMs", 30_000);

    private PayloadDeadline() {}

    /**
     * The time limit and the clock that deadlines keep: the defaults, or a test's (an EmbeddedChannel's scheduled time
     * moves only when the test says so, and the clock must move with it).
     */
    public record Limit(long timeoutMs, LongSupplier nanoClock) {
        /** {@link #DEFAULT_MS} by the system's clock. */
        public Limit() {
            this(DEFAULT_MS, System::nanoTime);
        }

        /**
         * A deadline whose {@code onExpiry} runs on the event loop when a payload took longer than the limit; time the
         * channel was not read does not count.
         */
        public StallTimer deadline(Runnable onExpiry) {
            return new StallTimer(timeoutMs, nanoClock, ch -> !ch.config().isAutoRead(), onExpiry);
        }
    }
}
