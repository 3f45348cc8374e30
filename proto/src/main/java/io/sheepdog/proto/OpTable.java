package io.sheepdog.proto;

import static io.sheepdog.proto.Opcodes.*;

/**
 * What each opcode is, one line per opcode: the one place to look (and to change) when an opcode is added. The
 * original keeps the same facts in its table of operation templates (type, "force"); the daemon routes by it
 * ({@code RequestProcessor}), the cluster operations ask it for their work phase, the framing for payload limits and
 * budgets, the access policy for who may send what.
 *
 * <ul>
 *   <li>{@link Kind}: who serves it. GATEWAY: object I/O placed on the ring by the node a client talks to; PEER: a
 *       copy's (or strip's) I/O on the store of the node that holds it; CLUSTER: applied on every node in the one
 *       order of the cluster driver; LOCAL: answered by the node asked.</li>
 *   <li>{@code force}: served while the cluster is not running (waiting for a format or for its nodes), so that
 *       {@code dog} can look at a node in any state.</li>
 *   <li>{@code workPhase}: a cluster operation whose work (what may fail or read the cluster) runs first on the node
 *       that received it, before the result goes to every node.</li>
 *   <li>{@link Sender}: who may send it once access is restricted ({@code sheep --allow}, {@code --admin-allow}).</li>
 *   <li>{@code bigPayload}: may carry object data (up to {@link Proto#MAX_REQUEST_DATA}); the others at most 1 MiB.</li>
 *   <li>{@code betweenSheep}: sent by one sheep to another and served from the receiver's own state, never waiting
 *       for a third node: such requests are admitted against a budget of their own.</li>
 * </ul>
 * An opcode without a line is answered INVALID_PARMS.
 */
public final class OpTable {
    private OpTable() {}

    public enum Kind { GATEWAY, PEER, CLUSTER, LOCAL }

    /** Who may send a request once access is restricted. */
    public enum Sender {
        /** any client let in */
        ANY,
        /** cluster members only (object I/O between sheep, recovery's bookkeeping) */
        MEMBER,
        /** the addresses of {@code --admin-allow} (requests that change or stop the cluster, or destroy data) */
        ADMIN
    }

    /** The facts of one opcode. */
    public record Op(int code, Kind kind, boolean force, boolean workPhase, Sender sender, boolean bigPayload,
                     boolean betweenSheep) {
        public String name() { return Opcodes.name(code); }
    }

    private static final Op[] OPS = new Op[256];

    private static final boolean FORCE = true, WORK = true, BIG = true, SHEEP = true;
    private static final boolean no = false;

    static {
        // object I/O from clients
        op(CREATE_AND_WRITE_OBJ, Kind.GATEWAY, no, no, Sender.ANY, BIG, no);
        op(READ_OBJ, Kind.GATEWAY, no, no, Sender.ANY, no, no);
        op(WRITE_OBJ, Kind.GATEWAY, no, no, Sender.ANY, BIG, no);
        op(REMOVE_OBJ, Kind.GATEWAY, no, no, Sender.ANY, no, no);
        op(DISCARD_OBJ, Kind.LOCAL, no, no, Sender.ANY, no, no);
        // object I/O between sheep
        op(CREATE_AND_WRITE_PEER, Kind.PEER, FORCE, no, Sender.MEMBER, BIG, SHEEP);
        op(READ_PEER, Kind.PEER, FORCE, no, Sender.MEMBER, no, SHEEP);
        op(WRITE_PEER, Kind.PEER, FORCE, no, Sender.MEMBER, BIG, SHEEP);
        op(REMOVE_PEER, Kind.PEER, FORCE, no, Sender.MEMBER, no, SHEEP);
        // VDIs: changed in cluster order, looked up locally
        op(NEW_VDI, Kind.CLUSTER, no, WORK, Sender.ANY, no, no);
        op(DEL_VDI, Kind.CLUSTER, no, WORK, Sender.ADMIN, no, no);
        op(LOCK_VDI, Kind.CLUSTER, no, WORK, Sender.ANY, no, no);
        op(RELEASE_VDI, Kind.CLUSTER, no, no, Sender.ANY, no, no);
        op(GET_VDI_ATTR, Kind.CLUSTER, no, WORK, Sender.ANY, no, no);
        op(ALTER_VDI_COPY, Kind.CLUSTER, no, no, Sender.ADMIN, no, no);
        op(GET_VDI_INFO, Kind.LOCAL, no, no, Sender.ANY, no, no);
        op(READ_VDIS, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(READ_DEL_VDIS, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(FLUSH_VDI, Kind.LOCAL, no, no, Sender.ANY, no, no);
        op(GET_VDI_COPIES, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(GET_VM_LIST, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(HANDOVER_VDI, Kind.LOCAL, no, no, Sender.MEMBER, no, no);
        op(FENCE_VDI, Kind.LOCAL, no, no, Sender.MEMBER, no, no);
        // the cluster
        op(MAKE_FS, Kind.CLUSTER, FORCE, no, Sender.ADMIN, no, no);
        op(SHUTDOWN, Kind.CLUSTER, FORCE, no, Sender.ADMIN, no, no);
        op(FORCE_RECOVER, Kind.CLUSTER, FORCE, WORK, Sender.ADMIN, no, no);
        op(ENABLE_RECOVER, Kind.CLUSTER, no, no, Sender.ADMIN, no, no);
        op(DISABLE_RECOVER, Kind.CLUSTER, no, no, Sender.ADMIN, no, no);
        op(ALTER_CLUSTER_COPY, Kind.CLUSTER, no, no, Sender.ADMIN, no, no);
        op(CLEANUP, Kind.CLUSTER, FORCE, no, Sender.ADMIN, no, no);
        op(REWEIGHT, Kind.CLUSTER, no, no, Sender.ADMIN, no, no);
        op(GET_CLUSTER_DEFAULT, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(GET_NODE_LIST, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(STAT_CLUSTER, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(CLUSTER_INFO, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(GET_EPOCH, Kind.LOCAL, FORCE, no, Sender.ANY, no, SHEEP);
        op(GET_STORE_LIST, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        // recovery
        op(GET_OBJ_LIST, Kind.LOCAL, FORCE, no, Sender.ANY, no, SHEEP);
        op(OIDS_EXIST, Kind.LOCAL, FORCE, no, Sender.ANY, BIG, SHEEP);
        op(GET_HASH, Kind.LOCAL, FORCE, no, Sender.ANY, no, SHEEP);
        op(EXIST, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(REPAIR_REPLICA, Kind.LOCAL, no, no, Sender.ANY, no, no);
        op(STAT_RECOVERY, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(GET_RECOVERY, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(SET_RECOVERY, Kind.LOCAL, FORCE, no, Sender.ADMIN, no, no);
        // this node
        op(STAT_SHEEP, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(STAT, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(KILL_NODE, Kind.LOCAL, FORCE, no, Sender.ADMIN, no, no);
        op(GET_LOGLEVEL, Kind.LOCAL, FORCE, no, Sender.ANY, no, SHEEP);
        op(SET_LOGLEVEL, Kind.LOCAL, FORCE, no, Sender.ADMIN, no, no);
        op(GET_VNODES, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(SET_VNODES, Kind.LOCAL, no, no, Sender.ANY, no, no);
        op(MD_INFO, Kind.LOCAL, FORCE, no, Sender.ANY, no, no);
        op(MD_PLUG, Kind.LOCAL, no, no, Sender.ADMIN, no, no);
        op(MD_UNPLUG, Kind.LOCAL, no, no, Sender.ADMIN, no, no);
        // the original's object cache, gone: accepted and ignored
        op(FLUSH_DEL_CACHE, Kind.LOCAL, FORCE, no, Sender.ADMIN, no, no);
        op(DELETE_CACHE, Kind.LOCAL, no, no, Sender.ANY, no, no);
        // recognised by the framing (sent between sheep upstream) but not served: INVALID_PARMS
        op(FLUSH_PEER, null, no, no, Sender.ANY, no, SHEEP);
        op(DECREF_PEER, null, no, no, Sender.ANY, no, SHEEP);
        // notifications that travel through the cluster driver, never over the port (answered INVALID_PARMS there)
        op(COMPLETE_RECOVERY, null, FORCE, no, Sender.MEMBER, no, no);
        op(NOTIFY_VDI_ADD, null, FORCE, no, Sender.ANY, no, no);
        op(NOTIFY_VDI_DEL, null, FORCE, no, Sender.ANY, no, no);
    }

    private static void op(int code, Kind kind, boolean force, boolean work, Sender sender, boolean big, boolean sheep) {
        if (OPS[code] != null) throw new AssertionError("opcode " + code + " twice");
        OPS[code] = new Op(code, kind, force, work, sender, big, sheep);
    }

    /** The facts of {@code opcode}; null if it is not an opcode this implementation knows. */
    public static Op of(int opcode) {
        return opcode < 0 || opcode >= OPS.length ? null : OPS[opcode];
    }

    /** Served by a node: a kind is set (the others are known only to be refused). */
    public static Kind kindOf(int opcode) {
        Op o = of(opcode);
        return o == null ? null : o.kind();
    }

    public static boolean isForce(int opcode) {
        Op o = of(opcode);
        return o != null && o.force();
    }

    public static boolean hasWorkPhase(int opcode) {
        Op o = of(opcode);
        return o != null && o.workPhase();
    }

    public static Sender senderOf(int opcode) {
        Op o = of(opcode);
        return o == null ? Sender.ANY : o.sender();
    }

    public static boolean isBigPayload(int opcode) {
        Op o = of(opcode);
        return o != null && o.bigPayload();
    }

    public static boolean isBetweenSheep(int opcode) {
        Op o = of(opcode);
        return o != null && o.betweenSheep();
    }
}
