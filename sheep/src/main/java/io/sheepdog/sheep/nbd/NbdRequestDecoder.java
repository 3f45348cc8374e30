package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.net.ConnectionLimit;
import io.sheepdog.sheep.net.PayloadBudget;
import io.sheepdog.sheep.net.PayloadDeadline;
import io.sheepdog.sheep.net.StallTimer;
import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Frames the transmission phase: 28-byte request headers, each WRITE followed by its payload. Every request is
 * {@linkplain NbdRequestCheck checked} as its header arrives; a refused one is handed on refused (its payload, if any,
 * discarded as it streams in), an admitted one with its payload as retained slices of the received buffers (no copy).
 *
 * <p>Memory is admitted before it is taken: a READ or WRITE gets room in the server's {@link PayloadBudget} before it
 * is handed on (a WRITE before its payload is read), and nothing more is read while the connection's
 * {@link ConnectionLimit} is full or its replies back up (the channel is not writable). Received buffers wait in a
 * queue of their own meanwhile, and reading from the socket stops, so a client that pipelines without bound waits in
 * TCP. {@link #resume} is called when room comes back. A malformed header closes the connection, after the replies
 * already written.
 *
 * <p>Runs on the channel's event loop only (the budget's wake-up is posted back to it).
 */
final class NbdRequestDecoder extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(NbdRequestDecoder.class);
    private static final int MAX_PAYLOAD_COMPONENTS = 1024;

    private enum State { HEADER, PAYLOAD, SKIP, DONE }

    private final NbdRequestCheck check;
    private final PayloadBudget budget;
    private final ConnectionLimit limit;
    private final String peer;

    private ChannelHandlerContext ctx;
    private State state = State.HEADER;
    private final ArrayDeque<ByteBuf> stash = new ArrayDeque<>();
    private final HeaderGatherer header = new HeaderGatherer(REQUEST_HEADER_LENGTH);
    private boolean draining;
    private boolean autoRead = true;

    /** The write whose payload is being received, and the payload so far. */
    private NbdRequest current;
    private ByteBuf payload;
    private boolean payloadComposite;
    /** Bytes still to come of the current payload (PAYLOAD) or of a refused write's payload (SKIP). */
    private long remaining;
    /** A checked READ or WRITE that waits for room in the server's budget; nothing more is read until it gets it. */
    private NbdRequest parked;
    /** Closes the connection if a write's payload takes too long (it holds budget meanwhile). */
    private final StallTimer deadline;
    private static final RateLimitedLog SLOW = new RateLimitedLog(log);

    NbdRequestDecoder(NbdRequestCheck check, PayloadBudget budget, ConnectionLimit limit, String peer) {
        this(check, budget, limit, peer, new PayloadDeadline.Limit());
    }

    /** With a test's time limit and clock for write payloads. */
    NbdRequestDecoder(NbdRequestCheck check, PayloadBudget budget, ConnectionLimit limit, String peer,
                      PayloadDeadline.Limit payloadLimit) {
        this.check = check;
        this.budget = budget;
        this.limit = limit;
        this.peer = peer;
        this.deadline = payloadLimit.deadline(this::payloadTooSlow);
    }

    /** A write's payload took too long after its header (holding its share of the budget meanwhile): closed. */
    private void payloadTooSlow() {
        if (state != State.PAYLOAD) return;
        SLOW.warn("slow", "NBD {}: closing the connection: the {} bytes of a write did not arrive within {} ms of its header",
                peer, current == null ? 0 : current.length(), deadline.timeoutMs());
        protocolError("write payload too slow");
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) { this.ctx = ctx; }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof ByteBuf in) || state == State.DONE) {
            ReferenceCountUtil.release(msg);   // after DISC, a protocol error or the end of TLS nothing more is read
            return;
        }
        if (in.isReadable()) stash.add(in);
        else in.release();
        drain();
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        drain();
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        // the client ended TLS: it sends nothing more (requests already handed on still get their replies)
        if (evt instanceof SslCloseCompletionEvent) stop();
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        stop();
        ctx.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        stop();
        header.release();
    }

    /** Room came back (a request was answered, or the budget has some): reads on if it may. Event loop only. */
    void resume() {
        drain();
    }

    /** Reads nothing more and gives back what a request cut off mid-payload held. */
    private void stop() {
        state = State.DONE;
        deadline.ended();
        ByteBuf b;
        while ((b = stash.poll()) != null) b.release();
        header.clear();
        parked = null;
        if (current != null) {
            budget.release(current.length());
            limit.end(current.length());
            current = null;
        }
        if (payload != null) {
            payload.release();
            payload = null;
        }
    }

    /** Consumes queued input for as long as the connection may take more work. */
    private void drain() {
        if (draining) return;               // a request answered synchronously inside the loop below
        draining = true;
        try {
            while (!stash.isEmpty() && mayConsume()) {
                ByteBuf b = stash.peek();
                step(b);
                if (state == State.DONE) break;      // stop() already released the queue
                if (!b.isReadable()) stash.poll().release();
            }
        } finally {
            draining = false;
        }
        updateAutoRead();
    }

    private boolean mayConsume() {
        return switch (state) {
            case DONE -> false;
            case HEADER -> parked == null && !limit.full() && ctx.channel().isWritable();
            default -> true;
        };
    }

    private void updateAutoRead() {
        boolean want = state != State.DONE && stash.isEmpty() && mayConsume();
        if (want != autoRead) {
            autoRead = want;
            ctx.channel().config().setAutoRead(want);
        }
    }

    private void step(ByteBuf b) {
        switch (state) {
            case HEADER -> {
                ByteBuf h = header.gather(b, REQUEST_HEADER_LENGTH);
                if (h == null) return;
                int magic = h.readInt();
                int flags = h.readUnsignedShort();
                int type = h.readUnsignedShort();
                long handle = h.readLong();
                long offset = h.readLong();
                long length = h.readUnsignedInt();
                header.clear();
                if (magic != REQUEST_MAGIC) {
                    protocolError("bad request magic 0x" + Integer.toHexString(magic));
                    return;
                }
                onHeader(check.check(NbdRequest.header(flags, type, handle, offset, length)));
            }
            case PAYLOAD -> {
                int take = (int) Math.min(remaining, b.readableBytes());
                addPayload(b.readRetainedSlice(take));
                remaining -= take;
                if (remaining == 0) {
                    deadline.ended();
                    NbdRequest r = current.admitted(current.length(), payload);
                    current = null;
                    payload = null;
                    state = State.HEADER;
                    ctx.fireChannelRead(r);   // from here on the request's reply gives its room back
                }
            }
            case SKIP -> {
                int take = (int) Math.min(remaining, b.readableBytes());
                b.skipBytes(take);
                remaining -= take;
                if (remaining == 0) state = State.HEADER;
            }
            case DONE -> throw new IllegalStateException("no input expected after the end");
        }
    }

    private void onHeader(NbdRequest r) {
        if (r.isRefused()) {
            log.debug("NBD {}: {} {}+{} refused: {}", peer, commandName(r.type()), r.offset(), r.length(), r.refusal());
            if (r.type() == CMD_WRITE && r.length() > 0) {    // its payload still follows: discard it as it arrives
                remaining = r.length();
                state = State.SKIP;
            }
            ctx.fireChannelRead(r);
            return;
        }
        if (r.type() == CMD_DISC) {
            log.debug("NBD {}: client disconnects", peer);
            stop();
            ctx.fireChannelRead(r);
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
                NbdRequest r = parked;
                if (r == null || state == State.DONE) return;
                if (!budget.tryAcquire(r.length(), this::budgetFreed)) return;
                parked = null;
                admit(r);
                drain();
            });
        } catch (RejectedExecutionException e) {
            log.debug("NBD {}: event loop gone, dropping a parked request", peer);
        }
    }

    /** Hands on a checked request that holds its share of the budget (READ, WRITE) or needs none. */
    private void admit(NbdRequest r) {
        boolean data = r.type() == CMD_WRITE || r.type() == CMD_READ;
        long bytes = data ? r.length() : 0;
        limit.begin(bytes);     // a write counts from its header on, so a big payload being received holds back others
        if (r.type() == CMD_WRITE && r.length() > 0) {
            current = r;
            payloadComposite = false;
            remaining = r.length();
            state = State.PAYLOAD;
            deadline.started(ctx);
            return;
        }
        ctx.fireChannelRead(r.admitted(bytes, null));
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

    /** Closes the connection once the replies already written have gone out (a plain close would drop them). */
    private void protocolError(String why) {
        log.debug("NBD {}: closing connection: {}", peer, why);
        stop();
        NbdChannels.closeAfterFlush(ctx);
    }
}
