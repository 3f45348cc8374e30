package io.sheepdog.sheep.gateway;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

class VdiWriteFenceTest {
    private static final int VID = 0x1234;

    @Test
    void aPauseWaitsForTheWritesInFlightAndHoldsNewOnesUntilResumed() throws Exception {
        VdiWriteFence f = new VdiWriteFence();
        f.enterWrite(VID); // a write in flight
        CountDownLatch paused = new CountDownLatch(1);
        AtomicBoolean drained = new AtomicBoolean();
        Thread pauser = Thread.ofPlatform().start(() -> {
            try {
                drained.set(f.pause(VID, 10_000, 5_000));
            } catch (InterruptedException ignored) { }
            paused.countDown();
        });
        assertFalse(paused.await(300, TimeUnit.MILLISECONDS), "the pause waits for the write in flight");
        CountDownLatch entered = new CountDownLatch(1);
        Thread newWrite = Thread.ofPlatform().start(() -> {
            try {
                f.enterWrite(VID);
                entered.countDown();
                f.exit(VID);
            } catch (InterruptedException ignored) { }
        });
        f.exit(VID); // the write in flight ends
        assertTrue(paused.await(2, TimeUnit.SECONDS));
        assertTrue(drained.get());
        assertFalse(entered.await(300, TimeUnit.MILLISECONDS), "a new write waits while paused");
        assertTrue(f.paused(VID));
        f.resume(VID);
        assertTrue(entered.await(2, TimeUnit.SECONDS), "and goes once resumed");
        pauser.join();
        newWrite.join();
        assertFalse(f.paused(VID));
    }

    @Test
    void aPauseWaitsForTheRecordOfACreateWhichIsNeverHeld() throws Exception {
        VdiWriteFence f = new VdiWriteFence();
        f.enterWrite(VID);
        f.created(VID, 7);
        f.exit(VID);
        CountDownLatch paused = new CountDownLatch(1);
        Thread pauser = Thread.ofPlatform().start(() -> {
            try {
                if (f.pause(VID, 10_000, 5_000)) paused.countDown();
            } catch (InterruptedException ignored) { }
        });
        assertFalse(paused.await(300, TimeUnit.MILLISECONDS), "object 7 is created but not in the table yet");
        f.enterRecord(VID); // not held by the pause
        f.recorded(VID, 0, 16);
        f.exit(VID);
        assertTrue(paused.await(2, TimeUnit.SECONDS), "drained once recorded");
        f.resume(VID);
        pauser.join();
    }

    @Test
    void drainingGivesUpInTimeAndAPauseEndsByItself() throws Exception {
        VdiWriteFence f = new VdiWriteFence();
        f.enterWrite(VID); // never ends while we look
        long t0 = System.nanoTime();
        assertFalse(f.pause(VID, 600, 200), "not drained within 200 ms");
        assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(200));
        // the pause still holds new writes, for its time to live only
        long t1 = System.nanoTime();
        f.enterWrite(VID);
        long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t1);
        assertTrue(waited >= 200 && waited < 3000, "held until the pause expired: " + waited + " ms");
        f.exit(VID);
        f.exit(VID);
        // another VDI was never held
        f.enterWrite(VID + 1);
        f.exit(VID + 1);
    }

    @Test
    void aCreateWhoseRecordNeverComesIsNotWaitedForPastItsTimeToLive() throws Exception {
        VdiWriteFence f = new VdiWriteFence(300);
        f.created(VID, 3);
        assertFalse(f.pause(VID, 5_000, 100), "within the time to live: waited for");
        Thread.sleep(350);
        assertTrue(f.pause(VID, 5_000, 1_000), "past it: its client went away");
        f.resume(VID);
    }
}
