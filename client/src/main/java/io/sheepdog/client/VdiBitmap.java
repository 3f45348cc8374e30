package io.sheepdog.client;

import io.sheepdog.proto.Proto;

/**
 * A READ_VDIS / READ_DEL_VDIS bitmap: 2^24 bits, bit n = byte n/8, bit n%8 (PROTOCOL.md §10.4).
 */
public final class VdiBitmap {
    private final byte[] bits;

    public VdiBitmap(byte[] bits) {
        this.bits = bits.length >= Proto.VDI_BITMAP_BYTES ? bits : java.util.Arrays.copyOf(bits, Proto.VDI_BITMAP_BYTES);
    }

    public static VdiBitmap empty() { return new VdiBitmap(new byte[Proto.VDI_BITMAP_BYTES]); }

    public boolean test(int vid) {
        if (vid < 0 || vid >= Proto.NR_VDIS) return false;
        return (bits[vid >>> 3] & (1 << (vid & 7))) != 0;
    }

    public void set(int vid) { bits[vid >>> 3] |= (byte) (1 << (vid & 7)); }

    /** The first set bit at or after {@code from}, or -1. Skips zero bytes quickly. */
    public int nextSet(int from) {
        if (from < 0) from = 0;
        int i = from;
        while (i < Proto.NR_VDIS) {
            int b = bits[i >>> 3] & 0xff;
            if ((i & 7) == 0 && b == 0) {
                // skip whole zero bytes (and zero longs would be faster still, but this is already cheap)
                i += 8;
                continue;
            }
            if ((b & (1 << (i & 7))) != 0) return i;
            i++;
        }
        return -1;
    }

    public boolean isEmpty() { return nextSet(1) < 0 && !test(0); }

    public byte[] bytes() { return bits; }
}
