package io.sheepdog.sheep.log;

import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;

/**
 * Warnings that can repeat without bound (a hostile client, a peer that is down, an inode full of garbage) go
 * through here: per kind of message at most {@code burst} lines per {@code windowMs}; the next line after a quiet
 * spell says how many were left out. The log stays readable and its size bounded whatever the traffic.
 */
public final class RateLimitedLog {
    private final Logger log;
    private final int burst;
    private final long windowNanos;
    private final ConcurrentHashMap<String, Window> windows = new ConcurrentHashMap<>();

    private static final class Window {
        long start;
        int logged;
        long suppressed;
    }

    public RateLimitedLog(Logger log, int burst, long windowMs) {
        this.log = log;
        this.burst = burst;
        this.windowNanos = windowMs * 1_000_000L;
    }

    /** Ten lines per kind every ten seconds. */
    public RateLimitedLog(Logger log) { this(log, 10, 10_000); }

    /** Logs {@code format} at WARN unless lines of this {@code kind} went over the limit in the current window. */
    public void warn(String kind, String format, Object... args) {
        long left = admit(kind);
        if (left < 0) return;
        if (left > 0) log.warn(format + " [" + left + " similar lines left out]", args);
        else log.warn(format, args);
    }

    /** As {@link #warn}, at ERROR: a failure that should not happen, which a client may still repeat at will. */
    public void error(String kind, String format, Object... args) {
        long left = admit(kind);
        if (left < 0) return;
        if (left > 0) log.error(format + " [" + left + " similar lines left out]", args);
        else log.error(format, args);
    }

    /** -1: leave this line out; otherwise how many lines of the kind were left out before it. */
    private long admit(String kind) {
        if (windows.size() > 10_000) windows.clear(); // kinds are a handful of literals; this is only a backstop
        Window w = windows.computeIfAbsent(kind, k -> new Window());
        synchronized (w) {
            long now = System.nanoTime();
            if (w.start == 0 || now - w.start >= windowNanos) {
                long s = w.suppressed;
                w.start = now;
                w.logged = 1;
                w.suppressed = 0;
                return s;
            }
            if (w.logged < burst) {
                w.logged++;
                return 0;
            }
            w.suppressed++;
            return -1;
        }
    }
}
