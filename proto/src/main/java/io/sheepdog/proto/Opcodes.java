package io.sheepdog.proto;

/** Opcodes (docs/protocol.md §6). Public ones are below 0x80, internal ones at or above. What each one is: {@link OpTable}. */
public final class Opcodes {
    private Opcodes() {}

    public static final int CREATE_AND_WRITE_OBJ = 0x01;
    public static final int READ_OBJ = 0x02;
    public static final int WRITE_OBJ = 0x03;
    public static final int REMOVE_OBJ = 0x04;
    public static final int DISCARD_OBJ = 0x05;
    public static final int NEW_VDI = 0x11;
    public static final int LOCK_VDI = 0x12;
    public static final int RELEASE_VDI = 0x13;
    public static final int GET_VDI_INFO = 0x14;
    public static final int READ_VDIS = 0x15;
    public static final int FLUSH_VDI = 0x16;
    public static final int DEL_VDI = 0x17;
    public static final int GET_CLUSTER_DEFAULT = 0x18;

    public static final int GET_NODE_LIST = 0x82;
    /** Historical (2009-2010): list of VDIs in use; revived here for {@code dog vm list}. */
    public static final int GET_VM_LIST = 0x83;
    public static final int MAKE_FS = 0x84;
    public static final int SHUTDOWN = 0x85;
    public static final int STAT_SHEEP = 0x86;
    public static final int STAT_CLUSTER = 0x87;
    public static final int GET_VDI_ATTR = 0x89;
    public static final int FORCE_RECOVER = 0x8A;
    public static final int GET_STORE_LIST = 0x90;
    public static final int SNAPSHOT = 0x91;
    public static final int RESTORE = 0x92;
    public static final int GET_SNAP_FILE = 0x93;
    public static final int CLEANUP = 0x94;
    public static final int TRACE_STATUS = 0x95;
    public static final int TRACE_READ_BUF = 0x96;
    public static final int STAT_RECOVERY = 0x97;
    public static final int FLUSH_DEL_CACHE = 0x98;
    public static final int NOTIFY_VDI_DEL = 0x99;
    public static final int KILL_NODE = 0x9A;
    public static final int TRACE_ENABLE = 0x9B;
    public static final int TRACE_DISABLE = 0x9C;
    public static final int GET_OBJ_LIST = 0xA1;
    public static final int GET_EPOCH = 0xA2;
    public static final int CREATE_AND_WRITE_PEER = 0xA3;
    public static final int READ_PEER = 0xA4;
    public static final int WRITE_PEER = 0xA5;
    public static final int REMOVE_PEER = 0xA6;
    public static final int ENABLE_RECOVER = 0xA8;
    public static final int DISABLE_RECOVER = 0xA9;
    public static final int GET_VDI_COPIES = 0xAB;
    public static final int COMPLETE_RECOVERY = 0xAC;
    public static final int FLUSH_NODES = 0xAD;
    public static final int FLUSH_PEER = 0xAE;
    public static final int NOTIFY_VDI_ADD = 0xAF;
    public static final int DELETE_CACHE = 0xB0;
    public static final int MD_INFO = 0xB1;
    public static final int MD_PLUG = 0xB2;
    public static final int MD_UNPLUG = 0xB3;
    public static final int GET_HASH = 0xB4;
    public static final int REWEIGHT = 0xB5;
    public static final int GET_CACHE_INFO = 0xB6;
    public static final int CACHE_PURGE = 0xB7;
    public static final int STAT = 0xB8;
    public static final int GET_LOGLEVEL = 0xB9;
    public static final int SET_LOGLEVEL = 0xBA;
    public static final int NFS_CREATE = 0xBB;
    public static final int NFS_DELETE = 0xBC;
    public static final int EXIST = 0xBD;
    public static final int CLUSTER_INFO = 0xBE;
    public static final int ALTER_CLUSTER_COPY = 0xBF;
    public static final int ALTER_VDI_COPY = 0xC0;
    public static final int DECREF_OBJ = 0xC1;
    public static final int DECREF_PEER = 0xC2;
    public static final int PREVENT_INODE_UPDATE = 0xC3;
    public static final int ALLOW_INODE_UPDATE = 0xC4;
    public static final int REPAIR_REPLICA = 0xC5;
    public static final int OIDS_EXIST = 0xC6;
    public static final int VDI_STATE_CHECKPOINT_CTL = 0xC7;
    public static final int INODE_COHERENCE = 0xC8;
    public static final int READ_DEL_VDIS = 0xC9;
    public static final int GET_RECOVERY = 0xCA;
    public static final int SET_RECOVERY = 0xCB;
    public static final int SET_VNODES = 0xCC;
    public static final int GET_VNODES = 0xCD;
    /**
     * This implementation's own (not in the original): asks the node whose NBD client holds a VDI's lock to hand it
     * over once that client is quiet, fencing it ({@code obj.oid} = the VID). SUCCESS or VDI_LOCKED.
     */
    public static final int HANDOVER_VDI = 0xD0;
    /**
     * This implementation's own: pauses ({@code obj.offset} 1) or resumes (0) the writes of a VDI ({@code obj.oid} =
     * the VID) through the receiving node, sent to every member by the node that makes a snapshot of it. A pause
     * answers SUCCESS once the writes in flight there are done, SYSTEM_ERROR if they are not in time.
     */
    public static final int FENCE_VDI = 0xD1;

    public static boolean isInternal(int opcode) { return opcode >= 0x80; }

    /** The object I/O one sheep sends another for the copies (or strips) the other holds. */
    public static boolean isPeerIo(int opcode) {
        return OpTable.kindOf(opcode) == OpTable.Kind.PEER;
    }

    private static final String[] NAMES = new String[256];
    static {
        for (var f : Opcodes.class.getFields()) {
            if (f.getType() == int.class) {
                try { NAMES[f.getInt(null)] = f.getName(); } catch (IllegalAccessException e) { throw new AssertionError(e); }
            }
        }
    }

    public static String name(int opcode) {
        String n = opcode >= 0 && opcode < 256 ? NAMES[opcode] : null;
        return n != null ? n : String.format("0x%02x", opcode);
    }
}
