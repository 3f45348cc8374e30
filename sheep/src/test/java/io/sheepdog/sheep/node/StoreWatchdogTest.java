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

    /**
     * Closing the watchdog while a check writes to the disk must not cut that write short: an interrupt in file I/O
     * closes the channel (ClosedByInterruptException), which the node read as a failed store and exited with status 1
     * (seen in CI: a unit test's node stopping took the whole test JVM down).
     */
    @Test
    void closeDoesNotInterruptACheckUnderWay(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        CountDownLatch inCheck = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch checkDone = new CountDownLatch(1);
        StoreWatchdog w = new StoreWatchdog(() -> {
            if (inCheck.getCount() == 0) return;
            inCheck.countDown();
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dir.resolve("probe"),
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE)) {
                closed.await(5, TimeUnit.SECONDS); // the watchdog is closed while this check is in the middle
                ch.write(java.nio.ByteBuffer.wrap(new byte[] {1}));
                ch.force(false);
            } catch (Throwable t) {
                failure.set(t);
            } finally {
                checkDone.countDown();
            }
        }, 10, 0, s -> { }).start();
        assertTrue(inCheck.await(5, TimeUnit.SECONDS));
        w.close();
        closed.countDown();
        assertTrue(checkDone.await(5, TimeUnit.SECONDS));
        assertNull(failure.get(), "the check under way ran to its end");
    }
}
