package io.sheepdog.proto;

/** Object id layout (docs/protocol.md §10.1). */
public final class Oids {
    private Oids() {}

    public static final long VDI_BIT = 1L << 63;
    public static final long VMSTATE_BIT = 1L << 62;
    public static final long VDI_ATTR_BIT = 1L << 61;
    public static final long VDI_BTREE_BIT = 1L << 60;
    public static final long LEDGER_BIT = 1L << 59;
    public static final long VID_MASK = 0x00FFFFFF00000000L;
    public static final int VDI_SPACE_SHIFT = 32;

    public static long inodeOid(int vid) { return VDI_BIT | ((long) vid << VDI_SPACE_SHIFT); }
    public static long dataOid(int vid, long idx) { return ((long) vid << VDI_SPACE_SHIFT) | (idx & 0xffffffffL); }
    public static long vmstateOid(int vid, long idx) { return VMSTATE_BIT | dataOid(vid, idx); }
    public static long attrOid(int vid, int attrId) { return VDI_ATTR_BIT | ((long) vid << VDI_SPACE_SHIFT) | (attrId & 0xffffffffL); }
    public static long ledgerOid(long dataOid) { return dataOid | LEDGER_BIT; }

    public static int vid(long oid) { return (int) ((oid & VID_MASK) >>> VDI_SPACE_SHIFT); }
    public static long index(long oid) { return oid & 0xffffffffL; }

    public static boolean isInode(long oid) { return (oid & VDI_BIT) != 0; }
    public static boolean isVmstate(long oid) { return (oid & VMSTATE_BIT) != 0; }
    public static boolean isAttr(long oid) { return (oid & VDI_ATTR_BIT) != 0; }
    public static boolean isBtree(long oid) { return (oid & VDI_BTREE_BIT) != 0; }
    public static boolean isLedger(long oid) { return (oid & LEDGER_BIT) != 0; }
    /** A data object has none of bits 59..63 set. */
    public static boolean isData(long oid) { return (oid & 0xF800000000000000L) == 0; }

    /** The name an object has on disk: 16 lower-case hex digits. */
    public static String fileName(long oid) { return String.format("%016x", oid); }

    public static long parseFileName(String name) { return Long.parseUnsignedLong(name, 16); }

    /** Size of the object on a replica, given the VDI's object size. */
    public static long objectSize(long oid, long dataObjectSize) {
        if (isInode(oid)) return Inode.SIZE;
        if (isAttr(oid)) return VdiAttr.SIZE;
        if (isLedger(oid) || isBtree(oid)) return Proto.LEDGER_OBJ_SIZE;
        return dataObjectSize;
    }
}
