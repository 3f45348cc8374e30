package io.sheepdog.client;

import io.sheepdog.proto.Proto;
import java.util.Arrays;

/**
 * A READ_VDIS / READ_DEL_VDIS bitmap: 2^24 bits, bit n = byte n/8, bit n%8 (docs/protocol.md §10.4).
 */
public final class VdiBitmap {
    private final byte[] bits;

    public VdiBitmap(byte[] bits) {
        this.bits = bits.length >= Proto.VDI_BITMAP_BYTES ? bits : Arrays.copyOf(bits, Proto.VDI_BITMAP_BYTES);
    }

    public static VdiBitmap empty() { return new VdiBitmap(new byte[Proto.VDI_BITMAP_BYTES]); }

    public boolean test(int vid) {
        if (vid < 0 || vid >= Proto.NR_VDIS) return false;
        return (bits[vid >>> 3] & (1 << (vid & 7))) != 0;
    }

    public void set(int vid) { bits[vid >>> 3] |= (byte) (1 << (vid & 7)); }

    /**
     * The first set bit at or after {@code from}, or -1. Listing the VDIs scans the whole 2 MiB map, mostly zeros,
     * often before the JIT has compiled this method, so zero bytes are skipped eight at a time with plain array reads
     * (a third of the interpreted bytecodes of a byte-by-byte scan).
     */
    public int nextSet(int from) {
        if (from < 0) from = 0;
        if (from >= Proto.NR_VDIS) return -1;
        int end = Proto.NR_VDIS >>> 3;
        int i = from >>> 3;
        int b = bits[i] & (0xff << (from & 7)); // the bits of the first byte at or after from
        if (b == 0) {
            i++;
            while (i + 8 <= end && (bits[i] | bits[i + 1] | bits[i + 2] | bits[i + 3] | bits[i + 4] | bits[i + 5]
                    | bits[i + 6] | bits[i + 7]) == 0) {
                i += 8;
            }
            while (i < end && bits[i] == 0) i++;
            if (i >= end) return -1;
            b = bits[i] & 0xff;
        }
        return (i << 3) + Integer.numberOfTrailingZeros(b);
    }

    public boolean isEmpty() { return nextSet(1) < 0 && !test(0); }

    public byte[] bytes() { return bits; }
}
