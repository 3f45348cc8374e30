package io.sheepdog.sheep.net;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.sheepdog.proto.Header48;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Frames the Sheepdog client protocol: a 48-byte header, then {@code data_length} bytes of payload when the WRITE
 * flag is set. A payload larger than any request may carry closes the connection (the stream cannot be resynchronised
 * without reading it); other malformed requests are answered by the processor.
 */
public final class SdFrameDecoder extends ByteToMessageDecoder {
    private static final Logger LOG = LoggerFactory.getLogger(SdFrameDecoder.class);

    /** A decoded request frame. */
    public record Frame(SdRequest hdr, byte[] data) {}

    private SdRequest pending;

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        while (true) {
            if (pending == null) {
                if (in.readableBytes() < Header48.SIZE) return;
                byte[] h = new byte[Header48.SIZE];
                in.readBytes(h);
                SdRequest req = new SdRequest(h);
                boolean write = req.hasFlag(SdFlags.CMD_WRITE);
                if (write && req.dataLength() > Proto.MAX_REQUEST_DATA) {
                    LOG.warn("closing {}: request payload of {} bytes exceeds the maximum ({})", ctx.channel().remoteAddress(),
                            req.dataLength(), req);
                    in.skipBytes(in.readableBytes());
                    ctx.close();
                    return;
                }
                if (!write || req.dataLength() == 0) {
                    out.add(new Frame(req, io.sheepdog.sheep.ops.Request.NO_DATA));
                    continue;
                }
                pending = req;
            }
            int len = (int) pending.dataLength();
            if (in.readableBytes() < len) return;
            byte[] d = new byte[len];
            in.readBytes(d);
            out.add(new Frame(pending, d));
            pending = null;
        }
    }
}
