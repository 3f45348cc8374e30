package io.sheepdog.sheep.nbd;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * Collects a fixed-size header that may arrive split over several network buffers: a view of the buffer when it
 * holds the whole header (no copy), else the pieces gathered in a small buffer of its own.
 */
final class HeaderGatherer {
    private final ByteBuf partial;

    HeaderGatherer(int maxLength) {
        this.partial = Unpooled.buffer(maxLength, maxLength);
    }

    /** The {@code n} header bytes once they are all there (consumed from {@code b}), else null (more to come). */
    ByteBuf gather(ByteBuf b, int n) {
        if (!partial.isReadable() && b.readableBytes() >= n) {
            ByteBuf view = b.slice(b.readerIndex(), n);
            b.skipBytes(n);
            return view;
        }
        partial.writeBytes(b, Math.min(n - partial.readableBytes(), b.readableBytes()));
        return partial.readableBytes() == n ? partial : null;
    }

    /** Forgets what was gathered (after a header was read, or when the connection ends). */
    void clear() { partial.clear(); }

    void release() { partial.release(); }
}
