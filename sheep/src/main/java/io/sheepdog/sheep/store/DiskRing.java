package io.sheepdog.sheep.store;

import io.sheepdog.proto.SdHash;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Where an object goes among the disks of one node (docs/protocol.md §12.5): every disk gets one virtual disk per 16 MiB of
 * its space, hashed from its path string ({@code sd_hash(path)}, then {@code sd_hash_next} of the previous hash), and
 * an object goes to the first virtual disk whose hash is at least the object's ({@code sd_hash_oid}), wrapping around.
 * So adding or removing a disk moves only the objects of its own virtual disks, and bigger disks get more objects.
 * Immutable.
 */
public final class DiskRing {
    /** Space per virtual disk. */
    public static final long VDISK_BYTES = 16L << 20;

    private final long[] hashes;   // sorted, unsigned
    private final int[] owner;     // disk index of each virtual disk

    /** @param paths the disks' paths as configured (a trailing '/' is not part of the hash); @param sizes their space in bytes */
    public DiskRing(List<String> paths, List<Long> sizes) {
        if (paths.size() != sizes.size()) throw new IllegalArgumentException("a size per disk");
        int total = 0;
        int[] counts = new int[paths.size()];
        for (int i = 0; i < counts.length; i++) {
            long n = Math.max(1, (sizes.get(i) + VDISK_BYTES - 1) / VDISK_BYTES);
            counts[i] = (int) Math.min(n, 1 << 22);
            total += counts[i];
        }
        long[][] pairs = new long[total][];
        int k = 0;
        for (int i = 0; i < counts.length; i++) {
            byte[] name = stripSlash(paths.get(i)).getBytes(StandardCharsets.UTF_8);
            long h = SdHash.sdHash(name, 0, name.length);
            for (int j = 0; j < counts[i]; j++) {
                pairs[k++] = new long[] {h, i};
                h = SdHash.sdHashNext(h);
            }
        }
        Arrays.sort(pairs, (a, b) -> {
            int c = Long.compareUnsigned(a[0], b[0]);
            return c != 0 ? c : Long.compare(a[1], b[1]);
        });
        hashes = new long[total];
        owner = new int[total];
        for (int i = 0; i < total; i++) {
            hashes[i] = pairs[i][0];
            owner[i] = (int) pairs[i][1];
        }
    }

    static String stripSlash(String p) {
        String s = p;
        while (s.length() > 1 && s.endsWith("/")) s = s.substring(0, s.length() - 1);
        return s;
    }

    /** The index (in the lists given) of the disk that holds {@code oid} (the object's id, not a strip key). */
    public int diskOf(long oid) {
        if (hashes.length == 0) throw new IllegalStateException("no disks");
        long h = SdHash.sdHashOid(oid);
        int lo = 0, hi = hashes.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(hashes[mid], h) < 0) lo = mid + 1;
            else hi = mid;
        }
        return owner[lo == hashes.length ? 0 : lo];
    }

    public int virtualDisks() { return hashes.length; }
}
