package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Fixed-size NUL-padded string fields. */
public final class Strings {
    private Strings() {}

    /** Reads a fixed field of {@code len} bytes, up to the first NUL. */
    public static String read(ByteBuffer b, int off, int len) {
        int n = 0;
        while (n < len && b.get(off + n) != 0) n++;
        byte[] a = new byte[n];
        b.get(off, a);
        return new String(a, StandardCharsets.UTF_8);
    }

    /** Writes {@code s} into a fixed field of {@code len} bytes, NUL padded (truncated if longer). */
    public static void write(ByteBuffer b, int off, int len, String s) {
        byte[] a = s == null ? new byte[0] : s.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(a.length, len);
        b.put(off, a, 0, n);
        for (int i = n; i < len; i++) b.put(off + i, (byte) 0);
    }

    /** A fixed field of {@code len} bytes holding {@code s}. */
    public static byte[] fixed(String s, int len) {
        byte[] out = new byte[len];
        byte[] a = s == null ? new byte[0] : s.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(a, 0, out, 0, Math.min(a.length, len));
        return out;
    }

    public static int utf8Length(String s) { return s.getBytes(StandardCharsets.UTF_8).length; }
}
