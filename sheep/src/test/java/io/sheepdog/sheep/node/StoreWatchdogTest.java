package io.sheepdog.sheep.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class StoreWatchdogTest {

    @Test
    void aCheckThatNeverEndsIsAHungDiskToldOnce() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger checks = new AtomicInteger();
        AtomicInteger told = new AtomicInteger();
        AtomicReference<String> why = new AtomicReference<>();
        CountDownLatch hung = new CountDownLatch(1);
        // the second check blocks, as a write to a frozen file system does
        try (StoreWatchdog w = new StoreWatchdog(() -> {
            if (checks.incrementAndGet() == 2) {
                try {
                    release.await();
                } catch (InterruptedException ignored) { }
            }
        }, 20, 300, s -> { why.set(s); told.incrementAndGet(); hung.countDown(); }).start()) {
            long t0 = System.nanoTime();
            assertTrue(hung.await(5, TimeUnit.SECONDS), "a check that does not end is reported");
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(ms >= 300, "not before the timeout: " + ms + " ms");
            assertTrue(why.get().contains("has not ended"), why.get());
            assertTrue(w.runningForMs() >= 300);
            Thread.sleep(700);
            assertEquals(1, told.get(), "told once");
        } finally {
            release.countDown();
        }
    }

    @Test
    void checksThatEndInTimeAreNeverReported() throws Exception {
        AtomicInteger checks = new AtomicInteger();
        AtomicReference<String> why = new AtomicReference<>();
        // each check takes a while, but less than the timeout
        try (StoreWatchdog w = new StoreWatchdog(() -> {
            checks.incrementAndGet();
            try {
                Thread.sleep(100);
            } catch (InterruptedException ignored) { }
        }, 10, 400, why::set).start()) {
            Thread.sleep(1500);
            assertTrue(checks.get() >= 5, "the checks ran: " + checks.get());
        }
        assertNull(why.get());
    }

    @Test
    void aTimeoutOfZeroNeverReportsAndCloseStopsTheChecks() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger checks = new AtomicInteger();
        AtomicReference<String> why = new AtomicReference<>();
        StoreWatchdog w = new StoreWatchdog(() -> {
            if (checks.incrementAndGet() == 1) {
                try {
                    release.await(1, TimeUnit.SECONDS);
                } catch (InterruptedException ignored) { }
            }
        }, 10, 0, why::set).start();
        Thread.sleep(1300);
        assertNull(why.get(), "0: never");
        w.close();
        int after = checks.get();
        Thread.sleep(200);
        assertTrue(checks.get() <= after + 1, "no checks after close");
    }
}
