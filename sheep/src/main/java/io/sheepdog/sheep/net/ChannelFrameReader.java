package io.sheepdog.sheep.net;

import io.sheepdog.proto.Header48;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * Sheepdog frames from a blocking channel (the I/O port's connections), read ahead into a direct buffer: a header
 * with a payload of a few KiB arrives in one read. A payload goes into an array, or into a direct buffer the caller
 * gives (an aligned one, which the store writes to the disk as it is): what was read ahead is copied, the rest is
 * read straight into it, so a replica's write goes from the kernel's socket buffer to the disk through one buffer.
 */
final class ChannelFrameReader {
    private final ReadableByteChannel ch;
    /** Bytes [position, limit) are received and not yet consumed. */
    private final ByteBuffer buf;

    /** Reads {@code ch} ahead into {@code buffer} (direct, at least a header's size; the caller owns and frees it). */
    ChannelFrameReader(ReadableByteChannel ch, ByteBuffer buffer) {
        if (buffer.capacity() < Header48.SIZE) throw new IllegalArgumentException("a read buffer smaller than a header");
        this.ch = ch;
        this.buf = buffer.clear().flip();
    }

    /** The next header; null if the channel ended cleanly before it (between frames), EOFException inside it. */
    byte[] readHeader() throws IOException {
        if (!fill(Header48.SIZE)) return null;
        byte[] header = new byte[Header48.SIZE];
        buf.get(header);
        return header;
    }

    /** A payload of {@code len} bytes, in a new array. */
    byte[] readPayload(int len) throws IOException {
        byte[] data = new byte[len];
        readPayload(ByteBuffer.wrap(data));
        return data;
    }

    /** Fills {@code dst} from its position to its limit with the payload that follows, and flips it. */
    void readPayload(ByteBuffer dst) throws IOException {
        int n = Math.min(buf.remaining(), dst.remaining());
        dst.put(buf.slice(buf.position(), n));
        buf.position(buf.position() + n);
        while (dst.hasRemaining()) {
            if (ch.read(dst) < 0) throw new EOFException();
        }
        dst.flip();
    }

    /**
     * Makes at least {@code need} bytes available, reading as much as the channel has; false if it ended with nothing
     * buffered (a clean end between frames), EOFException if it ended after some.
     */
    private boolean fill(int need) throws IOException {
        if (buf.remaining() >= need) return true;
        buf.compact(); // now in write mode: [0, position) received
        try {
            while (buf.position() < need) {
                if (ch.read(buf) < 0) {
                    if (buf.position() == 0) return false;
                    throw new EOFException();
                }
            }
        } finally {
            buf.flip();
        }
        return true;
    }
}
