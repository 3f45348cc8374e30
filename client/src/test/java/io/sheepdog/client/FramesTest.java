package io.sheepdog.client;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Header48;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Requests out and replies in, whatever sizes the stream hands the bytes over in. */
class FramesTest {
    private static byte[] reply(int id, byte[] data) {
        SdResponse r = new SdResponse().result(SdResult.SUCCESS);
        r.id(id);
        r.dataLength(data.length);
        byte[] out = Arrays.copyOf(r.bytes(), Header48.SIZE + data.length);
        System.arraycopy(data, 0, out, Header48.SIZE, data.length);
        return out;
    }

    /** A stream that returns at most {@code step} bytes a read. */
    private static InputStream trickle(byte[] all, int step) {
        return new FilterInputStream(new ByteArrayInputStream(all)) {
            @Override public int read(byte[] b, int off, int len) throws IOException {
                return super.read(b, off, Math.min(len, step));
            }
        };
    }

    @Test
    void repliesComeOutWholeWhateverTheReadSizes() throws IOException {
        ByteArrayOutputStream wire = new ByteArrayOutputStream();
        List<byte[]> payloads = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            byte[] p = new byte[new int[] {0, 1, 47, 4096, 100_000, 3}[i]];
            Arrays.fill(p, (byte) (i + 1));
            payloads.add(p);
            wire.writeBytes(reply(i + 10, p));
        }
        for (int step : new int[] {1, 7, 48, 4096, 1 << 20}) {
            Frames.ReplyReader r = new Frames.ReplyReader(trickle(wire.toByteArray(), step), 64); // a tiny buffer
            for (int i = 0; i < 6; i++) {
                Reply got = r.read();
                assertEquals(i + 10, got.header().id(), "step " + step);
                assertArrayEquals(payloads.get(i), got.data(), "step " + step + ", reply " + i);
            }
            assertThrows(EOFException.class, r::read, "the stream ended");
        }
    }

    @Test
    void aReplyCutShortIsAnEndOfStream() {
        byte[] whole = reply(1, new byte[1000]);
        assertThrows(EOFException.class, () -> new Frames.ReplyReader(trickle(Arrays.copyOf(whole, 500), 64), 2048).read());
        assertThrows(EOFException.class, () -> new Frames.ReplyReader(trickle(Arrays.copyOf(whole, 20), 64), 2048).read());
    }

    /** The I/O port's side: a clean end between frames is null, an end inside a header or a payload is EOF. */
    @Test
    void aFrameReaderTellsACleanEndFromACutOne() throws IOException {
        byte[] whole = reply(1, new byte[1000]);
        Frames.FrameReader r = new Frames.FrameReader(trickle(whole, 7), 64);
        assertArrayEquals(Arrays.copyOf(whole, 48), r.readHeader());
        assertArrayEquals(new byte[1000], r.readPayload(1000));
        assertEquals(null, r.readHeader(), "ended between frames");
        assertThrows(EOFException.class, () -> new Frames.FrameReader(trickle(Arrays.copyOf(whole, 20), 64), 2048).readHeader());
        Frames.FrameReader cut = new Frames.FrameReader(trickle(Arrays.copyOf(whole, 500), 64), 2048);
        cut.readHeader();
        assertThrows(EOFException.class, () -> cut.readPayload(1000));
    }

    @Test
    void smallPayloadsGoOutInOneWriteWithTheirHeader() throws IOException {
        List<Integer> writes = new ArrayList<>();
        ByteArrayOutputStream out = new ByteArrayOutputStream() {
            @Override public void write(byte[] b, int off, int len) { writes.add(len); super.write(b, off, len); }
            @Override public void write(byte[] b) { write(b, 0, b.length); }
        };
        byte[] h = new byte[Header48.SIZE];
        h[0] = 2;
        byte[] small = new byte[4096];
        Arrays.fill(small, (byte) 9);
        Frames.writeFrame(out, h, small);
        assertEquals(List.of(Header48.SIZE + 4096), writes);
        Frames.writeFrame(out, h, null);
        assertEquals(Header48.SIZE, writes.getLast());
        byte[] large = new byte[Frames.COALESCE_LIMIT + 1];
        Frames.writeFrame(out, h, large);
        assertEquals(List.of(Header48.SIZE + 4096, Header48.SIZE, Header48.SIZE, large.length), writes, "a large payload after its header");
        byte[] all = out.toByteArray();
        assertArrayEquals(small, Arrays.copyOfRange(all, Header48.SIZE, Header48.SIZE + 4096));
        assertEquals(Header48.SIZE * 3 + 4096 + large.length, all.length);
    }
}
