package io.sheepdog.sheep.nbd;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import java.io.IOException;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;

/**
 * What the handlers of one NBD connection share: closing after the replies written, moving work between the event loop and the workers when either may
 * be gone (server shutdown), and how a failure of the connection is logged.
 */
final class NbdChannels {
    private NbdChannels() { }

    /** Closes once the replies already written have gone out (a plain close would drop them). */
    static void closeAfterFlush(ChannelHandlerContext ctx) {
        ctx.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    }

    /** Runs {@code r} on the connection's event loop (now, if already on it); {@code ifLoopGone} if it no longer runs. */
    static void runOnLoop(ChannelHandlerContext ctx, Logger log, String peer, Runnable r, Runnable ifLoopGone) {
        if (ctx.executor().inEventLoop()) {
            r.run();
            return;
        }
        try {
            ctx.executor().execute(r);
        } catch (RejectedExecutionException e) {
            // The event loop is gone (only when a server is torn down abruptly): free what the task would have.
            log.debug("NBD {}: event loop gone, dropping a completion", peer);
            ifLoopGone.run();
        }
    }

    /** Runs {@code task} on a worker; when the workers refuse it (shutdown), {@code rejected} on the event loop. */
    static void runOnWorker(Executor worker, ChannelHandlerContext ctx, Logger log, String peer, Runnable task,
                            Runnable rejected) {
        try {
            worker.execute(task);
        } catch (RejectedExecutionException e) {
            runOnLoop(ctx, log, peer, rejected, () -> { });
        }
    }

    /**
     * Logs what ended a connection: TLS and I/O errors are the client's or the network's (debug); anything else is
     * a bug, counted in {@code unexpectedErrors}.
     */
    static void logFailure(Logger log, String peer, Throwable cause, AtomicLong unexpectedErrors) {
        if (cause instanceof SSLException || cause.getCause() instanceof SSLException) {
            // a client that cannot or may not speak TLS with us (logged by the handshake listener)
            log.debug("NBD {}: TLS error: {}", peer, cause.toString());
        } else if (cause instanceof IOException) {
            log.debug("NBD {}: connection error: {}", peer, cause.toString());
        } else {
            unexpectedErrors.incrementAndGet();
            log.warn("NBD {}: internal error, closing connection", peer, cause);
        }
    }
}
