package io.sheepdog.proto;

/** Request flags ({@code sd_req.flags}, docs/protocol.md §4). */
public final class SdFlags {
    private SdFlags() {}
    public static final int CMD_WRITE = 0x0001;
    public static final int CMD_COW = 0x0002;
    public static final int CMD_CACHE = 0x0004;
    public static final int CMD_DIRECT = 0x0008;
    public static final int CMD_PIGGYBACK = 0x0010;
    public static final int CMD_TGT = 0x0020;
    public static final int CMD_FWD = 0x0040;
    public static final int CMD_RECOVERY = 0x0080;
    public static final int CMD_WILDCARD = 0x0100;
    public static final int CMD_CREAT = 0x0100;
    public static final int CMD_EXCL = 0x0200;
    public static final int CMD_DEL = 0x0400;
    /**
     * Daemon-internal, on peer requests for strips of erasure-coded objects: the request and its reply carry strip
     * versions ({@link StripVersion}). Upstream does not use this bit.
     */
    public static final int CMD_VERSIONED = 0x0800;
}
