package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.sheepdog.sheep.net.PayloadBudget;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The first handler of every NBD connection: sends the greeting, reads the client's flags and its options (each
 * handed to {@link NbdNegotiator} on a worker, since opening an export may block), writes their replies, puts TLS
 * under the connection on STARTTLS, and closes a connection that has not finished in the handshake timeout. When an
 * option selects an export (GO, EXPORT_NAME) it installs the transmission phase in its place
 * ({@link NbdTransmissionHandler#install}: request decoder, reply encoder, transmission handler), hands it the bytes
 * that came after the option, and removes itself.
 *
 * <p>All fields are touched on the channel's event loop only. Option data is bounded ({@link #MAX_OPTION_LENGTH});
 * one option is handled at a time, and nothing is read meanwhile. Anything malformed closes this connection.
 */
final class NbdNegotiationHandler extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(NbdNegotiationHandler.class);

    /** Longest option data buffered; longer options are discarded as they stream in and answered TOO_BIG. */
    static final int MAX_OPTION_LENGTH = 64 * 1024;

    private enum State { CLIENT_FLAGS, OPT_HEADER, OPT_DATA, OPT_SKIP, OPT_WAIT, DONE }

    private final NbdServerConfig config;
    private final NbdExportProvider provider;
    private final Executor worker;
    private final AtomicLong unexpectedErrors;
    private final PayloadBudget budget;

    private ChannelHandlerContext ctx;
    private String peer = "?";
    private NbdNegotiator negotiator;
    private State state = State.CLIENT_FLAGS;
    private final ArrayDeque<ByteBuf> stash = new ArrayDeque<>();
    private final HeaderGatherer header = new HeaderGatherer(16);
    private boolean draining;
    private boolean autoRead = true;
    private ScheduledFuture<?> handshakeTimer;

    // option being received
    private int optCode;
    private int optRemaining;
    private ByteBuf optData;
    /** Bytes still to come of an option too long to keep (OPT_SKIP). */
    private long remaining;

    /**
     * @param budget the payload bytes all of the server's connections may have in flight together (see
     *               {@link PayloadBudget}); handed to the transmission phase
     */
    NbdNegotiationHandler(NbdServerConfig config, NbdExportProvider provider, Executor worker,
                          AtomicLong unexpectedErrors, PayloadBudget budget) {
        this.config = config;
        this.provider = provider;
        this.worker = worker;
        this.unexpectedErrors = unexpectedErrors;
        this.budget = budget;
    }

    // ------------------------------------------------------------------ lifecycle

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        peer = String.valueOf(ctx.channel().remoteAddress());
        negotiator = new NbdNegotiator(provider, config, peer);
        log.debug("NBD {}: connected", peer);
        ByteBuf hello = ctx.alloc().buffer(18);
        hello.writeLong(NBDMAGIC).writeLong(IHAVEOPT).writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        ctx.writeAndFlush(hello);
        if (config.handshakeTimeout() != null && !config.handshakeTimeout().isZero()) {
            handshakeTimer = ctx.executor().schedule(() -> {
                if (state != State.DONE) protocolError("negotiation not finished in time");
            }, config.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
        }
        ctx.fireChannelActive();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (state != State.DONE) log.debug("NBD {}: disconnected during negotiation", peer);
        shutdown();
        ctx.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        shutdown();
        header.release();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        NbdChannels.logFailure(log, peer, cause, unexpectedErrors);
        shutdown();
        ctx.close();
    }

    /** Reads nothing more and frees what the negotiation holds. */
    private void shutdown() {
        state = State.DONE;
        if (handshakeTimer != null) handshakeTimer.cancel(false);
        ByteBuf b;
        while ((b = stash.poll()) != null) b.release();
        header.clear();
        if (optData != null) { optData.release(); optData = null; }
    }

    private void protocolError(String why) {
        if (state == State.DONE) return;
        log.debug("NBD {}: closing connection: {}", peer, why);
        shutdown();
        NbdChannels.closeAfterFlush(ctx);
    }

    // ------------------------------------------------------------------ input

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof ByteBuf in) || state == State.DONE) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (in.isReadable()) stash.add(in);
        else in.release();
        drain();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof SslCloseCompletionEvent && state != State.DONE) {
            // the client ended TLS (close_notify) before it chose an export: nothing more comes
            log.debug("NBD {}: TLS closed by the client during negotiation", peer);
            shutdown();
            ctx.close();
        }
        ctx.fireUserEventTriggered(evt);
    }

    /** Consumes stashed input for as long as no option is being handled. */
    private void drain() {
        if (draining) return;
        draining = true;
        try {
            while (!stash.isEmpty() && state != State.OPT_WAIT && state != State.DONE) {
                ByteBuf b = stash.peek();
                step(b);
                if (state == State.DONE) return;     // shutdown() already released the stash
                if (!b.isReadable()) stash.poll().release();
            }
        } catch (RuntimeException e) {
            exceptionCaught(ctx, e);
            return;
        } finally {
            draining = false;
        }
        boolean want = stash.isEmpty() && state != State.OPT_WAIT;
        if (want != autoRead) {
            autoRead = want;
            ctx.channel().config().setAutoRead(want);
        }
    }

    private void step(ByteBuf b) {
        switch (state) {
            case CLIENT_FLAGS -> {
                ByteBuf h = header.gather(b, 4);
                if (h == null) return;
                int flags = h.readInt();
                header.clear();
                if ((flags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) != 0) {
                    protocolError("unknown client flags 0x" + Integer.toHexString(flags));
                    return;
                }
                negotiator.clientFlags(flags);
                state = State.OPT_HEADER;
            }
            case OPT_HEADER -> {
                ByteBuf h = header.gather(b, 16);
                if (h == null) return;
                long magic = h.readLong();
                int opt = h.readInt();
                long len = h.readUnsignedInt();
                header.clear();
                if (magic != IHAVEOPT) {
                    protocolError("bad option magic 0x" + Long.toHexString(magic));
                    return;
                }
                optCode = opt;
                if (len > MAX_OPTION_LENGTH) {
                    if (opt == OPT_EXPORT_NAME) {
                        protocolError("EXPORT_NAME too long");
                        return;
                    }
                    remaining = len;
                    state = State.OPT_SKIP;
                    return;
                }
                optRemaining = (int) len;
                optData = ctx.alloc().heapBuffer(optRemaining, optRemaining);
                state = State.OPT_DATA;
                if (optRemaining == 0) optionComplete();
            }
            case OPT_DATA -> {
                int take = Math.min(optRemaining, b.readableBytes());
                optData.writeBytes(b, take);
                optRemaining -= take;
                if (optRemaining == 0) optionComplete();
            }
            case OPT_SKIP -> {
                int take = (int) Math.min(remaining, b.readableBytes());
                b.skipBytes(take);
                remaining -= take;
                if (remaining == 0) {
                    ctx.write(NbdNegotiator.tooBig(ctx.alloc(), optCode));
                    ctx.flush();
                    state = State.OPT_HEADER;
                }
            }
            case OPT_WAIT, DONE -> throw new IllegalStateException("no input expected in state " + state);
        }
    }

    // ------------------------------------------------------------------ negotiation

    private void optionComplete() {
        ByteBuf data = optData;
        optData = null;
        int opt = optCode;
        state = State.OPT_WAIT;
        ByteBufAllocator alloc = ctx.alloc();
        Runnable task = () -> {
            List<ByteBuf> out = new ArrayList<>(4);
            NbdNegotiator.Outcome outcome;
            try {
                outcome = negotiator.handle(opt, data, alloc, out);
            } catch (RuntimeException e) {
                unexpectedErrors.incrementAndGet();
                log.warn("NBD {}: internal error in option {}", peer, optionName(opt), e);
                outcome = new NbdNegotiator.Close("internal error");
            } finally {
                data.release();
            }
            NbdNegotiator.Outcome result = outcome;
            runOnLoop(() -> optionDone(out, result), () -> {
                out.forEach(ByteBuf::release);
                if (result instanceof NbdNegotiator.Transmit t) NbdNegotiator.closeQuietly(t.session().export());
            });
        };
        runOnWorker(task, () -> {
            data.release();
            protocolError("server is shutting down");
        });
    }

    private void optionDone(List<ByteBuf> out, NbdNegotiator.Outcome outcome) {
        if (state == State.DONE) {
            out.forEach(ByteBuf::release);
            if (outcome instanceof NbdNegotiator.Transmit t) NbdNegotiator.closeQuietly(t.session().export());
            return;
        }
        if (outcome instanceof NbdNegotiator.StartTls) {
            if (!stash.isEmpty()) {
                // the client may not send anything until it has the ACK: bytes now would be read as plain text
                out.forEach(ByteBuf::release);
                protocolError("data after STARTTLS before its reply");
                return;
            }
            startTls();
        }
        for (ByteBuf b : out) ctx.write(b);
        switch (outcome) {
            case NbdNegotiator.Close c -> {
                protocolError(c.reason());
                return;
            }
            case NbdNegotiator.Transmit t -> {
                ctx.flush();
                transmit(t.session());
                return;
            }
            case NbdNegotiator.Continue c -> state = State.OPT_HEADER;
            case NbdNegotiator.StartTls t -> state = State.OPT_HEADER;
        }
        ctx.flush();
        drain();
    }

    /**
     * An export was selected: the transmission phase takes the connection over, with the bytes the client sent
     * after the option (it may pipeline its first requests behind GO).
     */
    private void transmit(NbdSession session) {
        if (handshakeTimer != null) handshakeTimer.cancel(false);
        state = State.DONE;
        NbdTransmissionHandler.install(ctx.pipeline(), ctx.name(), session, config, worker, budget, unexpectedErrors, peer);
        if (!autoRead) ctx.channel().config().setAutoRead(true);   // the decoder decides from here on
        ByteBuf b;
        while ((b = stash.poll()) != null) ctx.fireChannelRead(b);
        ctx.pipeline().remove(this);
    }

    /**
     * Puts TLS under this handler: the handler is built to pass its first write (the ACK, written next) in plain
     * text, and what the client sends after it, from its ClientHello on, goes through TLS. A client whose certificate
     * the CA did not sign fails the handshake; one whose certificate name is not allowed is closed after it.
     */
    private void startTls() {
        var tls = config.tls();
        SslHandler h = tls.newHandler(ctx.alloc());
        ctx.pipeline().addBefore(ctx.name(), "tls", h);
        h.handshakeFuture().addListener(f -> {
            if (!f.isSuccess()) {
                log.warn("NBD {}: TLS handshake failed: {}", peer, rootMessage(f.cause()));
                shutdown();
                ctx.close();
                return;
            }
            String refused = tls.refusal(h.engine().getSession());
            if (refused != null) {
                log.warn("NBD {}: refused after the TLS handshake: {}", peer, refused);
                shutdown();
                ctx.close();
            } else {
                log.debug("NBD {}: TLS {} established", peer, h.engine().getSession().getProtocol());
            }
        });
    }

    private static String rootMessage(Throwable t) {
        while (t.getCause() != null && t.getCause() != t) t = t.getCause();
        return t.getMessage() == null ? t.toString() : t.getMessage();
    }

    // ------------------------------------------------------------------ threads

    private void runOnLoop(Runnable r, Runnable ifLoopGone) {
        NbdChannels.runOnLoop(ctx, log, peer, r, ifLoopGone);
    }

    private void runOnWorker(Runnable task, Runnable rejected) {
        NbdChannels.runOnWorker(worker, ctx, log, peer, task, rejected);
    }
}
