package io.sheepdog.sheep.net;

import java.util.ArrayList;
import java.util.List;

/**
 * The payload bytes that all connections of one front door (the NBD server, the Sheepdog protocol server) may have
 * in flight together, so that the memory they take (network buffers, the copies made of them, the reply buffers)
 * has a bound whatever the number of clients. A write holds its share from the moment its header is read, before
 * its payload is, until it has been served; an NBD read from when it is admitted until its reply is built.
 *
 * <p>A connection that finds no room stops reading (its client waits in TCP) and is called back when bytes are
 * given back. A request is always admitted when nothing else is in flight, so one larger than the whole budget
 * still runs, alone.
 */
public final class PayloadBudget {
    private final long max;
    private long used;                                  // guarded by this
    private final List<Runnable> waiting = new ArrayList<>();

    public PayloadBudget(long max) {
        if (max < 1) throw new IllegalArgumentException("in-flight budget must be positive: " + max);
        this.max = max;
    }

    /**
     * Takes {@code n} bytes if they fit (or nothing else is in flight). Otherwise registers {@code onRoom}, which is
     * run once, on the thread that next gives bytes back, and returns false; the caller then tries again.
     */
    public synchronized boolean tryAcquire(long n, Runnable onRoom) {
        if (used == 0 || used + n <= max) {
            used += n;
            return true;
        }
        waiting.add(onRoom);
        return false;
    }

    /** Takes {@code n} bytes, waiting (in the calling thread) until they fit; 0 takes nothing. */
    public void acquire(long n) throws InterruptedException {
        if (n <= 0) return;
        while (true) {
            var room = new java.util.concurrent.CountDownLatch(1);
            if (tryAcquire(n, room::countDown)) return;
            room.await();
        }
    }

    /** Gives back {@code n} bytes taken by {@link #tryAcquire} and wakes every connection that waits for room. */
    public void release(long n) {
        if (n <= 0) return;
        List<Runnable> wake;
        synchronized (this) {
            used -= n;
            if (used < 0) {
                used = 0;
                throw new IllegalStateException("in-flight budget released more than was taken");
            }
            if (waiting.isEmpty()) return;
            wake = new ArrayList<>(waiting);
            waiting.clear();
        }
        for (Runnable r : wake) r.run();
    }

    /** Bytes in flight now (tests check it returns to 0). */
    public synchronized long used() { return used; }

    public long max() { return max; }
}
