package io.sheepdog.sheep.threads;

import java.util.List;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs each task on an idle platform thread of its own pool when there is one (or a new one, up to
 * {@code maxPlatform}), else on a new virtual thread. For request threads that block on a store write and on
 * sockets: a platform thread is woken by the kernel itself when its socket read or its fdatasync returns, where a
 * virtual thread takes two wakes (the JDK's poller, then a carrier thread) and its file I/O a compensation step in
 * the scheduler. At low queue depths every request so runs on a platform thread; past {@code maxPlatform} requests
 * at once the rest run as virtual threads, so a burst still gets a thread per request without a platform thread each.
 *
 * <p>Idle platform threads wait for a task (the most recently idle is given the next one, so that the others age
 * out) and end after {@code idleMillis} without one.
 */
public final class PlatformFirstExecutor extends AbstractExecutorService {
    private static final Logger LOG = LoggerFactory.getLogger(PlatformFirstExecutor.class);
    /** A worker's slot while it waits for a task, and once it has ended. */
    private static final Runnable WAITING = () -> { }, ENDED = () -> { };

    /**
     * The platform threads of a front door's requests (more requests at once run on virtual threads);
     * {@code -Dsheepdog.platformWorkers=0}: virtual threads only.
     */
    public static final int PLATFORM_THREADS = Integer.getInteger("sheepdog.platformWorkers", 64);

    private final String name;
    private final int maxPlatform;
    private final long idleNanos;
    private final ConcurrentLinkedDeque<Worker> idle = new ConcurrentLinkedDeque<>();
    private final AtomicInteger platformThreads = new AtomicInteger();
    private final AtomicInteger active = new AtomicInteger();
    private final Object termination = new Object();
    private volatile boolean shutdown;

    public PlatformFirstExecutor(String name, int maxPlatform, long idleMillis) {
        this.name = name;
        this.maxPlatform = maxPlatform;
        this.idleNanos = TimeUnit.MILLISECONDS.toNanos(idleMillis);
    }

    @Override
    public void execute(Runnable task) {
        if (shutdown) throw new RejectedExecutionException(name + ": shut down");
        active.incrementAndGet();
        for (Worker w; (w = idle.pollFirst()) != null; ) {
            if (w.slot.compareAndSet(WAITING, task)) {
                LockSupport.unpark(w.thread);
                return;
            }
        }
        if (platformThreads.incrementAndGet() <= maxPlatform) {
            try {
                new Worker(task);
                return;
            } catch (OutOfMemoryError | RuntimeException e) {
                // no native thread to be had: a virtual one does
                LOG.debug("{}: no platform thread ({}): a virtual one", name, e.toString());
            }
        }
        platformThreads.decrementAndGet();
        try {
            Thread.ofVirtual().name(name).start(() -> run(task));
        } catch (RuntimeException | Error e) {
            done();
            throw e;
        }
    }

    private void run(Runnable task) {
        try {
            task.run();
        } catch (RuntimeException | Error e) {
            LOG.error("{}: a task failed", name, e);
        } finally {
            done();
        }
    }

    private void done() {
        if (active.decrementAndGet() == 0 && shutdown) {
            synchronized (termination) {
                termination.notifyAll();
            }
        }
    }

    /** Platform threads now, idle or busy (tests). */
    int platformThreads() { return platformThreads.get(); }

    /** A platform thread that runs tasks one after another and waits in between. */
    private final class Worker {
        final AtomicReference<Runnable> slot = new AtomicReference<>();
        final Thread thread;

        Worker(Runnable first) {
            slot.set(first);
            thread = Thread.ofPlatform().daemon().name(name).start(this::loop);
        }

        private void loop() {
            try {
                while (true) {
                    Runnable task = slot.get();
                    run(task);
                    // a task that kept its interrupt (caught InterruptedException, set the flag again) must not hand
                    // it to the next: that one's first FileChannel call would fail and close a shared channel
                    Thread.interrupted();
                    slot.set(WAITING);
                    if (shutdown) return;
                    idle.addFirst(this);
                    if (shutdown && slot.compareAndSet(WAITING, ENDED)) return; // shutdown() may have missed it
                    if (!awaitTask()) return;
                }
            } finally {
                platformThreads.decrementAndGet();
            }
        }

        /** Waits for a task in the slot; false if none came within the idle time (or the executor shut down). */
        private boolean awaitTask() {
            long deadline = System.nanoTime() + idleNanos;
            while (slot.get() == WAITING) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || shutdown) {
                    if (slot.compareAndSet(WAITING, ENDED)) {
                        idle.remove(this);
                        return false;
                    }
                    break; // a task was handed over meanwhile
                }
                LockSupport.parkNanos(this, left);
            }
            return slot.get() != ENDED;
        }
    }

    @Override
    public void shutdown() {
        shutdown = true;
        for (Worker w : idle) {
            if (w.slot.compareAndSet(WAITING, ENDED)) LockSupport.unpark(w.thread);
        }
        idle.clear();
        if (active.get() == 0) {
            synchronized (termination) {
                termination.notifyAll();
            }
        }
    }

    /** Tasks are never queued (each starts at once), so there is never a list of tasks that did not run. */
    @Override
    public List<Runnable> shutdownNow() {
        shutdown();
        return List.of();
    }

    @Override public boolean isShutdown() { return shutdown; }

    @Override public boolean isTerminated() { return shutdown && active.get() == 0; }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        synchronized (termination) {
            while (!isTerminated()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) return false;
                TimeUnit.NANOSECONDS.timedWait(termination, left);
            }
        }
        return true;
    }
}
