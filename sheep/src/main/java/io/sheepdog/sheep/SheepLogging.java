package io.sheepdog.sheep;

import ch.qos.logback.classic.AsyncAppender;
import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.FileAppender;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Sets up the daemon's log: {@code <dir>/sheep.log} (or stdout) in the original's "server" layout. */
final class SheepLogging {
    private SheepLogging() {}

    private static final String[] LEVELS = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

    static int parseLevel(String s) {
        if (s == null) return 6;
        for (int i = 0; i < LEVELS.length; i++) if (LEVELS[i].equalsIgnoreCase(s)) return i;
        if (s.equalsIgnoreCase("error")) return 3;
        if (s.equalsIgnoreCase("warn")) return 4;
        try {
            int v = Integer.parseInt(s);
            if (v >= 0 && v <= 7) return v;
        } catch (NumberFormatException ignored) { }
        throw new IllegalArgumentException("invalid log level '" + s + "' (emerg, alert, crit, err, warning, notice, info, debug)");
    }

    private static final int ASYNC_QUEUE = 8192;
    /** How long {@link #flush} waits for the queued lines to be written. */
    private static final long FLUSH_MS = 1000;

    /**
     * Writes out the queued log lines (at most {@value #FLUSH_MS} ms: the log's disk may hang) and stops logging; for
     * a process about to halt, which skips the shutdown hooks.
     */
    static void flush() {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx) ctx.stop();
    }

    static void configure(Path dir, boolean stdout, int level) {
        LoggerContext ctx = (LoggerContext) LoggerFactory.getILoggerFactory();
        ctx.reset();
        PatternLayoutEncoder enc = new PatternLayoutEncoder();
        enc.setContext(ctx);
        enc.setPattern("%d{MMM dd HH:mm:ss.SSS} %6level [%thread] %logger{0}: %msg%n");
        enc.start();
        Appender<ILoggingEvent> app;
        if (stdout) {
            ConsoleAppender<ILoggingEvent> c = new ConsoleAppender<>();
            c.setEncoder(enc);
            app = c;
        } else {
            FileAppender<ILoggingEvent> f = new FileAppender<>();
            f.setFile(dir.resolve("sheep.log").toString());
            f.setAppend(true);
            f.setEncoder(enc);
            app = f;
        }
        app.setContext(ctx);
        app.start();
        // Through a queue, written by a thread of its own: a log file on a disk that hangs (or a stdout nobody reads)
        // must not stop the threads that log, among them the one that takes the node out for that very disk. When
        // the queue is full, lines are dropped rather than waited for.
        AsyncAppender async = new AsyncAppender();
        async.setContext(ctx);
        async.setQueueSize(ASYNC_QUEUE);
        async.setDiscardingThreshold(0); // keep INFO lines until the queue is really full
        async.setNeverBlock(true);
        async.setMaxFlushTime((int) FLUSH_MS);
        async.addAppender(app);
        async.start();
        ch.qos.logback.classic.Logger root = ctx.getLogger(Logger.ROOT_LOGGER_NAME);
        root.addAppender(async);
        ctx.getLogger("io.netty").setLevel(Level.WARN);
        ctx.getLogger("org.apache.zookeeper").setLevel(Level.WARN);
        ctx.getLogger("org.apache.curator").setLevel(Level.WARN);
        setLevel(level);
    }

    /**
     * Before {@link #configure}: only warnings and errors, to stderr. Checking the options loads libraries (Netty's
     * TLS) whose start-up logs at debug level, which logback's default would print.
     */
    static void quietUntilConfigured() {
        LoggerContext ctx = (LoggerContext) LoggerFactory.getILoggerFactory();
        ctx.getLogger(Logger.ROOT_LOGGER_NAME).setLevel(Level.WARN);
    }

    static void setLevel(int level) {
        LoggerContext ctx = (LoggerContext) LoggerFactory.getILoggerFactory();
        Level l = switch (level) {
            case 0, 1, 2, 3 -> Level.ERROR;
            case 4 -> Level.WARN;
            case 5, 6 -> Level.INFO;
            default -> Level.DEBUG;
        };
        ctx.getLogger(Sheep.class.getPackageName()).setLevel(l);
        ctx.getLogger(Logger.ROOT_LOGGER_NAME).setLevel(l.isGreaterOrEqual(Level.INFO) ? l : Level.INFO);
    }
}
