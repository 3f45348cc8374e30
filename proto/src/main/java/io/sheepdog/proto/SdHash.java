package io.sheepdog.proto;

import java.nio.charset.StandardCharsets;

/** FNV-1a based hashes used for VIDs, attribute ids and the vnode ring (docs/protocol.md §10.4, §12.1). */
public final class SdHash {
    private SdHash() {}

    public static final long FNV1A_BASIS = 0xcbf29ce484222325L;
    public static final long FNV1A_PRIME = 0x100000001b3L;

    public static long fnv1a(byte[] b, int off, int len, long h) {
        for (int i = off; i < off + len; i++) {
            h ^= b[i] & 0xff;
            h *= FNV1A_PRIME;
        }
        return h;
    }

    public static long fnv1a(byte[] b, long h) { return fnv1a(b, 0, b.length, h); }

    /** FNV-1a over the 8 bytes of {@code v}, least significant byte first. */
    public static long fnv1aU64(long v, long h) {
        for (int i = 0; i < 8; i++) {
            h ^= (v >>> (8 * i)) & 0xff;
            h *= FNV1A_PRIME;
        }
        return h;
    }

    public static long sdHash(byte[] b, int off, int len) {
        long h = fnv1a(b, off, len, FNV1A_BASIS);
        return fnv1aU64(h, h);
    }

    public static long sdHashOid(long oid) {
        long h = fnv1aU64(oid, FNV1A_BASIS);
        return fnv1aU64(h, h);
    }

    public static long sdHashNext(long h) { return fnv1aU64(h, h); }

    /** VID hash of a name: FNV-1a-64 of the bytes up to the first NUL, low 24 bits. */
    public static int vdiHash(byte[] name) {
        int len = 0;
        while (len < name.length && name[len] != 0) len++;
        return (int) (fnv1a(name, 0, len, FNV1A_BASIS) & 0xFFFFFF);
    }

    public static int vdiHash(String name) { return vdiHash(name.getBytes(StandardCharsets.UTF_8)); }
}
