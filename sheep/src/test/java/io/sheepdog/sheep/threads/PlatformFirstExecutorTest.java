package io.sheepdog.sheep.threads;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class PlatformFirstExecutorTest {
    private static void waitFor(java.util.function.BooleanSupplier c, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > deadline) fail("timed out waiting for " + what);
            Thread.sleep(5);
        }
    }

    /** A task's body that says it started and holds its thread until {@code release} opens. */
    private static void holdUntil(CountDownLatch started, CountDownLatch release) {
        started.countDown();
        try {
            release.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void tasksOneAfterAnotherRunOnOneReusedPlatformThread() throws Exception {
        PlatformFirstExecutor ex = new PlatformFirstExecutor("t", 4, 60_000);
        List<Thread> ran = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            CountDownLatch done = new CountDownLatch(1);
            ex.execute(() -> {
                synchronized (ran) {
                    ran.add(Thread.currentThread());
                }
                done.countDown();
            });
            assertTrue(done.await(10, TimeUnit.SECONDS));
            // the worker goes back to the idle list just after the task: let it, so that the next task finds it
            waitFor(() -> ex.platformThreads() == 1, "the worker idle");
            Thread.sleep(2);
        }
        assertFalse(ran.get(0).isVirtual(), "a platform thread");
        assertEquals(1, ran.stream().distinct().count(), "the idle worker took every next task");
        ex.shutdown();
        assertTrue(ex.awaitTermination(10, TimeUnit.SECONDS));
    }

    @Test
    void pastTheLimitTasksRunOnVirtualThreadsAndAllRunAtOnce() throws Exception {
        PlatformFirstExecutor ex = new PlatformFirstExecutor("t", 3, 60_000);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch started = new CountDownLatch(10);
        AtomicInteger virtual = new AtomicInteger(), platform = new AtomicInteger();
        for (int i = 0; i < 10; i++) {
            ex.execute(() -> {
                (Thread.currentThread().isVirtual() ? virtual : platform).incrementAndGet();
                holdUntil(started, release);
            });
        }
        assertTrue(started.await(10, TimeUnit.SECONDS), "every task started without waiting for another");
        assertEquals(3, platform.get());
        assertEquals(7, virtual.get());
        assertFalse(ex.awaitTermination(0, TimeUnit.MILLISECONDS));
        ex.shutdown();
        assertThrows(RejectedExecutionException.class, () -> ex.execute(() -> { }));
        assertFalse(ex.isTerminated(), "tasks still run");
        release.countDown();
        assertTrue(ex.awaitTermination(10, TimeUnit.SECONDS));
        waitFor(() -> ex.platformThreads() == 0, "the platform threads ended");
    }

    @Test
    void idlePlatformThreadsEnd() throws Exception {
        PlatformFirstExecutor ex = new PlatformFirstExecutor("t", 4, 50);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch started = new CountDownLatch(4);
        for (int i = 0; i < 4; i++) {
            ex.execute(() -> holdUntil(started, release));
        }
        assertTrue(started.await(10, TimeUnit.SECONDS));
        assertEquals(4, ex.platformThreads());
        release.countDown();
        waitFor(() -> ex.platformThreads() == 0, "idle threads gone after the idle time");
        // and a new task still runs (a new platform thread)
        CountDownLatch again = new CountDownLatch(1);
        ex.execute(again::countDown);
        assertTrue(again.await(10, TimeUnit.SECONDS));
        ex.shutdown();
        assertTrue(ex.awaitTermination(10, TimeUnit.SECONDS));
    }

    @Test
    void aTaskThatLeavesItsThreadInterruptedDoesNotPassItOn() throws Exception {
        PlatformFirstExecutor ex = new PlatformFirstExecutor("t", 1, 60_000);
        CountDownLatch first = new CountDownLatch(1);
        ex.execute(() -> {
            Thread.currentThread().interrupt();
            first.countDown();
        });
        assertTrue(first.await(10, TimeUnit.SECONDS));
        waitFor(() -> ex.platformThreads() == 1, "the worker idle");
        Thread.sleep(20);
        List<Thread> who = new ArrayList<>();
        List<Boolean> interrupted = new ArrayList<>();
        CountDownLatch second = new CountDownLatch(1);
        ex.execute(() -> {
            who.add(Thread.currentThread());
            interrupted.add(Thread.currentThread().isInterrupted());
            second.countDown();
        });
        assertTrue(second.await(10, TimeUnit.SECONDS));
        assertFalse(who.get(0).isVirtual(), "the same platform worker ran it");
        assertEquals(List.of(false), interrupted);
        ex.shutdown();
        assertTrue(ex.awaitTermination(10, TimeUnit.SECONDS));
    }
}
