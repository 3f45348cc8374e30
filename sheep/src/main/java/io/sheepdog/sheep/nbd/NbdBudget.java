package io.sheepdog.sheep.nbd;

import java.util.ArrayList;
import java.util.List;

/**
 * The READ and WRITE payload bytes that all connections of one NBD server may have in flight together, so that the
 * memory they take (network buffers, the copies the export makes, the reply buffers) has a bound whatever the
 * number of clients. A write holds its share from the moment its header is read, before its payload is, until
 * the export has finished with it; a read from when it is admitted until its reply is built.
 *
 * <p>A connection that finds no room stops reading (its client waits in TCP) and is called back when bytes are
 * given back. A request is always admitted when nothing else is in flight, so one larger than the whole budget
 * still runs, alone.
 */
final class NbdBudget {
    private final long max;
    private long used;                                  // guarded by this
    private final List<Runnable> waiting = new ArrayList<>();

    NbdBudget(long max) {
        if (max < 1) throw new IllegalArgumentException("NBD in-flight budget must be positive: " + max);
        this.max = max;
    }

    /**
     * Takes {@code n} bytes if they fit (or nothing else is in flight). Otherwise registers {@code onRoom}, which is
     * run once, on the thread that next gives bytes back, and returns false; the caller then tries again.
     */
    synchronized boolean tryAcquire(long n, Runnable onRoom) {
        if (used == 0 || used + n <= max) {
            used += n;
            return true;
        }
        waiting.add(onRoom);
        return false;
    }

    /** Gives back {@code n} bytes taken by {@link #tryAcquire} and wakes every connection that waits for room. */
    void release(long n) {
        if (n <= 0) return;
        List<Runnable> wake;
        synchronized (this) {
            used -= n;
            if (used < 0) {
                used = 0;
                throw new IllegalStateException("NBD in-flight budget released more than was taken");
            }
            if (waiting.isEmpty()) return;
            wake = new ArrayList<>(waiting);
            waiting.clear();
        }
        for (Runnable r : wake) r.run();
    }

    /** Bytes in flight now (tests check it returns to 0). */
    synchronized long used() { return used; }

    long max() { return max; }
}
