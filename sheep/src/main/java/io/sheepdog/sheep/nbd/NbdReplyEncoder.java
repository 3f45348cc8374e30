package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.MessageToMessageEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Writes {@link NbdReply}s in the reply format the connection negotiated: simple replies, or structured replies
 * (every READ as one OFFSET_DATA chunk, errors with their message, BLOCK_STATUS). A READ's data goes out as it is,
 * after a header buffer of its own (one gathering write, no copy).
 */
final class NbdReplyEncoder extends MessageToMessageEncoder<NbdReply> {
    static final int MAX_ERROR_MESSAGE = 1024;

    private final boolean structured;

    NbdReplyEncoder(boolean structured) {
        super(NbdReply.class);
        this.structured = structured;
    }

    @Override
    protected void encode(ChannelHandlerContext ctx, NbdReply reply, List<Object> out) {
        ByteBufAllocator alloc = ctx.alloc();
        switch (reply) {
            case NbdReply.Done d -> out.add(simple(alloc, d.handle(), 0));
            case NbdReply.Failed f -> out.add(error(alloc, f.handle(), f.errno(), f.message()));
            case NbdReply.Data d -> {
                int len = d.data().readableBytes();
                if (structured && len == 0) {
                    out.add(structuredHeader(alloc, d.handle(), REPLY_TYPE_NONE, REPLY_FLAG_DONE, 0, 0));
                } else if (structured) {
                    out.add(structuredHeader(alloc, d.handle(), REPLY_TYPE_OFFSET_DATA, REPLY_FLAG_DONE, 8 + len, 8)
                            .writeLong(d.offset()));
                } else {
                    out.add(simple(alloc, d.handle(), 0));
                }
                // the data buffer goes on as it is (a reply is no reference-counted message: nothing releases it here)
                if (len > 0) out.add(d.data());
                else d.data().release();
            }
            case NbdReply.Extents e -> {
                ByteBuf b = structuredHeader(alloc, e.handle(), REPLY_TYPE_BLOCK_STATUS, REPLY_FLAG_DONE, 4 + 8 * e.count(),
                        4 + 8 * e.count());
                b.writeInt(e.contextId());
                for (int i = 0; i < e.count(); i++) b.writeInt((int) e.lengths()[i]).writeInt(e.flags()[i]);
                out.add(b);
            }
        }
    }

    /** Structured error chunk (carrying the message) when negotiated, else a simple reply with the error. */
    private ByteBuf error(ByteBufAllocator alloc, long handle, int errno, String message) {
        if (!structured) return simple(alloc, handle, errno);
        byte[] m = message == null ? new byte[0] : message.getBytes(StandardCharsets.UTF_8);
        if (m.length > MAX_ERROR_MESSAGE) m = Arrays.copyOf(m, MAX_ERROR_MESSAGE);
        ByteBuf b = structuredHeader(alloc, handle, REPLY_TYPE_ERROR, REPLY_FLAG_DONE, 6 + m.length, 6 + m.length);
        return b.writeInt(errno).writeShort(m.length).writeBytes(m);
    }

    /** A chunk header announcing {@code length} bytes, in a buffer with room for {@code follows} of them. */
    private static ByteBuf structuredHeader(ByteBufAllocator alloc, long handle, int type, int flags, int length, int follows) {
        ByteBuf b = alloc.ioBuffer(STRUCTURED_REPLY_HEADER_LENGTH + follows);
        return b.writeInt(STRUCTURED_REPLY_MAGIC).writeShort(flags).writeShort(type).writeLong(handle).writeInt(length);
    }

    private static ByteBuf simple(ByteBufAllocator alloc, long handle, int error) {
        return alloc.ioBuffer(SIMPLE_REPLY_HEADER_LENGTH).writeInt(SIMPLE_REPLY_MAGIC).writeInt(error).writeLong(handle);
    }
}
