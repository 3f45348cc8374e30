package io.sheepdog.sheep.gateway;

import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Holds a VDI's writes through this gateway still while a snapshot of it is made.
 *
 * <p>A snapshot turns the working VDI A into a read-only snapshot and makes a new working VDI B whose object table is
 * A's, copied when the snapshot is made. A client writing A all the while has writes in flight at that moment, and
 * two races would lose writes it was told are done: (1) a write still landing in A's object after the client, told
 * READONLY for its next write, already made B's copy of that object from A's (the copy misses the late write); (2) a
 * write that created A's object before the copy and records it in A's table after it (B never names the object). The
 * protocol has no way to make them atomic, and the original clients and sheep share both races.
 *
 * <p>So before A's table is copied, every gateway pauses A ({@link #pause}): new data writes of A wait
 * ({@link #enterWrite}), and the pause returns once the writes in flight are done and every object created has been
 * recorded in A's table (a record is never held: the pause waits for it). After the snapshot is made, {@link #resume}
 * lets the held writes go: they find A read-only and the client redoes them on B, whose table now has everything.
 * A pause ends by itself after its time to live, so a snapshot whose node died holds nobody for long.
 */
public final class VdiWriteFence {
    /** A create not recorded for this long is one whose client went away: a pause no longer waits for it. */
    static final long UNRECORDED_TTL_MS = 30_000;

    private final ConcurrentHashMap<Integer, Gate> gates = new ConcurrentHashMap<>();
    private final long unrecordedTtlNanos;

    public VdiWriteFence() { this(UNRECORDED_TTL_MS); }

    /** @param unrecordedTtlMs how long a pause waits at most for the record of a create */
    VdiWriteFence(long unrecordedTtlMs) { this.unrecordedTtlNanos = TimeUnit.MILLISECONDS.toNanos(unrecordedTtlMs); }

    /** One VDI's writes through this gateway. Guarded by itself. */
    private static final class Gate {
        int inFlight;
        /** {@link System#nanoTime} until which new data writes wait; 0: not paused. */
        long pausedUntil;
        /** Object index -> when its create (of this VDI's own object) ended, until its record in the table comes. */
        final Map<Long, Long> unrecorded = new HashMap<>();

        boolean paused(long now) { return pausedUntil != 0 && now - pausedUntil < 0; }

        boolean idle() { return inFlight == 0 && pausedUntil == 0 && unrecorded.isEmpty(); }
    }

    private Gate gate(int vid) { return gates.computeIfAbsent(vid, v -> new Gate()); }

    /**
     * A write or create of one of {@code vid}'s data objects begins: waits while a snapshot pauses the VDI (until it
     * is resumed, or its pause expires). Every call is paired with {@link #exit}.
     */
    public void enterWrite(int vid) throws InterruptedException {
        Gate g = gate(vid);
        synchronized (g) {
            long now;
            while (g.paused(now = System.nanoTime())) {
                TimeUnit.NANOSECONDS.timedWait(g, g.pausedUntil - now);
            }
            g.inFlight++;
        }
    }

    /** A write of {@code vid}'s object table begins: never held (a pause waits for the records). Paired with {@link #exit}. */
    public void enterRecord(int vid) {
        Gate g = gate(vid);
        synchronized (g) {
            g.inFlight++;
        }
    }

    public void exit(int vid) {
        Gate g = gates.get(vid);
        if (g == null) return;
        synchronized (g) {
            g.inFlight--;
            g.notifyAll();
            if (g.idle()) gates.remove(vid, g);
        }
    }

    /** {@code vid}'s object {@code idx} was created: it is not in the table until {@link #recorded} says so. */
    public void created(int vid, long idx) {
        Gate g = gate(vid);
        synchronized (g) {
            long now = System.nanoTime();
            if (g.unrecorded.size() >= 4096) dropExpired(g, now); // creates whose client never recorded them
            g.unrecorded.put(idx, now);
        }
    }

    /** Entries {@code firstIdx..firstIdx+count-1} of {@code vid}'s table were written. */
    public void recorded(int vid, long firstIdx, int count) {
        Gate g = gates.get(vid);
        if (g == null) return;
        synchronized (g) {
            if (g.unrecorded.isEmpty()) return;
            if (count < g.unrecorded.size()) {
                for (long i = firstIdx; i < firstIdx + count; i++) g.unrecorded.remove(i);
            } else {
                g.unrecorded.keySet().removeIf(i -> i >= firstIdx && i < firstIdx + count);
            }
            g.notifyAll();
        }
    }

    /**
     * Pauses new data writes of {@code vid} for at most {@code ttlMs}, and waits up to {@code drainMs} until the writes
     * in flight are done and every create is recorded. True if so; false if not in time (the pause stays until
     * {@link #resume} or its time to live).
     */
    public boolean pause(int vid, long ttlMs, long drainMs) throws InterruptedException {
        Gate g = gate(vid);
        synchronized (g) {
            long now = System.nanoTime();
            g.pausedUntil = (now + TimeUnit.MILLISECONDS.toNanos(ttlMs)) | 1;
            long until = now + TimeUnit.MILLISECONDS.toNanos(drainMs);
            while (true) {
                now = System.nanoTime();
                dropExpired(g, now);
                if (g.inFlight == 0 && g.unrecorded.isEmpty()) return true;
                if (now - until >= 0) return false;
                TimeUnit.NANOSECONDS.timedWait(g, Math.min(until - now, TimeUnit.MILLISECONDS.toNanos(100)));
            }
        }
    }

    /** Lets {@code vid}'s held writes go. */
    public void resume(int vid) {
        Gate g = gates.get(vid);
        if (g == null) return;
        synchronized (g) {
            g.pausedUntil = 0;
            g.notifyAll();
            if (g.idle()) gates.remove(vid, g);
        }
    }

    /** Whether {@code vid} is paused now (tests, diagnostics). */
    public boolean paused(int vid) {
        Gate g = gates.get(vid);
        if (g == null) return false;
        synchronized (g) {
            return g.paused(System.nanoTime());
        }
    }

    private void dropExpired(Gate g, long now) {
        for (Iterator<Long> it = g.unrecorded.values().iterator(); it.hasNext(); ) {
            if (now - it.next() > unrecordedTtlNanos) it.remove();
        }
    }
}
