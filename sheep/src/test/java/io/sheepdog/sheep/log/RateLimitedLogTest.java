package io.sheepdog.sheep.log;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** Lines a client can repeat at will: ten of a kind per window, at their level, with their stack traces. */
class RateLimitedLogTest {
    @Test
    void tenLinesOfAKindPerWindowAtTheirLevel() {
        Logger logger = (Logger) LoggerFactory.getLogger("rate-limited-log-test");
        ListAppender<ILoggingEvent> got = new ListAppender<>();
        got.start();
        logger.addAppender(got);
        try {
            RateLimitedLog log = new RateLimitedLog(logger);
            for (int i = 0; i < 25; i++) log.error("boom", "failure {}", i, new IllegalStateException("bug " + i));
            for (int i = 0; i < 3; i++) log.warn("other", "refused {}", i);
            assertEquals(13, got.list.size(), "10 errors of one kind, 3 warnings of another");
            ILoggingEvent first = got.list.get(0);
            assertEquals(Level.ERROR, first.getLevel());
            assertEquals("failure 0", first.getFormattedMessage());
            assertTrue(first.getThrowableProxy() != null, "the stack trace is kept");
            assertEquals(Level.WARN, got.list.get(12).getLevel());
        } finally {
            logger.detachAppender(got);
        }
    }
}
