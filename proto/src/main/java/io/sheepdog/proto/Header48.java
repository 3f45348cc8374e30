package io.sheepdog.proto;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The 48-byte header shared by requests and responses. Every field is read and written little endian at the
 * absolute offset the original's C structs give it, straight in the 48 bytes (through VarHandles: a header costs
 * one small array, which matters at a few headers per request and a hundred thousand requests a second).
 */
public abstract class Header48 {
    public static final int SIZE = 48;

    protected final byte[] bytes;
    private static final VarHandle I16 = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle I32 = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle I64 = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    protected Header48() {
        this(new byte[SIZE]);
    }

    protected Header48(byte[] bytes) {
        if (bytes.length != SIZE) throw new IllegalArgumentException("header must be 48 bytes, got " + bytes.length);
        this.bytes = bytes;
    }

    /** The raw 48 bytes (live view, not a copy). */
    public byte[] bytes() { return bytes; }

    public void writeTo(ByteBuffer dst) { dst.put(bytes); }

    public int protoVer() { return bytes[0] & 0xff; }
    public int opcode() { return bytes[1] & 0xff; }
    public int flags() { return (short) I16.get(bytes, 2) & 0xffff; }
    public int epoch() { return (int) I32.get(bytes, 4); }
    public int id() { return (int) I32.get(bytes, 8); }
    /** Payload length in bytes, as an unsigned value. */
    public long dataLength() { return (int) I32.get(bytes, 12) & 0xffffffffL; }

    public Header48 protoVer(int v) { bytes[0] = (byte) v; return this; }
    public Header48 opcode(int v) { bytes[1] = (byte) v; return this; }
    public Header48 flags(int v) { I16.set(bytes, 2, (short) v); return this; }
    public Header48 epoch(int v) { I32.set(bytes, 4, v); return this; }
    public Header48 id(int v) { I32.set(bytes, 8, v); return this; }
    public Header48 dataLength(long v) { I32.set(bytes, 12, (int) v); return this; }

    protected long u64(int off) { return (long) I64.get(bytes, off); }
    protected long u32(int off) { return (int) I32.get(bytes, off) & 0xffffffffL; }
    protected int s32(int off) { return (int) I32.get(bytes, off); }
    protected int u16(int off) { return (short) I16.get(bytes, off) & 0xffff; }
    protected int u8(int off) { return bytes[off] & 0xff; }
    protected void u64(int off, long v) { I64.set(bytes, off, v); }
    protected void u32(int off, long v) { I32.set(bytes, off, (int) v); }
    protected void u16(int off, int v) { I16.set(bytes, off, (short) v); }
    protected void u8(int off, int v) { bytes[off] = (byte) v; }
}
