package io.sheepdog.proto;

/** Result codes and the message texts dog prints for them (docs/protocol.md §8). */
public final class SdResult {
    private SdResult() {}

    public static final int SUCCESS = 0x00;
    public static final int UNKNOWN = 0x01;
    public static final int NO_OBJ = 0x02;
    public static final int EIO = 0x03;
    public static final int VDI_EXIST = 0x04;
    public static final int INVALID_PARMS = 0x05;
    public static final int SYSTEM_ERROR = 0x06;
    public static final int VDI_LOCKED = 0x07;
    public static final int NO_VDI = 0x08;
    public static final int NO_BASE_VDI = 0x09;
    public static final int VDI_READ = 0x0A;
    public static final int VDI_WRITE = 0x0B;
    public static final int BASE_VDI_READ = 0x0C;
    public static final int BASE_VDI_WRITE = 0x0D;
    public static final int NO_TAG = 0x0E;
    public static final int STARTUP = 0x0F;
    public static final int VDI_NOT_LOCKED = 0x10;
    public static final int SHUTDOWN = 0x11;
    public static final int NO_MEM = 0x12;
    public static final int FULL_VDI = 0x13;
    public static final int VER_MISMATCH = 0x14;
    public static final int NO_SPACE = 0x15;
    public static final int WAIT_FOR_FORMAT = 0x16;
    public static final int WAIT_FOR_JOIN = 0x17;
    public static final int JOIN_FAILED = 0x18;
    public static final int HALT = 0x19;
    public static final int READONLY = 0x1A;
    public static final int INODE_INVALIDATED = 0x1D;
    public static final int OLD_NODE_VER = 0x81;
    public static final int NEW_NODE_VER = 0x82;
    public static final int NOT_FORMATTED = 0x83;
    public static final int INVALID_CTIME = 0x84;
    public static final int INVALID_EPOCH = 0x85;
    public static final int NETWORK_ERROR = 0x86;
    public static final int NO_CACHE = 0x87;
    public static final int BUFFER_SMALL = 0x88;
    public static final int FORCE_RECOVER = 0x89;
    public static final int NO_STORE = 0x8A;
    public static final int NO_SUPPORT = 0x8B;
    public static final int NODE_IN_RECOVERY = 0x8C;
    public static final int KILLED = 0x8D;
    public static final int OID_EXIST = 0x8E;
    public static final int AGAIN = 0x8F;
    public static final int STALE_OBJ = 0x90;
    public static final int CLUSTER_ERROR = 0x91;
    public static final int VDI_NOT_EMPTY = 0x92;
    public static final int NOT_FOUND = 0x93;
    public static final int INCOMPLETE = 0x94;
    public static final int COLLECTING_CINFO = 0x95;
    public static final int GATEWAY_MODE = 0x97;
    public static final int INVALID_VNODES_STRATEGY = 0x98;
    public static final int NO_CHECKPOINT_ENTRY = 0x99;
    /** Daemon-internal: a versioned strip write found the strip at another version than the one it was based on. */
    public static final int STRIP_VERSION = 0xA0;
    /** Ours: the request's address may not do this (sheep --allow, --admin-allow). */
    public static final int ACCESS_DENIED = 0xA1;

    private static final String[] MESSAGES = new String[256];
    private static final String[] NAMES = new String[256];
    static {
        m(SUCCESS, "Success");
        m(UNKNOWN, "Unknown error");
        m(NO_OBJ, "No object found");
        m(EIO, "I/O error");
        m(VDI_EXIST, "VDI exists already");
        m(INVALID_PARMS, "Invalid parameters");
        m(SYSTEM_ERROR, "System error");
        m(VDI_LOCKED, "VDI is already locked");
        m(NO_VDI, "No VDI found");
        m(NO_BASE_VDI, "No base VDI found");
        m(VDI_READ, "Failed to read from requested VDI");
        m(VDI_WRITE, "Failed to write to requested VDI");
        m(BASE_VDI_READ, "Failed to read from base VDI");
        m(BASE_VDI_WRITE, "Failed to write to base VDI");
        m(NO_TAG, "Failed to find requested tag");
        m(STARTUP, "System is still booting");
        m(VDI_NOT_LOCKED, "VDI is not locked");
        m(SHUTDOWN, "System is shutting down");
        m(NO_MEM, "Out of memory on server");
        m(FULL_VDI, "Maximum number of VDIs reached");
        m(VER_MISMATCH, "Protocol version mismatch");
        m(NO_SPACE, "Server has no space for new objects");
        m(WAIT_FOR_FORMAT, "Waiting for cluster to be formatted");
        m(WAIT_FOR_JOIN, "Waiting for other nodes to join cluster");
        m(JOIN_FAILED, "Node has failed to join cluster");
        m(HALT, "IO has halted as there are not enough living nodes");
        m(READONLY, "Object is read-only");
        m(INODE_INVALIDATED, "Inode object is invalidated");
        m(OLD_NODE_VER, "Request has an old epoch");
        m(NEW_NODE_VER, "Request has a new epoch");
        m(NOT_FORMATTED, "Cluster has not been formatted");
        m(INVALID_CTIME, "Creation times differ");
        m(INVALID_EPOCH, "Invalid epoch");
        m(NETWORK_ERROR, "Network error between sheep");
        m(NO_CACHE, "No cache object found");
        m(BUFFER_SMALL, "The buffer is too small");
        m(FORCE_RECOVER, "Cluster is running/halted and cannot be force recovered");
        m(NO_STORE, "Targeted backend store is not found");
        m(NO_SUPPORT, "Operation is not supported");
        m(NODE_IN_RECOVERY, "Targeted node is in recovery");
        m(KILLED, "Node is killed");
        m(OID_EXIST, "Object ID exists already");
        m(AGAIN, "Ask to try again");
        m(STALE_OBJ, "Object may be stale");
        m(CLUSTER_ERROR, "Cluster driver error");
        m(GATEWAY_MODE, "Targeted node is gateway mode");
        m(INVALID_VNODES_STRATEGY, "Invalid cluster vnodes strategy");
        m(STRIP_VERSION, "Strip has another version than expected");
        m(ACCESS_DENIED, "Access denied: this address may not do that (see sheep --admin-allow)");
        for (var f : SdResult.class.getFields()) {
            if (f.getType() == int.class) {
                try { NAMES[f.getInt(null)] = f.getName(); } catch (IllegalAccessException e) { throw new AssertionError(e); }
            }
        }
    }

    private static void m(int code, String msg) { MESSAGES[code] = msg; }

    /** The text dog prints for a result; codes without a text print as {@code Invalid error code %x}. */
    public static String message(int code) {
        String s = code >= 0 && code < 256 ? MESSAGES[code] : null;
        return s != null ? s : String.format("Invalid error code %x", code);
    }

    public static String name(int code) {
        String s = code >= 0 && code < 256 ? NAMES[code] : null;
        return s != null ? s : String.format("0x%x", code);
    }
}
