package io.sheepdog.proto;

/** Protocol-wide constants (docs/protocol.md §2, §7.1). */
public final class Proto {
    private Proto() {}

    public static final int DEFAULT_PORT = 7000;
    public static final int PROTO_VER = 0x02;
    public static final int SHEEP_PROTO_VER = 0x0a;
    public static final int FORMAT_VERSION = 0x0006;

    public static final int MAX_VDI_LEN = 256;
    public static final int MAX_VDI_TAG_LEN = 256;
    public static final int MAX_ATTR_KEY_LEN = 256;
    public static final int MAX_ATTR_VALUE_LEN = 65536;
    public static final int NR_VDIS = 1 << 24;
    public static final int VDI_BITMAP_BYTES = NR_VDIS / 8; // 2 097 152
    public static final int DEFAULT_BLOCK_SIZE_SHIFT = 22;
    public static final int DATA_OBJ_SIZE = 1 << DEFAULT_BLOCK_SIZE_SHIFT;
    public static final int MIN_BLOCK_SIZE_SHIFT = 20;
    public static final int MAX_BLOCK_SIZE_SHIFT = 31;
    public static final long OLD_MAX_DATA_OBJS = 1L << 20;
    public static final long MAX_DATA_OBJS = 1L << 32;
    public static final long MAX_VDI_SIZE = (long) DATA_OBJ_SIZE * MAX_DATA_OBJS;
    public static final int DEFAULT_COPIES = 3;
    public static final int MAX_COPIES = 31;
    public static final int EC_MAX_STRIP = 16;
    public static final int DEFAULT_VNODES = 128;
    public static final int MAX_NODES = 6144;
    public static final int STORE_LEN = 16;
    public static final int MAX_EVENT_BUF_SIZE = 128 * 1024;
    public static final int LEDGER_OBJ_SIZE = 4 << 20;

    /** Largest payload a server accepts in one request: an object of the largest allowed size would be 2 GiB,
     * but no client sends more than one default object plus an inode; cap requests at 64 MiB. */
    public static final int MAX_REQUEST_DATA = 64 << 20;

    // cluster status (enum sd_status)
    public static final int STATUS_OK = 1;
    public static final int STATUS_WAIT = 2;
    public static final int STATUS_SHUTDOWN = 3;
    public static final int STATUS_KILLED = 4;

    // cluster flags (§7.4)
    public static final int CLUSTER_FLAG_STRICT = 0x0001;
    public static final int CLUSTER_FLAG_DISKMODE = 0x0002;
    public static final int CLUSTER_FLAG_AUTO_VNODES = 0x0004;
    public static final int CLUSTER_FLAG_USE_LOCK = 0x0008;
    public static final int CLUSTER_FLAG_RECYCLE_VID = 0x0010;
    public static final int CLUSTER_FLAG_AVOID_DISKFULL = 0x0020;

    // lock types and states (§7.2)
    public static final int LOCK_TYPE_NORMAL = 0;
    public static final int LOCK_TYPE_SHARED = 1;
    public static final int LOCK_STATE_UNLOCKED = 1;
    public static final int LOCK_STATE_LOCKED = 2;
    public static final int LOCK_STATE_SHARED = 3;
}
