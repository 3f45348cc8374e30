package io.sheepdog.sheep.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.sheepdog.proto.Header48;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Frames read ahead from a channel that hands out bytes in pieces of any size, into arrays and direct buffers. */
class ChannelFrameReaderTest {
    /** A channel over {@code bytes} whose reads return at most {@code piece} bytes (a socket's reads may be short). */
    static ReadableByteChannel pieces(byte[] bytes, int piece) {
        return new ReadableByteChannel() {
            int at;

            @Override public int read(ByteBuffer dst) {
                if (at == bytes.length) return -1;
                int n = Math.min(Math.min(piece, dst.remaining()), bytes.length - at);
                dst.put(bytes, at, n);
                at += n;
                return n;
            }

            @Override public boolean isOpen() { return true; }

            @Override public void close() { }
        };
    }

    static byte[] header(int tag) {
        byte[] h = new byte[Header48.SIZE];
        java.util.Arrays.fill(h, (byte) tag);
        return h;
    }

    @Test void headersAndPayloadsComeOutWholeWhateverTheReadsReturn() throws Exception {
        Random rnd = new Random(7);
        int[] sizes = {0, 1, 4096, 16 << 10, (16 << 10) + 3, 1 << 20};
        ByteArrayOutputStream wire = new ByteArrayOutputStream();
        byte[][] payloads = new byte[sizes.length][];
        for (int i = 0; i < sizes.length; i++) {
            payloads[i] = new byte[sizes[i]];
            rnd.nextBytes(payloads[i]);
            wire.write(header(i));
            wire.write(payloads[i]);
        }
        for (int piece : new int[] {1, 7, 48, 4096, 100_000, Integer.MAX_VALUE}) {
            ChannelFrameReader in = new ChannelFrameReader(pieces(wire.toByteArray(), piece), ByteBuffer.allocateDirect(16 << 10));
            for (int i = 0; i < sizes.length; i++) {
                assertArrayEquals(header(i), in.readHeader(), "header " + i + ", reads of " + piece);
                byte[] got;
                if (i % 2 == 0) {
                    got = in.readPayload(sizes[i]);
                } else {
                    // into a direct buffer, as a replica's write is read: filled and flipped
                    ByteBuffer b = ByteBuffer.allocateDirect(sizes[i] + 100).limit(sizes[i]);
                    in.readPayload(b);
                    assertEquals(0, b.position());
                    assertEquals(sizes[i], b.limit());
                    got = new byte[sizes[i]];
                    b.get(got);
                }
                assertArrayEquals(payloads[i], got, "payload " + i + ", reads of " + piece);
            }
            assertNull(in.readHeader(), "the end between frames is a clean end");
        }
    }

    @Test void anEndInsideAFrameIsAnEofError() throws Exception {
        byte[] half = java.util.Arrays.copyOf(header(1), 20);
        assertThrows(EOFException.class, () -> new ChannelFrameReader(pieces(half, 8), ByteBuffer.allocateDirect(1024)).readHeader());
        byte[] cut = new byte[Header48.SIZE + 100];
        ChannelFrameReader in = new ChannelFrameReader(pieces(cut, 30), ByteBuffer.allocateDirect(64));
        in.readHeader();
        assertThrows(EOFException.class, () -> in.readPayload(ByteBuffer.allocateDirect(4096)));
    }
}
