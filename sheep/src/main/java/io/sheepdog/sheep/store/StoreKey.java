package io.sheepdog.sheep.store;

import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Oids;

/**
 * What the object store keys files by: an oid for a replicated object, or an oid and a strip index for one strip of
 * an erasure-coded object (docs/protocol.md §13), whose file is named {@code <oid>_<index>} as upstream names it.
 *
 * <p>A strip's key is its oid with bit 31 set and the index in bits 24..28. Only data and vmstate objects are
 * erasure coded, and their object index stays below 2^24 (a VDI of at most 4 TiB in objects of at least 1 MiB), so
 * those bits are free in every such oid; the VID and the kind bits are untouched, so the store's tree layout and
 * its locks treat a strip like its object. Keys never leave the daemon: on the wire a strip is an oid and an
 * {@code ec_index}.
 */
public final class StoreKey {
    private static final long STRIP_BIT = 1L << 31;
    private static final int INDEX_SHIFT = 24;
    private static final long INDEX_MASK = 0x1FL << INDEX_SHIFT;

    private StoreKey() {}

    /** The key of strip {@code index} of {@code oid}. */
    public static long strip(long oid, int index) {
        if (!ErasureCode.appliesTo(oid) || (oid & (STRIP_BIT | INDEX_MASK)) != 0) {
            throw new IllegalArgumentException(String.format("%016x cannot be erasure coded", oid));
        }
        if (index < 0 || index > 30) throw new IllegalArgumentException("strip index " + index);
        return oid | STRIP_BIT | ((long) index << INDEX_SHIFT);
    }

    public static boolean isStrip(long key) { return ErasureCode.appliesTo(key) && (key & STRIP_BIT) != 0; }

    /** The oid a key stores (itself for a replicated object). */
    public static long oid(long key) { return isStrip(key) ? key & ~(STRIP_BIT | INDEX_MASK) : key; }

    /** The strip index of a strip's key; -1 for a replicated object's. */
    public static int index(long key) { return isStrip(key) ? (int) ((key & INDEX_MASK) >>> INDEX_SHIFT) : -1; }

    /** {@code %016x} of the oid, and {@code _<index>} for a strip. */
    public static String fileName(long key) {
        return isStrip(key) ? Oids.fileName(oid(key)) + "_" + index(key) : Oids.fileName(key);
    }

    /** The key of an object file's name; {@link NumberFormatException} if the name is not one. */
    public static long parse(String name) {
        int u = name.indexOf('_');
        String hex = u < 0 ? name : name.substring(0, u);
        if (hex.length() != 16) throw new NumberFormatException(name);
        long oid = Long.parseUnsignedLong(hex, 16);
        if (u < 0) return oid;
        try {
            return strip(oid, Integer.parseInt(name.substring(u + 1)));
        } catch (IllegalArgumentException e) {
            throw new NumberFormatException(name);
        }
    }

    /** A key for log lines. */
    public static String display(long key) { return fileName(key); }
}
