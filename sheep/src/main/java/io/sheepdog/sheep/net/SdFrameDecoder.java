package io.sheepdog.sheep.net;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.sheepdog.proto.Header48;
import io.sheepdog.proto.OpTable;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.ops.Request;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Frames the Sheepdog client protocol: a 48-byte header, then {@code data_length} bytes of payload when the WRITE
 * flag is set. A payload larger than its opcode may carry ({@link #maxPayload}) closes the connection (the stream
 * cannot be resynchronised without reading it); other malformed requests are answered by the processor.
 *
 * <p>Memory is admitted before it is allocated: a request's bytes (a write's payload, the reply a read asks for) are
 * taken from the server's {@link PayloadBudget} when its header is complete (a payload larger than the whole budget is
 * refused: admitted alone, it would still not fit beside everything else), and given back once its reply has been
 * written. While there is no room the connection stops reading (its client waits in TCP) and goes on when requests
 * of any connection give bytes back. A burst of large writes or reads (QEMU's driver sends a 128 MiB read as 32 reads
 * of 4 MiB at once), or a client that claims huge payloads, so waits instead of exhausting the heap. Requests between
 * sheep have a budget of their own (see {@link #SdFrameDecoder(PayloadBudget, PayloadBudget)}).
 *
 * <p>The payload array is allocated once admitted and filled from each network buffer as it arrives, which is then
 * released at once: a 4 MiB write costs one copy and one array, not a cumulation buffer that grows (and is copied)
 * while the payload streams in, and then a copy out of it.
 */
public final class SdFrameDecoder extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(SdFrameDecoder.class);
    private static final RateLimitedLog WARN = new RateLimitedLog(LOG);
    /** What a request other than an object write may carry: names, attributes (64 KiB values), node lists. */
    static final int MAX_SMALL_PAYLOAD = 1 << 20;

    /**
     * A decoded request frame; {@code reserved} bytes of {@code budget} are its (its payload, or the reply a read
     * asks for) until its reply has been written.
     */
    public record Frame(SdRequest hdr, byte[] data, long reserved, PayloadBudget budget) {
        public Frame(SdRequest hdr, byte[] data, long reserved) {
            this(hdr, data, reserved, null);
        }

        /** Gives the frame's bytes back (once its reply is written, or it was dropped). */
        public void release() {
            if (budget != null) budget.release(reserved);
        }
    }

    private final PayloadBudget clients;
    private final PayloadBudget peers;
    private final byte[] header = new byte[Header48.SIZE];
    private int headerFill;
    private SdRequest pending;      // header of the request whose payload is being received (or waits for room)
    private PayloadBudget pendingBudget;
    private byte[] payload;
    private int payloadFill;
    private long reserved;          // budget bytes taken for the pending request
    private ByteBuf held;           // bytes that arrived while the pending request waited for room
    private boolean closed;
    private ChannelHandlerContext ctx;
    /** Closes the connection if an admitted request's payload takes too long (it holds budget meanwhile). */
    private final StallTimer deadline;

    /** One budget for every request (tests). */
    public SdFrameDecoder(PayloadBudget budget) {
        this(budget, budget);
    }

    /**
     * @param clients what client requests (I/O through the gateway, VDI and admin operations) may hold
     * @param peers   what requests between sheep (served from this node's store, never waiting for another node)
     *                may hold. Apart, so that gateways waiting for peers can never hold the room those peers need: with
     *                one budget, two nodes full of client writes would each wait for the other's replica writes.
     */
    public SdFrameDecoder(PayloadBudget clients, PayloadBudget peers) {
        this(clients, peers, new PayloadDeadline.Limit());
    }

    /** With a test's time limit and clock for payloads. */
    SdFrameDecoder(PayloadBudget clients, PayloadBudget peers, PayloadDeadline.Limit limit) {
        this.clients = clients;
        this.peers = peers;
        this.deadline = limit.deadline(this::payloadTooSlow);
    }

    /** The payload of the admitted request took longer than the deadline: the connection closes, its room goes back. */
    private void payloadTooSlow() {
        if (closed || ctx == null) return;
        WARN.warn("slow", "closing {}: the {} bytes of {} did not arrive within {} ms of its header", ctx.channel().remoteAddress(),
                pending == null ? 0 : pending.dataLength(), pending, deadline.timeoutMs());
        closed = true;
        ctx.close();
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) { this.ctx = ctx; }

    /** Requests one sheep sends another and the other serves locally (so they get their own budget). */
    static boolean isPeerRequest(int opcode) { return OpTable.isBetweenSheep(opcode); }

    /**
     * The bytes a request is admitted for: its payload, or for a request without one the reply buffer it asks for
     * ({@code data_length}: a READ_OBJ of 4 MiB is answered with 4 MiB), never more than the whole budget.
     */
    static long admittedBytes(SdRequest req, PayloadBudget b) {
        // a question with a small answer (a heartbeat, the log level, a lock state) is never held behind data: under a
        // flood of large reads a heartbeat that waited for room went unanswered for seconds, and the failure
        // detector took a busy node for a dead one. Its memory stays bounded by the per-connection request limit.
        if (!req.hasFlag(SdFlags.CMD_WRITE) && req.dataLength() <= CONTROL_REPLY_BYTES) return 0;
        return Math.min(Math.max(0, req.dataLength()), b.max());
    }

    /** Replies up to this size, to requests without a payload, are not admitted against a budget. */
    static final long CONTROL_REPLY_BYTES = 1024;

    /**
     * Whether {@code req} carries a payload larger than its opcode may carry or than the whole {@code budget} (one
     * payload admitted alone must still fit in the heap): its connection closes, the stream cannot be resynchronised.
     */
    static boolean oversized(SdRequest req, PayloadBudget budget) {
        return req.hasFlag(SdFlags.CMD_WRITE) && req.dataLength() > 0
                && req.dataLength() > Math.min(maxPayload(req.opcode()), budget.max());
    }

    /** The largest payload a request with {@code opcode} may carry. */
    static long maxPayload(int opcode) {
        return OpTable.isBigPayload(opcode) ? Proto.MAX_REQUEST_DATA : MAX_SMALL_PAYLOAD;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof ByteBuf in)) {
            ctx.fireChannelRead(msg);
            return;
        }
        if (held != null) {
            // still waiting for room: keep what arrives behind what is held, and stop reading again (the handler
            // may have turned reading back on as its own requests completed)
            ((CompositeByteBuf) held).addComponent(true, in);
            ctx.channel().config().setAutoRead(false);
            return;
        }
        try {
            decode(ctx, in);
        } finally {
            ReferenceCountUtil.release(in);
        }
    }

    private void decode(ChannelHandlerContext ctx, ByteBuf in) {
        while (!closed && in.isReadable()) {
            if (pending == null) {
                int n = Math.min(in.readableBytes(), Header48.SIZE - headerFill);
                in.readBytes(header, headerFill, n);
                headerFill += n;
                if (headerFill < Header48.SIZE) return;
                headerFill = 0;
                SdRequest req = new SdRequest(header.clone());
                PayloadBudget budget = isPeerRequest(req.opcode()) ? peers : clients;
                if (oversized(req, budget)) {
                    WARN.warn("oversize", "closing {}: request payload of {} bytes exceeds the maximum for its opcode ({})",
                            ctx.channel().remoteAddress(), req.dataLength(), req);
                    closed = true;
                    ctx.close();
                    return;
                }
                pending = req;
                pendingBudget = budget;
                if (!admit(ctx)) {
                    // no room: stop reading and keep the rest of this buffer for when there is
                    held = ctx.alloc().compositeBuffer(Integer.MAX_VALUE).addComponent(true, in.readRetainedSlice(in.readableBytes()));
                    return;
                }
                if (payload == null) { // nothing to receive: a read (its reply admitted) or a request without data
                    fire(ctx, Request.NO_DATA);
                    continue;
                }
            }
            int n = Math.min(in.readableBytes(), payload.length - payloadFill);
            in.readBytes(payload, payloadFill, n);
            payloadFill += n;
            if (payloadFill == payload.length) fire(ctx, payload);
        }
    }

    private void fire(ChannelHandlerContext ctx, byte[] data) {
        Frame f = new Frame(pending, data, reserved, pendingBudget);
        deadline.ended();
        pending = null;
        pendingBudget = null;
        payload = null;
        reserved = 0;
        ctx.fireChannelRead(f);
    }

    /**
     * Takes the pending request's bytes from its budget and allocates its payload (if it has one); false (reading
     * paused) if there is no room.
     */
    private boolean admit(ChannelHandlerContext ctx) {
        long len = admittedBytes(pending, pendingBudget);
        if (len > 0 && !pendingBudget.tryAcquire(len, () -> ctx.executor().execute(() -> resume(ctx)))) {
            ctx.channel().config().setAutoRead(false);
            return false;
        }
        reserved = len;
        if (pending.hasFlag(SdFlags.CMD_WRITE) && pending.dataLength() > 0) {
            payload = new byte[(int) pending.dataLength()];
            payloadFill = 0;
            deadline.started(ctx);
        }
        return true;
    }

    /** Room was given back: admit the waiting request, then go on with what arrived meanwhile. */
    private void resume(ChannelHandlerContext ctx) {
        if (closed || pending == null || payload != null || reserved != 0) return;
        if (!admit(ctx)) return; // someone else took the room: wait for the next release
        if (payload == null) fire(ctx, Request.NO_DATA);
        ByteBuf h = held;
        held = null;
        ctx.channel().config().setAutoRead(true);
        if (h != null) {
            try {
                decode(ctx, h);
            } finally {
                h.release();
            }
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        // a request cut off mid-payload is dropped: nothing of it reaches the processor, and its room goes back
        pending = null;
        payload = null;
        closed = true;
        deadline.ended();
        if (pendingBudget != null) pendingBudget.release(reserved);
        pendingBudget = null;
        reserved = 0;
        if (held != null) {
            held.release();
            held = null;
        }
        ctx.fireChannelInactive();
    }
}
