package io.sheepdog.sheep.nbd;

import static org.junit.jupiter.api.Assertions.*;

import io.netty.buffer.ByteBuf;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class FlushCoalescerTest {

    /** Export whose first flush blocks until released, and whose flushes may be told to fail. */
    private static final class SlowFlushExport implements NbdExport {
        final AtomicInteger flushes = new AtomicInteger();
        final CountDownLatch firstEntered = new CountDownLatch(1);
        final CountDownLatch releaseFirst = new CountDownLatch(1);
        volatile boolean failFirst;

        public void flush() throws IOException {
            int n = flushes.incrementAndGet();
            if (n == 1) {
                firstEntered.countDown();
                try {
                    releaseFirst.await();
                } catch (InterruptedException e) {
                    throw new IOException(e);
                }
                if (failFirst) throw NbdException.io("first flush failed");
            }
        }

        public long size() { return 0; }
        public boolean readOnly() { return false; }
        public void read(long o, int l, ByteBuf d) { }
        public void write(long o, ByteBuf d, boolean f) { }
        public void trim(long o, long l, boolean f) { }
        public void writeZeroes(long o, long l, boolean n, boolean f) { }
        public List<NbdExtent> allocation(long o, long l) { return List.of(); }
        public void close() { }
    }

    private static List<Thread> startWaiters(FlushCoalescer c, int n, AtomicInteger ok, AtomicInteger failed)
            throws InterruptedException {
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Thread t = Thread.ofPlatform().start(() -> {
                try {
                    c.flush();
                    ok.incrementAndGet();
                } catch (IOException e) {
                    failed.incrementAndGet();
                }
            });
            threads.add(t);
        }
        // Each waiter has taken its ticket once it parks on the flusher lock.
        for (Thread t : threads) {
            while (t.getState() != Thread.State.WAITING) {
                assertTrue(t.isAlive(), "waiter finished while a flush was running");
                Thread.sleep(1);
            }
        }
        return threads;
    }

    @Test
    void requestsArrivingDuringAFlushShareTheNextOne() throws Exception {
        SlowFlushExport e = new SlowFlushExport();
        FlushCoalescer c = new FlushCoalescer(e);
        AtomicInteger ok = new AtomicInteger(), failed = new AtomicInteger();
        Thread first = Thread.ofPlatform().start(() -> {
            try {
                c.flush();
                ok.incrementAndGet();
            } catch (IOException ex) {
                failed.incrementAndGet();
            }
        });
        assertTrue(e.firstEntered.await(10, TimeUnit.SECONDS));
        List<Thread> waiters = startWaiters(c, 8, ok, failed);
        assertEquals(1, e.flushes.get());
        e.releaseFirst.countDown();
        first.join();
        for (Thread t : waiters) t.join();
        // The 8 arrived after the first flush started, so it cannot answer them: exactly one more flush does.
        assertEquals(2, e.flushes.get());
        assertEquals(9, ok.get());
        assertEquals(0, failed.get());
    }

    @Test
    void aFailedFlushAnswersOnlyItsCallerAndTheOthersRetry() throws Exception {
        SlowFlushExport e = new SlowFlushExport();
        e.failFirst = true;
        FlushCoalescer c = new FlushCoalescer(e);
        AtomicInteger ok = new AtomicInteger(), failed = new AtomicInteger();
        Thread first = Thread.ofPlatform().start(() -> {
            try {
                c.flush();
                ok.incrementAndGet();
            } catch (IOException ex) {
                failed.incrementAndGet();
            }
        });
        assertTrue(e.firstEntered.await(10, TimeUnit.SECONDS));
        List<Thread> waiters = startWaiters(c, 3, ok, failed);
        e.releaseFirst.countDown();
        first.join();
        for (Thread t : waiters) t.join();
        assertEquals(1, failed.get());
        assertEquals(3, ok.get());
        assertEquals(2, e.flushes.get());
    }

    @Test
    void sequentialFlushesEachReachTheExport() throws Exception {
        SlowFlushExport e = new SlowFlushExport();
        e.releaseFirst.countDown();
        FlushCoalescer c = new FlushCoalescer(e);
        for (int i = 0; i < 5; i++) c.flush();
        assertEquals(5, e.flushes.get());
    }
}
