package io.sheepdog.dog;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The {@code vdi backup} stream (docs/dog.md §2.15), little-endian: a header {@code {u32 version = 1, u32 magic =
 * 0x11921192}}, then records {@code {u32 idx, u32 offset, u32 length, u32 reserved}} each followed by
 * {@code length} bytes of object data, and an end record with idx 0xFFFFFFFF.
 */
final class BackupStream {
    private BackupStream() {}

    static final int VERSION = 1;
    static final int MAGIC = 0x11921192;
    static final int END_IDX = 0xFFFFFFFF;
    static final int HEADER_SIZE = 8;
    static final int RECORD_SIZE = 16;

    /** A malformed or truncated stream. */
    static final class BadStream extends IOException {
        BadStream(String msg) { super(msg); }
    }

    record Record(int idx, int offset, int length) {
        boolean isEnd() { return idx == END_IDX; }
    }

    static void writeHeader(OutputStream out) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(VERSION).putInt(MAGIC);
        out.write(b.array());
    }

    static void writeRecord(OutputStream out, int idx, int offset, byte[] data, int from, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(RECORD_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(idx).putInt(offset).putInt(length).putInt(0);
        out.write(b.array());
        out.write(data, from, length);
    }

    static void writeEnd(OutputStream out) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(RECORD_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(END_IDX).putInt(0).putInt(0).putInt(0);
        out.write(b.array());
    }

    /** Reads and checks the stream header. */
    static void readHeader(InputStream in) throws IOException {
        byte[] h = new byte[HEADER_SIZE];
        int n = in.readNBytes(h, 0, HEADER_SIZE);
        if (n < HEADER_SIZE) throw new BadStream(n == 0 ? "The input is empty, not a VDI backup" : "The input is not a VDI backup");
        ByteBuffer b = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
        int version = b.getInt(0), magic = b.getInt(4);
        if (magic != MAGIC) throw new BadStream("The input is not a VDI backup");
        if (version != VERSION) throw new BadStream("Unsupported VDI backup version " + version);
    }

    /** Reads the next record header; a stream that ends here without an end record is truncated. */
    static Record readRecord(InputStream in) throws IOException {
        byte[] h = new byte[RECORD_SIZE];
        int n = in.readNBytes(h, 0, RECORD_SIZE);
        if (n < RECORD_SIZE) throw new BadStream("The VDI backup is truncated");
        ByteBuffer b = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
        return new Record(b.getInt(0), b.getInt(4), b.getInt(8));
    }

    /** Reads exactly {@code len} bytes of record data. */
    static byte[] readData(InputStream in, int len) throws IOException {
        byte[] d = new byte[len];
        int n = in.readNBytes(d, 0, len);
        if (n < len) throw new BadStream("The VDI backup is truncated");
        return d;
    }

    /** Checks a record against the object geometry of the VDI it will be applied to. */
    static void validate(Record r, long objSize, long objects) throws BadStream {
        long idx = r.idx() & 0xffffffffL, off = r.offset() & 0xffffffffL, len = r.length() & 0xffffffffL;
        if (idx >= objects) throw new BadStream("The VDI backup refers to object " + idx + " beyond the end of the VDI");
        if (len == 0 || off + len > objSize) {
            throw new BadStream("The VDI backup has a bad record (object " + idx + ", offset " + off + ", length " + len + ")");
        }
    }

    /** First and last differing 512-byte sectors between two object images, as [from, to) bytes; null if equal. */
    static int[] diffRange(byte[] from, byte[] to) {
        int sectors = (to.length + 511) / 512;
        int first = -1, last = -1;
        for (int s = 0; s < sectors; s++) {
            int a = s * 512, e = Math.min(to.length, a + 512);
            boolean differs = from.length < e || !Arrays.equals(from, a, e, to, a, e);
            if (differs) {
                if (first < 0) first = s;
                last = s;
            }
        }
        if (first < 0) return null;
        return new int[] {first * 512, Math.min(to.length, (last + 1) * 512)};
    }

    /** Thrown by readers when the stream hit EOF unexpectedly. */
    static EOFException eof() { return new EOFException(); }
}
