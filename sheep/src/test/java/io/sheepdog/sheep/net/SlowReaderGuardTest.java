package io.sheepdog.sheep.net;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.Unpooled;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * A connection whose replies wait unread for longer than the limit is closed (they hold the front door's budget); one
 * whose client reads, even late, is not.
 */
class SlowReaderGuardTest {
    private final AtomicLong now = new AtomicLong(5_000_000_000L);

    private EmbeddedChannel channel() {
        EmbeddedChannel ch = new EmbeddedChannel(new SlowReaderGuard("test", 1000, now::get));
        ch.config().setWriteBufferWaterMark(new WriteBufferWaterMark(8, 16));
        return ch;
    }

    private void pass(EmbeddedChannel ch, long ms) {
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
        ch.advanceTimeBy(ms, TimeUnit.MILLISECONDS);
        ch.runScheduledPendingTasks();
    }

    @Test
    void repliesLeftUnreadPastTheLimitCloseTheConnection() {
        EmbeddedChannel ch = channel();
        ch.write(Unpooled.wrappedBuffer(new byte[100])); // not flushed: waiting to go out, as for a client that reads nothing
        assertFalse(ch.isWritable());
        pass(ch, 900);
        assertTrue(ch.isOpen(), "within the limit");
        pass(ch, 200);
        assertFalse(ch.isOpen(), "1,100 ms unwritable: closed");
    }

    @Test
    void aClientThatReadsNowAndThenIsLeftAlone() {
        EmbeddedChannel ch = channel();
        for (int i = 0; i < 5; i++) {
            ch.write(Unpooled.wrappedBuffer(new byte[100]));
            assertFalse(ch.isWritable());
            pass(ch, 800);
            ch.flush(); // the client read it: writable again
            assertTrue(ch.isWritable());
            ch.releaseOutbound();
        }
        pass(ch, 5000);
        assertTrue(ch.isOpen(), "4 s unwritable in all, never 1 s at a time");
        ch.finishAndReleaseAll();
    }
}
