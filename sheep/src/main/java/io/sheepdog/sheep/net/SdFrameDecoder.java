package io.sheepdog.sheep.net;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.sheepdog.proto.Header48;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.sheep.ops.Request;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Frames the Sheepdog client protocol: a 48-byte header, then {@code data_length} bytes of payload when the WRITE
 * flag is set. A payload larger than any request may carry closes the connection (the stream cannot be resynchronised
 * without reading it); other malformed requests are answered by the processor.
 *
 * <p>The payload array is allocated as soon as its header is complete and filled from each network buffer as it
 * arrives, which is then released at once: a 4 MiB write costs one copy and one array, not a cumulation buffer that
 * grows (and is copied) while the payload streams in, and then a copy out of it.
 */
public final class SdFrameDecoder extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(SdFrameDecoder.class);

    /** A decoded request frame. */
    public record Frame(SdRequest hdr, byte[] data) {}

    private final byte[] header = new byte[Header48.SIZE];
    private int headerFill;
    private SdRequest pending;      // header of the request whose payload is being received
    private byte[] payload;
    private int payloadFill;
    private boolean closed;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof ByteBuf in)) {
            ctx.fireChannelRead(msg);
            return;
        }
        try {
            while (!closed && in.isReadable()) {
                if (pending == null) {
                    int n = Math.min(in.readableBytes(), Header48.SIZE - headerFill);
                    in.readBytes(header, headerFill, n);
                    headerFill += n;
                    if (headerFill < Header48.SIZE) return;
                    headerFill = 0;
                    SdRequest req = new SdRequest(header.clone());
                    if (!req.hasFlag(SdFlags.CMD_WRITE) || req.dataLength() == 0) {
                        ctx.fireChannelRead(new Frame(req, Request.NO_DATA));
                        continue;
                    }
                    if (req.dataLength() > Proto.MAX_REQUEST_DATA) {
                        LOG.warn("closing {}: request payload of {} bytes exceeds the maximum ({})",
                                ctx.channel().remoteAddress(), req.dataLength(), req);
                        closed = true;
                        ctx.close();
                        return;
                    }
                    pending = req;
                    payload = new byte[(int) req.dataLength()];
                    payloadFill = 0;
                }
                int n = Math.min(in.readableBytes(), payload.length - payloadFill);
                in.readBytes(payload, payloadFill, n);
                payloadFill += n;
                if (payloadFill == payload.length) {
                    Frame f = new Frame(pending, payload);
                    pending = null;
                    payload = null;
                    ctx.fireChannelRead(f);
                }
            }
        } finally {
            ReferenceCountUtil.release(in);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        // a request cut off mid-payload is dropped: nothing of it reaches the processor
        pending = null;
        payload = null;
        closed = true;
        ctx.fireChannelInactive();
    }
}
