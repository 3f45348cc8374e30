package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.net.ConnectionLimit;
import io.sheepdog.sheep.net.PayloadBudget;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the requests {@link NbdRequestDecoder} hands on: each admitted one on a worker (a virtual thread), its
 * {@link NbdReply} written when it completes, in any order, one socket flush per turn of the event loop; a refused one
 * answered at once. A request's room (budget, connection limit) is given back when its reply is built, a read's when its reply has
 * been written to the socket. DISC, or the
 * end of TLS, lets the requests in flight finish and then closes; the export is closed once no request uses it.
 *
 * <p>Fields are touched on the channel's event loop only; workers post their results back to it.
 */
final class NbdTransmissionHandler extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(NbdTransmissionHandler.class);
    private static final int MAX_STATUS_DESCRIPTORS = 65536;
    /** A request that failed unexpectedly (out of memory, a bug): said at most ten times in ten seconds. */
    private static final RateLimitedLog FAILED = new RateLimitedLog(log);

    private final NbdSession session;
    private final Executor worker;
    private final PayloadBudget budget;
    private final ConnectionLimit limit;
    private final Runnable room;
    private final AtomicLong unexpectedErrors;
    private final String peer;

    private ChannelHandlerContext ctx;
    private int inflight;
    private boolean closed;
    private boolean disconnecting;
    private boolean exportClosed;
    private boolean flushScheduled;

    /** {@code room}: told when an answered request leaves the connection room for more (the decoder reads on). */
    NbdTransmissionHandler(NbdSession session, Executor worker, PayloadBudget budget, ConnectionLimit limit,
                           Runnable room, AtomicLong unexpectedErrors, String peer) {
        this.session = session;
        this.worker = worker;
        this.budget = budget;
        this.limit = limit;
        this.room = room;
        this.unexpectedErrors = unexpectedErrors;
        this.peer = peer;
    }

    // ------------------------------------------------------------------ lifecycle

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) { this.ctx = ctx; }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        log.debug("NBD {}: disconnected", peer);
        close();
        ctx.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) { close(); }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        NbdChannels.logFailure(log, peer, cause, unexpectedErrors);
        close();
        ctx.close();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof SslCloseCompletionEvent && !closed && !disconnecting) {
            // the client ended TLS (close_notify): as NBD_CMD_DISC, replies in flight still go out, then the close
            log.debug("NBD {}: TLS closed by the client", peer);
            disconnecting = true;
            finishDisconnect();
        }
        ctx.fireUserEventTriggered(evt);
    }

    private void close() {
        closed = true;
        maybeCloseExport();
    }

    private void maybeCloseExport() {
        if (closed && inflight == 0 && !exportClosed) {
            exportClosed = true;
            NbdExport export = session.export();
            runOnWorker(() -> NbdNegotiator.closeQuietly(export), () -> NbdNegotiator.closeQuietly(export));
        }
    }

    private void finishDisconnect() {
        if (inflight > 0) return;
        close();
        NbdChannels.closeAfterFlush(ctx);
    }

    // ------------------------------------------------------------------ requests

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof NbdRequest r)) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (closed) {      // cannot happen (nothing is read once closed), but never keep what a request holds
            if (r.payload() != null) r.payload().release();
            budget.release(r.admitted());
            if (!r.isRefused() && r.type() != CMD_DISC) limit.end(r.admitted());
            return;
        }
        if (r.isRefused()) {
            write(new NbdReply.Failed(r.handle(), r.errno(), r.refusal()));
        } else if (r.type() == CMD_DISC) {
            disconnecting = true;
            finishDisconnect();
        } else {
            dispatch(r);
        }
    }

    /** Runs an admitted request on a worker; its reply is written when it completes. */
    private void dispatch(NbdRequest r) {
        inflight++;
        runOnWorker(() -> {
            NbdReply reply = serve(session, r, ctx.alloc());
            runOnLoop(() -> completed(reply, r.admitted()), () -> {
                release(reply);
                budget.release(r.admitted());
                shutdownFallback();
            });
        }, () -> {
            if (r.payload() != null) r.payload().release();
            completed(new NbdReply.Failed(r.handle(), ESHUTDOWN, "server is shutting down"), r.admitted());
        });
    }

    private void completed(NbdReply reply, long bytes) {
        inflight--;
        if (closed) {
            release(reply);
            giveBack(bytes);
            maybeCloseExport();
            return;
        }
        if (reply instanceof NbdReply.Data && bytes > 0) {
            // a read's room goes back once its data has gone to the socket, not when it is built: replies that a
            // client does not read stay within the budget (and SlowReaderGuard closes such a client in the end)
            write(reply, ctx.newPromise().addListener(f -> giveBack(bytes)));
        } else {
            write(reply);
            giveBack(bytes);
        }
        if (disconnecting) finishDisconnect();
    }

    /** Gives a request's room back (budget, connection limit); the decoder reads on if that made room. */
    private void giveBack(long bytes) {
        budget.release(bytes);
        if (limit.end(bytes) && !closed && !disconnecting) room.run();
    }

    private void write(NbdReply reply) {
        write(reply, ctx.voidPromise());
    }

    private void write(NbdReply reply, ChannelPromise promise) {
        ctx.write(reply, promise);
        if (flushScheduled) return;
        // one socket flush for all the replies that complete in one turn of the event loop
        flushScheduled = true;
        ctx.executor().execute(() -> {
            flushScheduled = false;
            ctx.flush();
        });
    }

    private static void release(NbdReply reply) {
        if (reply instanceof NbdReply.Data d) d.data().release();
    }

    /** Serves one request on a worker thread and builds its reply; never throws. */
    private static NbdReply serve(NbdSession s, NbdRequest r, ByteBufAllocator alloc) {
        NbdExport export = s.export();
        ByteBuf data = r.payload();
        try {
            switch (r.type()) {
                case CMD_READ -> {
                    return readReply(export, r, alloc);
                }
                case CMD_WRITE -> {
                    if (data != null) export.write(r.offset(), data, r.fua());
                }
                case CMD_FLUSH -> s.flusher().flush();
                case CMD_TRIM -> {
                    if (r.length() > 0) export.trim(r.offset(), r.length(), r.fua());
                }
                case CMD_WRITE_ZEROES -> {
                    if (r.length() > 0) {
                        export.writeZeroes(r.offset(), r.length(), (r.flags() & CMD_FLAG_NO_HOLE) != 0, r.fua());
                    }
                }
                case CMD_BLOCK_STATUS -> {
                    return extents(r, export.allocation(r.offset(), r.length()));
                }
                default -> throw new IllegalStateException("unexpected command " + r.type());
            }
            return new NbdReply.Done(r.handle());
        } catch (NbdException e) {
            return new NbdReply.Failed(r.handle(), e.errno(), e.getMessage());
        } catch (IOException e) {
            return new NbdReply.Failed(r.handle(), EIO, e.getMessage());
        } catch (Throwable e) {
            FAILED.warn("serve", "NBD: {} {}+{} failed", commandName(r.type()), r.offset(), r.length(), e);
            return new NbdReply.Failed(r.handle(), EIO, e.toString());
        } finally {
            if (data != null) data.release();
        }
    }

    private static NbdReply readReply(NbdExport export, NbdRequest r, ByteBufAllocator alloc)
            throws IOException {
        int len = (int) r.length();
        ByteBuf b = alloc.ioBuffer(len);
        try {
            if (len > 0) export.read(r.offset(), len, b);
            if (b.readableBytes() != len) {
                throw NbdException.io("export returned " + b.readableBytes() + " bytes for a read of " + len);
            }
            NbdReply done = new NbdReply.Data(r.handle(), r.offset(), b);
            b = null;
            return done;
        } finally {
            if (b != null) b.release();
        }
    }

    /**
     * The extents of a BLOCK_STATUS reply: neighbours with the same flags merged, the total cut at the request's
     * length, one descriptor if the client asked for one (REQ_ONE), at most {@link #MAX_STATUS_DESCRIPTORS}.
     */
    static NbdReply extents(NbdRequest r, List<NbdExtent> extents) throws NbdException {
        boolean one = (r.flags() & CMD_FLAG_REQ_ONE) != 0;
        long[] lengths = new long[Math.min(Math.max(extents.size(), 1), MAX_STATUS_DESCRIPTORS)];
        int[] flags = new int[lengths.length];
        int n = 0;
        long covered = 0;
        for (NbdExtent e : extents) {
            if (covered >= r.length()) break;
            long len = Math.min(e.length(), r.length() - covered);
            int f = e.flags();
            if (n > 0 && flags[n - 1] == f) {
                lengths[n - 1] += len;       // stays below 2^32: the total never exceeds the request length
            } else {
                if (n == lengths.length || (one && n == 1)) break;
                lengths[n] = len;
                flags[n] = f;
                n++;
            }
            covered += len;
        }
        if (n == 0) throw NbdException.io("export reported no allocation extents");
        return new NbdReply.Extents(r.handle(), NbdNegotiator.ALLOCATION_CONTEXT_ID, lengths, flags, n);
    }

    // ------------------------------------------------------------------ threads

    private void runOnLoop(Runnable r, Runnable ifLoopGone) {
        NbdChannels.runOnLoop(ctx, log, peer, r, ifLoopGone);
    }

    /** Closes the export from a worker when the event loop no longer runs; only reached at server shutdown. */
    private void shutdownFallback() {
        synchronized (this) {
            if (!exportClosed) {
                exportClosed = true;
                NbdNegotiator.closeQuietly(session.export());
            }
        }
    }

    private void runOnWorker(Runnable task, Runnable rejected) {
        NbdChannels.runOnWorker(worker, ctx, log, peer, task, rejected);
    }

    /** Puts the transmission phase in {@code pipeline} after {@code after}: decoder, reply encoder, this handler. */
    static void install(ChannelPipeline pipeline, String after, NbdSession session, NbdServerConfig config,
                        Executor worker, PayloadBudget budget, AtomicLong unexpectedErrors, String peer) {
        ConnectionLimit limit = new ConnectionLimit(config.maxInFlight(), config.maxInFlightBytes());
        NbdRequestDecoder decoder = new NbdRequestDecoder(new NbdRequestCheck(session, config.maxPayload()), budget,
                limit, peer);
        pipeline.addAfter(after, "nbd-requests", decoder);
        pipeline.addAfter("nbd-requests", "nbd-replies", new NbdReplyEncoder(session.structured()));
        pipeline.addAfter("nbd-replies", "nbd-transmission",
                new NbdTransmissionHandler(session, worker, budget, limit, decoder::resume, unexpectedErrors, peer));
    }
}
