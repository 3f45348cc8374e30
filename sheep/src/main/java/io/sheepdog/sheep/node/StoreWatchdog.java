package io.sheepdog.sheep.node;

import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The periodic store check, and a watchdog over it that tells a hung disk.
 *
 * <p>Every {@code intervalMs} the check runs (a write and an fdatasync on every disk, see
 * {@code PeerService.checkStore}): it finds disks that fail without any request seeing it. A disk can also stop
 * answering altogether (a controller that hangs, a frozen file system, a dead path under multipath): then the check
 * never ends, and neither do the requests on that disk, while the process, its heartbeats and its driver session are
 * all fine, so no other node would ever find out, and every write with a copy on this node would wait for good. A
 * check still running after {@code timeoutMs} is that case: {@code onHung} is told once (the node then leaves the
 * cluster, and the others restore what it held, as for a failed store).
 *
 * <p>Two threads: the checker, which may block for good inside the check, and the watcher, which only reads a clock.
 * Both are platform threads: a virtual thread blocked in a file system call pins its carrier.
 */
public final class StoreWatchdog implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StoreWatchdog.class);

    private final Runnable check;
    private final long intervalMs;
    private final long timeoutMs;
    private final Consumer<String> onHung;
    /** {@link System#nanoTime} when the running check began; 0 while none runs. */
    private volatile long checkStarted;
    private volatile boolean closed;
    /** What the checker waits on between two checks: {@link #close} wakes it without interrupting a check. */
    private final Object pause = new Object();
    private Thread checker;
    private Thread watcher;

    /**
     * @param check      the store check (it reports a failed store itself)
     * @param intervalMs the pause between two checks
     * @param timeoutMs  how long a check may run before the store counts as hung; 0: never
     * @param onHung     told once, with why, when a check ran longer than {@code timeoutMs}
     */
    public StoreWatchdog(Runnable check, long intervalMs, long timeoutMs, Consumer<String> onHung) {
        if (intervalMs <= 0 || timeoutMs < 0) throw new IllegalArgumentException("interval " + intervalMs + ", timeout " + timeoutMs);
        this.check = check;
        this.intervalMs = intervalMs;
        this.timeoutMs = timeoutMs;
        this.onHung = onHung;
    }

    public StoreWatchdog start() {
        checker = Thread.ofPlatform().daemon().name("store-check").start(this::runChecks);
        if (timeoutMs > 0) watcher = Thread.ofPlatform().daemon().name("store-watchdog").start(this::watch);
        return this;
    }

    private void runChecks() {
        while (!closed) {
            synchronized (pause) {
                try {
                    if (!closed) pause.wait(intervalMs);
                } catch (InterruptedException e) {
                    return;
                }
            }
            if (closed) return;
            checkStarted = System.nanoTime() | 1; // never 0 while a check runs
            try {
                check.run();
            } catch (RuntimeException e) {
                LOG.warn("store check: {}", e.toString());
            } finally {
                long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - checkStarted);
                checkStarted = 0;
                if (timeoutMs > 0 && took > timeoutMs / 2) LOG.warn("the store check took {} ms (a disk that is slow or was stuck)", took);
            }
        }
    }

    private void watch() {
        long tick = Math.max(50, Math.min(1000, timeoutMs / 4));
        while (!closed) {
            try {
                Thread.sleep(tick);
            } catch (InterruptedException e) {
                return;
            }
            long started = checkStarted;
            if (started == 0 || closed) continue;
            long ranMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
            if (ranMs > timeoutMs) {
                String why = "the store check (a write and a sync on every disk) has not ended after " + ranMs
                        + " ms (--disk-timeout " + (timeoutMs / 1000.0) + " s): a disk stopped answering";
                LOG.error("{}", why);
                onHung.accept(why);
                return;
            }
        }
    }

    /** Whether a check runs now, and for how long (ms); -1 when none runs. */
    public long runningForMs() {
        long started = checkStarted;
        return started == 0 ? -1 : TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    }

    @Override
    public void close() {
        closed = true;
        // the checker is woken from its pause, never interrupted: an interrupt inside a check's file I/O closes the
        // channel (ClosedByInterruptException), which would read as a failed store. A check under way finishes or
        // stays (a daemon thread); the caller no longer counts its failures as the store's.
        synchronized (pause) {
            pause.notifyAll();
        }
        if (watcher != null) watcher.interrupt();
    }
}
