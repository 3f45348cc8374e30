package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.sheepdog.sheep.net.PayloadBudget;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One NBD connection: reads the byte stream (handshake, options, requests with their payloads), hands each option
 * and each request to the worker executor (virtual threads), and writes the replies as they complete, in any order.
 *
 * <p>All fields are touched on the channel's event loop only; workers post their results back to it. Incoming
 * buffers are queued in {@link #stash} and consumed while the connection may take more work, so the in-flight
 * limits bound memory no matter how much a client pipelines: per connection (requests and bytes), and over all the
 * server's connections through the shared {@link PayloadBudget}, which a READ or WRITE must get room in before it is
 * admitted (a write before its payload is read). Write payloads are retained slices of the received buffers (no
 * copy). Anything malformed closes this connection and nothing else.
 */
final class NbdConnectionHandler extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(NbdConnectionHandler.class);

    /** Longest option data buffered; longer options are discarded as they stream in and answered TOO_BIG. */
    static final int MAX_OPTION_LENGTH = 64 * 1024;
    private static final int MAX_PAYLOAD_COMPONENTS = 1024;
    private static final int MAX_ERROR_MESSAGE = 1024;
    private static final int MAX_STATUS_DESCRIPTORS = 65536;
    private static final int KNOWN_CMD_FLAGS = CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_DF | CMD_FLAG_REQ_ONE
            | CMD_FLAG_FAST_ZERO;

    private enum State {
        CLIENT_FLAGS, OPT_HEADER, OPT_DATA, OPT_SKIP, OPT_WAIT, REQ_HEADER, REQ_PAYLOAD, REQ_SKIP, DISCONNECTING, CLOSED
    }

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
    private final ByteBuf fixed = Unpooled.buffer(REQUEST_HEADER_LENGTH, REQUEST_HEADER_LENGTH);
    private boolean draining;
    private boolean autoRead = true;
    private boolean flushScheduled;
    private ScheduledFuture<?> handshakeTimer;

    // option being received
    private int optCode;
    private int optRemaining;
    private ByteBuf optData;

    // request being received
    private Request current;
    private ByteBuf payload;
    private boolean payloadComposite;
    /** Bytes still to come of the current write payload (REQ_PAYLOAD) or of discarded input (REQ_SKIP, OPT_SKIP). */
    private long remaining;
    /** Budget taken for the write whose payload is being received; given back if the connection ends first. */
    private long payloadBudget;
    /** A valid READ or WRITE that waits for room in the server's budget; nothing more is read until it gets it. */
    private Request parked;

    // transmission
    private NbdSession session;
    private int inflight;
    private long inflightBytes;
    private boolean exportClosed;

    NbdConnectionHandler(NbdServerConfig config, NbdExportProvider provider, Executor worker,
                         AtomicLong unexpectedErrors) {
        this(config, provider, worker, unexpectedErrors, new PayloadBudget(config.serverInFlightBytes()));
    }

    NbdConnectionHandler(NbdServerConfig config, NbdExportProvider provider, Executor worker,
                         AtomicLong unexpectedErrors, PayloadBudget budget) {
        this.config = config;
        this.provider = provider;
        this.worker = worker;
        this.unexpectedErrors = unexpectedErrors;
        this.budget = budget;
    }

    /** One transmission request, as parsed from its header. */
    private record Request(int flags, int type, long handle, long offset, long length) {
        boolean fua() { return (flags & CMD_FLAG_FUA) != 0; }
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
                if (session == null && state != State.CLOSED) protocolError("negotiation not finished in time");
            }, config.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
        }
        ctx.fireChannelActive();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        log.debug("NBD {}: disconnected", peer);
        shutdown();
        ctx.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        shutdown();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (cause instanceof SSLException || cause.getCause() instanceof SSLException) {
            // a client that cannot or may not speak TLS with us (logged by the handshake listener)
            log.debug("NBD {}: TLS error: {}", peer, cause.toString());
        } else if (cause instanceof IOException) {
            log.debug("NBD {}: connection error: {}", peer, cause.toString());
        } else {
            unexpectedErrors.incrementAndGet();
            log.warn("NBD {}: internal error, closing connection", peer, cause);
        }
        shutdown();
        ctx.close();
    }

    /** Stops reading and frees what the connection holds; the export is closed once no request uses it. */
    private void shutdown() {
        if (state != State.CLOSED) state = State.CLOSED;
        if (handshakeTimer != null) handshakeTimer.cancel(false);
        ByteBuf b;
        while ((b = stash.poll()) != null) b.release();
        fixed.clear();
        if (optData != null) { optData.release(); optData = null; }
        if (payload != null) { payload.release(); payload = null; }
        parked = null;
        long held = payloadBudget;
        payloadBudget = 0;
        budget.release(held);       // a write cut off before its payload was complete
        maybeCloseExport();
    }

    private void maybeCloseExport() {
        if (state == State.CLOSED && session != null && inflight == 0 && !exportClosed) {
            exportClosed = true;
            NbdExport export = session.export();
            runOnWorker(() -> NbdNegotiator.closeQuietly(export), () -> NbdNegotiator.closeQuietly(export));
        }
    }

    private void protocolError(String why) {
        if (state == State.CLOSED) return;
        log.debug("NBD {}: closing connection: {}", peer, why);
        shutdown();
        closeAfterFlush();
    }

    /** Closes once the replies already written have gone out (a plain close would drop them). */
    private void closeAfterFlush() {
        ctx.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    }

    // ------------------------------------------------------------------ input

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof ByteBuf in) || state == State.CLOSED) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (in.isReadable()) stash.add(in);
        else in.release();
        drain();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof SslCloseCompletionEvent) {
            // the client ended TLS (close_notify): it sends nothing more, so the connection is over, as at EOF
            // (requests already read still get their replies before the close)
            log.debug("NBD {}: TLS closed by the client", peer);
            if (session == null || state == State.CLOSED) {
                shutdown();
                ctx.close();
            } else if (state != State.DISCONNECTING) {
                state = State.DISCONNECTING;   // as NBD_CMD_DISC: replies in flight still go out, then the close
                finishDisconnect();
            }
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        drain();
        ctx.fireChannelWritabilityChanged();
    }

    /** Consumes stashed input for as long as the connection may take more work. */
    private void drain() {
        if (draining) return;               // a request completed synchronously inside the loop below
        draining = true;
        try {
            while (!stash.isEmpty() && mayConsume()) {
                ByteBuf b = stash.peek();
                step(b);
                if (state == State.CLOSED) return;   // shutdown() already released the stash
                if (!b.isReadable()) stash.poll().release();
            }
        } catch (RuntimeException e) {
            exceptionCaught(ctx, e);
            return;
        } finally {
            draining = false;
        }
        updateAutoRead();
    }

    private boolean mayConsume() {
        return switch (state) {
            case OPT_WAIT, DISCONNECTING, CLOSED -> false;
            case REQ_HEADER -> parked == null && !overLimit();
            default -> true;
        };
    }

    private boolean overLimit() {
        return inflight >= config.maxInFlight() || inflightBytes >= config.maxInFlightBytes()
                || !ctx.channel().isWritable();
    }

    private void updateAutoRead() {
        boolean want = state != State.CLOSED && stash.isEmpty() && mayConsume();
        if (want != autoRead) {
            autoRead = want;
            ctx.channel().config().setAutoRead(want);
        }
    }

    /** Gathers {@code n} bytes for a fixed-size header: a view of {@code b} if it has them all, else via {@link #fixed}. */
    private ByteBuf gather(ByteBuf b, int n) {
        if (!fixed.isReadable() && b.readableBytes() >= n) {
            ByteBuf view = b.slice(b.readerIndex(), n);
            b.skipBytes(n);
            return view;
        }
        fixed.writeBytes(b, Math.min(n - fixed.readableBytes(), b.readableBytes()));
        return fixed.readableBytes() == n ? fixed : null;
    }

    private void step(ByteBuf b) {
        switch (state) {
            case CLIENT_FLAGS -> {
                ByteBuf h = gather(b, 4);
                if (h == null) return;
                int flags = h.readInt();
                fixed.clear();
                if ((flags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) != 0) {
                    protocolError("unknown client flags 0x" + Integer.toHexString(flags));
                    return;
                }
                negotiator.clientFlags(flags);
                state = State.OPT_HEADER;
            }
            case OPT_HEADER -> {
                ByteBuf h = gather(b, 16);
                if (h == null) return;
                long magic = h.readLong();
                int opt = h.readInt();
                long len = h.readUnsignedInt();
                fixed.clear();
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
                    scheduleFlush();
                    state = State.OPT_HEADER;
                }
            }
            case REQ_HEADER -> {
                ByteBuf h = gather(b, REQUEST_HEADER_LENGTH);
                if (h == null) return;
                int magic = h.readInt();
                int flags = h.readUnsignedShort();
                int type = h.readUnsignedShort();
                long handle = h.readLong();
                long offset = h.readLong();
                long length = h.readUnsignedInt();
                fixed.clear();
                if (magic != REQUEST_MAGIC) {
                    protocolError("bad request magic 0x" + Integer.toHexString(magic));
                    return;
                }
                onRequest(new Request(flags, type, handle, offset, length));
            }
            case REQ_PAYLOAD -> {
                int take = (int) Math.min(remaining, b.readableBytes());
                addPayload(b.readRetainedSlice(take));
                remaining -= take;
                if (remaining == 0) {
                    Request r = current;
                    ByteBuf data = payload;
                    current = null;
                    payload = null;
                    payloadBudget = 0;          // from here on the request's completion gives it back
                    state = State.REQ_HEADER;
                    dispatch(r, data, r.length());
                }
            }
            case REQ_SKIP -> {
                int take = (int) Math.min(remaining, b.readableBytes());
                b.skipBytes(take);
                remaining -= take;
                if (remaining == 0) state = State.REQ_HEADER;
            }
            default -> throw new IllegalStateException("no input expected in state " + state);
        }
    }

    private void addPayload(ByteBuf piece) {
        if (payload == null) {
            payload = piece;
        } else if (payloadComposite) {
            ((CompositeByteBuf) payload).addComponent(true, piece);
        } else {
            CompositeByteBuf c = ctx.alloc().compositeDirectBuffer(MAX_PAYLOAD_COMPONENTS);
            c.addComponent(true, payload);
            c.addComponent(true, piece);
            payload = c;
            payloadComposite = true;
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
        if (state == State.CLOSED) {
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
                log.debug("NBD {}: closing connection: {}", peer, c.reason());
                shutdown();
                closeAfterFlush();
                return;
            }
            case NbdNegotiator.Transmit t -> {
                session = t.session();
                if (handshakeTimer != null) handshakeTimer.cancel(false);
                state = State.REQ_HEADER;
            }
            case NbdNegotiator.Continue c -> state = State.OPT_HEADER;
            case NbdNegotiator.StartTls t -> state = State.OPT_HEADER;
        }
        ctx.flush();
        drain();
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

    // ------------------------------------------------------------------ transmission

    private void onRequest(Request r) {
        int error = 0;
        String why = null;
        long size = session.export().size();
        boolean inRange = r.offset() >= 0 && r.length() <= size - r.offset();
        int allowed = CMD_FLAG_FUA;
        switch (r.type()) {
            case CMD_READ -> {
                if (session.structured()) allowed |= CMD_FLAG_DF;
                if (r.length() > config.maxPayload()) { error = EOVERFLOW; why = "read longer than " + config.maxPayload(); }
                else if (!inRange) { error = EINVAL; why = "read past the end of the export"; }
            }
            case CMD_WRITE -> {
                if (session.readOnly()) { error = EPERM; why = "export is read-only"; }
                else if (r.length() > config.maxPayload()) { error = EOVERFLOW; why = "write longer than " + config.maxPayload(); }
                else if (!inRange) { error = ENOSPC; why = "write past the end of the export"; }
            }
            case CMD_DISC -> {
                log.debug("NBD {}: client disconnects", peer);
                state = State.DISCONNECTING;
                finishDisconnect();
                return;
            }
            case CMD_FLUSH -> { }
            case CMD_TRIM -> {
                if (session.readOnly()) { error = EPERM; why = "export is read-only"; }
                else if ((session.transmissionFlags() & TFLAG_SEND_TRIM) == 0) { error = EINVAL; why = "trim not supported"; }
                else if (!inRange) { error = EINVAL; why = "trim past the end of the export"; }
            }
            case CMD_WRITE_ZEROES -> {
                allowed |= CMD_FLAG_NO_HOLE;
                if (session.readOnly()) { error = EPERM; why = "export is read-only"; }
                else if ((session.transmissionFlags() & TFLAG_SEND_WRITE_ZEROES) == 0) { error = EINVAL; why = "write zeroes not supported"; }
                else if (!inRange) { error = ENOSPC; why = "write zeroes past the end of the export"; }
            }
            case CMD_BLOCK_STATUS -> {
                allowed |= CMD_FLAG_REQ_ONE;
                if (!session.allocation()) { error = EINVAL; why = "no metadata context negotiated"; }
                else if (r.length() == 0) { error = EINVAL; why = "block status of zero length"; }
                else if (!inRange) { error = EINVAL; why = "block status past the end of the export"; }
            }
            default -> { error = EINVAL; why = "unknown " + commandName(r.type()); }
        }
        if (error == 0 && (r.flags() & ~allowed) != 0) {
            error = EINVAL;
            why = "flags 0x" + Integer.toHexString(r.flags()) + " not valid for " + commandName(r.type());
        }
        if (error != 0) {
            log.debug("NBD {}: {} {}+{} refused: {}", peer, commandName(r.type()), r.offset(), r.length(), why);
            write(errorReply(ctx.alloc(), r, error, why));
            if (r.type() == CMD_WRITE && r.length() > 0) {    // the payload still follows: discard it as it arrives
                remaining = r.length();
                state = State.REQ_SKIP;
            }
            return;
        }
        if ((r.type() == CMD_WRITE || r.type() == CMD_READ) && r.length() > 0
                && !budget.tryAcquire(r.length(), this::budgetFreed)) {
            parked = r;                    // read nothing more (not even this write's payload) until there is room
            return;
        }
        admit(r);
    }

    /** Another connection gave budget back: try again for the parked request, on this connection's event loop. */
    private void budgetFreed() {
        try {
            ctx.executor().execute(() -> {
                Request r = parked;
                if (r == null || state == State.CLOSED) return;
                if (!budget.tryAcquire(r.length(), this::budgetFreed)) return;
                parked = null;
                admit(r);
                drain();
            });
        } catch (RejectedExecutionException e) {
            log.debug("NBD {}: event loop gone, dropping a parked request", peer);
        }
    }

    /** Starts a validated request that holds its share of the budget (READ, WRITE) or needs none. */
    private void admit(Request r) {
        if (r.type() == CMD_WRITE && r.length() > 0) {
            current = r;
            payloadComposite = false;
            remaining = r.length();
            payloadBudget = r.length();
            inflightBytes += r.length();   // counted now, so a big payload being received holds back new requests
            state = State.REQ_PAYLOAD;
            return;
        }
        dispatch(r, null, r.type() == CMD_READ ? r.length() : 0);
    }

    /** Runs a validated request on a worker; its reply is written when it completes. */
    private void dispatch(Request r, ByteBuf data, long bytes) {
        inflight++;
        if (r.type() != CMD_WRITE) inflightBytes += bytes;    // writes were counted when their header arrived
        ByteBufAllocator alloc = ctx.alloc();
        NbdSession s = session;
        runOnWorker(() -> {
            ByteBuf reply = serve(s, r, data, alloc);
            runOnLoop(() -> completed(reply, bytes), () -> {
                reply.release();
                budget.release(bytes);
                shutdownFallback();
            });
        }, () -> {
            if (data != null) data.release();
            completed(errorReply(alloc, r, ESHUTDOWN, "server is shutting down"), bytes);
        });
    }

    private void completed(ByteBuf reply, long bytes) {
        inflight--;
        inflightBytes -= bytes;
        budget.release(bytes);
        if (state == State.CLOSED) {
            reply.release();
            maybeCloseExport();
            return;
        }
        write(reply);
        if (state == State.DISCONNECTING) finishDisconnect();
        else drain();
    }

    private void finishDisconnect() {
        if (inflight > 0) return;
        shutdown();
        closeAfterFlush();
    }

    private void write(ByteBuf reply) {
        ctx.write(reply, ctx.voidPromise());
        scheduleFlush();
    }

    /** One socket flush for all the replies that complete in one turn of the event loop. */
    private void scheduleFlush() {
        if (flushScheduled) return;
        flushScheduled = true;
        ctx.executor().execute(() -> {
            flushScheduled = false;
            ctx.flush();
        });
    }

    /** Serves one request on a worker thread and builds its reply; never throws. */
    private static ByteBuf serve(NbdSession s, Request r, ByteBuf data, ByteBufAllocator alloc) {
        NbdExport export = s.export();
        try {
            switch (r.type()) {
                case CMD_READ -> {
                    return readReply(s, r, alloc);
                }
                case CMD_WRITE -> {
                    if (data != null) export.write(r.offset(), data, r.fua());
                }
                case CMD_FLUSH -> s.flusher().flush();
                case CMD_TRIM -> {
                    if (r.length() > 0) export.trim(r.offset(), r.length(), r.fua());
                }
                case CMD_WRITE_ZEROES -> {
                    if (r.length() > 0)
                        export.writeZeroes(r.offset(), r.length(), (r.flags() & CMD_FLAG_NO_HOLE) != 0, r.fua());
                }
                case CMD_BLOCK_STATUS -> {
                    return blockStatusReply(r, export.allocation(r.offset(), r.length()), alloc);
                }
                default -> throw new IllegalStateException("unexpected command " + r.type());
            }
            return simpleReply(alloc, r.handle(), 0);
        } catch (NbdException e) {
            return errorReply(s, alloc, r, e.errno(), e.getMessage());
        } catch (IOException e) {
            return errorReply(s, alloc, r, EIO, e.getMessage());
        } catch (Throwable e) {
            log.warn("NBD: {} {}+{} failed", commandName(r.type()), r.offset(), r.length(), e);
            return errorReply(s, alloc, r, EIO, e.toString());
        } finally {
            if (data != null) data.release();
        }
    }

    private static ByteBuf readReply(NbdSession s, Request r, ByteBufAllocator alloc) throws IOException {
        int len = (int) r.length();
        if (s.structured() && len == 0) return structuredHeader(alloc, r.handle(), REPLY_TYPE_NONE, REPLY_FLAG_DONE, 0);
        int hdr = s.structured() ? STRUCTURED_REPLY_HEADER_LENGTH + 8 : SIMPLE_REPLY_HEADER_LENGTH;
        ByteBuf b = alloc.ioBuffer(hdr + len);
        try {
            if (s.structured()) {
                b.writeInt(STRUCTURED_REPLY_MAGIC).writeShort(REPLY_FLAG_DONE).writeShort(REPLY_TYPE_OFFSET_DATA)
                        .writeLong(r.handle()).writeInt(8 + len).writeLong(r.offset());
            } else {
                b.writeInt(SIMPLE_REPLY_MAGIC).writeInt(0).writeLong(r.handle());
            }
            if (len > 0) s.export().read(r.offset(), len, b);
            if (b.readableBytes() != hdr + len)
                throw NbdException.io("export returned " + (b.readableBytes() - hdr) + " bytes for a read of " + len);
            ByteBuf done = b;
            b = null;
            return done;
        } finally {
            if (b != null) b.release();
        }
    }

    private static ByteBuf blockStatusReply(Request r, List<NbdExtent> extents, ByteBufAllocator alloc)
            throws NbdException {
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
        ByteBuf b = structuredHeader(alloc, r.handle(), REPLY_TYPE_BLOCK_STATUS, REPLY_FLAG_DONE, 4 + 8 * n);
        b.writeInt(NbdNegotiator.ALLOCATION_CONTEXT_ID);
        for (int i = 0; i < n; i++) b.writeInt((int) lengths[i]).writeInt(flags[i]);
        return b;
    }

    private static ByteBuf structuredHeader(ByteBufAllocator alloc, long handle, int type, int flags, int length) {
        ByteBuf b = alloc.ioBuffer(STRUCTURED_REPLY_HEADER_LENGTH + length);
        b.writeInt(STRUCTURED_REPLY_MAGIC).writeShort(flags).writeShort(type).writeLong(handle).writeInt(length);
        return b;
    }

    private static ByteBuf simpleReply(ByteBufAllocator alloc, long handle, int error) {
        return alloc.ioBuffer(SIMPLE_REPLY_HEADER_LENGTH).writeInt(SIMPLE_REPLY_MAGIC).writeInt(error).writeLong(handle);
    }

    private ByteBuf errorReply(ByteBufAllocator alloc, Request r, int error, String message) {
        return errorReply(session, alloc, r, error, message);
    }

    /** Structured error chunk (carrying the message) when negotiated, else a simple reply with the error. */
    private static ByteBuf errorReply(NbdSession s, ByteBufAllocator alloc, Request r, int error, String message) {
        if (s == null || !s.structured()) return simpleReply(alloc, r.handle(), error);
        byte[] m = message == null ? new byte[0] : message.getBytes(StandardCharsets.UTF_8);
        if (m.length > MAX_ERROR_MESSAGE) m = Arrays.copyOf(m, MAX_ERROR_MESSAGE);
        ByteBuf b = structuredHeader(alloc, r.handle(), REPLY_TYPE_ERROR, REPLY_FLAG_DONE, 6 + m.length);
        return b.writeInt(error).writeShort(m.length).writeBytes(m);
    }

    // ------------------------------------------------------------------ threads

    private void runOnLoop(Runnable r, Runnable ifLoopGone) {
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

    /** Closes the export from a worker when the event loop no longer runs; only reached at server shutdown. */
    private void shutdownFallback() {
        synchronized (this) {
            if (session != null && !exportClosed) {
                exportClosed = true;
                NbdNegotiator.closeQuietly(session.export());
            }
        }
    }

    private void runOnWorker(Runnable task, Runnable rejected) {
        try {
            worker.execute(task);
        } catch (RejectedExecutionException e) {
            runOnLoop(rejected, () -> { });
        }
    }
}
