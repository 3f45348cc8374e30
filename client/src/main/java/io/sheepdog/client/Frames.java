package io.sheepdog.client;

import io.sheepdog.proto.Header48;
import io.sheepdog.proto.SdResponse;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Arrays;

/**
 * Requests written to and replies read from a sheep's stream, for the blocking connections that share them
 * ({@link SheepConnection}, and the daemon's links to its peers).
 */
public final class Frames {
    /** Payloads up to this size go out in one write with their header (one segment with TCP_NODELAY). */
    public static final int COALESCE_LIMIT = 128 << 10;

    private Frames() {}

    /** Writes a frame (a request or a reply): its header and its payload (null or empty: none), small payloads in the same write. */
    public static void writeFrame(OutputStream out, byte[] header, byte[] payload) throws IOException {
        int len = payload == null ? 0 : payload.length;
        if (len == 0) {
            out.write(header);
        } else if (len <= COALESCE_LIMIT) {
            byte[] both = Arrays.copyOf(header, Header48.SIZE + len);
            System.arraycopy(payload, 0, both, Header48.SIZE, len);
            out.write(both);
        } else {
            out.write(header);
            out.write(payload);
        }
    }

    /**
     * Frames (a 48-byte header, then its payload) read through a read-ahead buffer, so that a run of small frames
     * costs a few large reads instead of two per frame; a payload larger than what is buffered is read straight into
     * its array. Replies on a client's connection ({@link ReplyReader}), requests on a sheep's I/O port. Used by one
     * thread at a time.
     */
    public static final class FrameReader {
        private final InputStream in;
        private final byte[] buf;
        // bytes [pos, lim) are received and not yet consumed
        private int pos, lim;

        public FrameReader(InputStream in, int bufferSize) {
            this.in = in;
            this.buf = new byte[Math.max(bufferSize, Header48.SIZE)];
        }

        /** The next header; null if the stream ended cleanly before it (between frames), EOFException inside it. */
        public byte[] readHeader() throws IOException {
            if (!fill(Header48.SIZE)) return null;
            byte[] header = Arrays.copyOfRange(buf, pos, pos + Header48.SIZE);
            pos += Header48.SIZE;
            return header;
        }

        /** The {@code len} bytes of a payload: what was read ahead, then the rest straight into the array. */
        public byte[] readPayload(int len) throws IOException {
            byte[] data = new byte[len];
            int n = Math.min(lim - pos, len);
            System.arraycopy(buf, pos, data, 0, n);
            pos += n;
            while (n < len) {
                int r = in.read(data, n, len - n);
                if (r < 0) throw new EOFException();
                n += r;
            }
            return data;
        }

        /**
         * Makes at least {@code need} bytes available in the buffer, reading as much as the stream has; false if the
         * stream ended with nothing buffered (a clean end between frames), EOFException if it ended after some.
         */
        private boolean fill(int need) throws IOException {
            if (lim - pos >= need) return true;
            System.arraycopy(buf, pos, buf, 0, lim - pos);
            lim -= pos;
            pos = 0;
            while (lim < need) {
                int r = in.read(buf, lim, buf.length - lim);
                if (r < 0) {
                    if (lim == 0) return false;
                    throw new EOFException();
                }
                lim += r;
            }
            return true;
        }
    }

    /** Replies (header and payload) from a sheep's stream, through a {@link FrameReader}. */
    public static final class ReplyReader {
        private final FrameReader frames;

        public ReplyReader(InputStream in, int bufferSize) {
            this.frames = new FrameReader(in, bufferSize);
        }

        /** Reads one reply, header and payload; EOFException if the stream ends first. */
        public Reply read() throws IOException {
            byte[] header = frames.readHeader();
            if (header == null) throw new EOFException();
            SdResponse rsp = new SdResponse(header);
            long len = rsp.dataLength();
            if (len > Integer.MAX_VALUE - 16) throw new IOException("reply too large: " + len);
            return new Reply(rsp, frames.readPayload((int) len));
        }
    }
}
