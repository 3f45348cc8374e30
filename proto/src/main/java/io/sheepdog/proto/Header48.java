package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The 48-byte header shared by requests and responses. Backed by a little-endian buffer so that every
 * field is read and written at the absolute offset the original's C structs give it; encoding is a copy.
 */
public abstract class Header48 {
    public static final int SIZE = 48;

    protected final byte[] bytes;
    protected final ByteBuffer buf;

    protected Header48() {
        this(new byte[SIZE]);
    }

    protected Header48(byte[] bytes) {
        if (bytes.length != SIZE) throw new IllegalArgumentException("header must be 48 bytes, got " + bytes.length);
        this.bytes = bytes;
        this.buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The raw 48 bytes (live view, not a copy). */
    public byte[] bytes() { return bytes; }

    public void writeTo(ByteBuffer dst) { dst.put(bytes); }

    public int protoVer() { return bytes[0] & 0xff; }
    public int opcode() { return bytes[1] & 0xff; }
    public int flags() { return buf.getShort(2) & 0xffff; }
    public int epoch() { return buf.getInt(4); }
    public int id() { return buf.getInt(8); }
    /** Payload length in bytes, as an unsigned value. */
    public long dataLength() { return buf.getInt(12) & 0xffffffffL; }

    public Header48 protoVer(int v) { bytes[0] = (byte) v; return this; }
    public Header48 opcode(int v) { bytes[1] = (byte) v; return this; }
    public Header48 flags(int v) { buf.putShort(2, (short) v); return this; }
    public Header48 epoch(int v) { buf.putInt(4, v); return this; }
    public Header48 id(int v) { buf.putInt(8, v); return this; }
    public Header48 dataLength(long v) { buf.putInt(12, (int) v); return this; }

    protected long u64(int off) { return buf.getLong(off); }
    protected long u32(int off) { return buf.getInt(off) & 0xffffffffL; }
    protected int s32(int off) { return buf.getInt(off); }
    protected int u16(int off) { return buf.getShort(off) & 0xffff; }
    protected int u8(int off) { return bytes[off] & 0xff; }
    protected void u64(int off, long v) { buf.putLong(off, v); }
    protected void u32(int off, long v) { buf.putInt(off, (int) v); }
    protected void u16(int off, int v) { buf.putShort(off, (short) v); }
    protected void u8(int off, int v) { bytes[off] = (byte) v; }
}
