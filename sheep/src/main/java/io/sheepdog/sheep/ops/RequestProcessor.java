package io.sheepdog.sheep.ops;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.sheep.Sheep;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.store.ObjectStore;
import io.sheepdog.sheep.store.StoreKey;
import io.sheepdog.sheep.vdi.VdiOps;
import io.sheepdog.sheep.vdi.VdiState;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The request-processing chain of a sheep, whichever front end a request came from: check the protocol version,
 * gate on the cluster status, then hand the request to the class of handler its opcode belongs to: gateway (object
 * I/O placed on the ring), peer (a replica operation on this store), cluster (totally ordered through the cluster
 * driver) or local (answered here).
 */
public final class RequestProcessor {
    private static final Logger LOG = LoggerFactory.getLogger(RequestProcessor.class);
    private static final io.sheepdog.sheep.log.RateLimitedLog DENIED = new io.sheepdog.sheep.log.RateLimitedLog(LOG);
    /** In GET_OBJ_LIST's WILDCARD reply, the bit that marks a stale copy (the low 32 bits hold its epoch). */
    public static final long STALE_MARK = 1L << 32;

    private final Sheep sheep;
    private final NodeState state;
    private final IoStats stats = new IoStats();

    public RequestProcessor(Sheep sheep) {
        this.sheep = sheep;
        this.state = sheep.state();
    }

    /** Processes one request to completion (blocking; call on a virtual thread). Never throws. */
    public Reply process(Request r) {
        SdRequest h = r.hdr();
        try {
            Reply rep = dispatch(r);
            rep.header().opcode(h.opcode()).id(h.id());
            if (rep.header().epoch() == 0) rep.header().epoch(state.epoch());
            return rep;
        } catch (SdError e) {
            return fail(h, e.result());
        } catch (RuntimeException e) {
            LOG.error("unexpected failure processing {}", h, e);
            return fail(h, SdResult.SYSTEM_ERROR);
        }
    }

    private Reply fail(SdRequest h, int result) {
        return new Reply(SdResponse.replyTo(h, result).epoch(state.epoch()), Request.NO_DATA);
    }

    private Reply dispatch(Request r) throws SdError {
        SdRequest h = r.hdr();
        int op = h.opcode();
        if (Opcodes.isInternal(op)) {
            if (h.protoVer() != Proto.SHEEP_PROTO_VER) throw new SdError(SdResult.VER_MISMATCH);
        } else if (h.protoVer() > Proto.PROTO_VER) {
            throw new SdError(SdResult.VER_MISMATCH);
        }
        if (r.client() != ClientInfo.INTERNAL) {
            String refused = sheep.access().refusal(op, r.client().addr());
            if (refused != null) {
                DENIED.warn("access", "refused {} from {}: {}", Opcodes.name(op), r.client().display(), refused);
                throw new SdError(SdResult.ACCESS_DENIED);
            }
        }
        if (Opcodes.isPeerIo(op)) {
            return counted(stats.peer, op, r, () -> sheep.peer().handle(r));
        }
        gate(op);
        switch (op) {
            case Opcodes.CREATE_AND_WRITE_OBJ, Opcodes.READ_OBJ, Opcodes.WRITE_OBJ, Opcodes.REMOVE_OBJ -> {
                return counted(stats.gateway, op, r, () -> sheep.gateway().handle(r));
            }
            case Opcodes.NEW_VDI, Opcodes.DEL_VDI, Opcodes.LOCK_VDI, Opcodes.GET_VDI_ATTR, Opcodes.MAKE_FS,
                 Opcodes.SHUTDOWN, Opcodes.FORCE_RECOVER, Opcodes.ENABLE_RECOVER, Opcodes.DISABLE_RECOVER,
                 Opcodes.ALTER_CLUSTER_COPY, Opcodes.ALTER_VDI_COPY, Opcodes.CLEANUP, Opcodes.REWEIGHT -> {
                return sheep.clusterOps().execute(r); // (re)formatting a running cluster is allowed: dog asks first
            }
            case Opcodes.RELEASE_VDI -> {
                // only the VID matters; a release by anyone unlocks (dog vdi lock unlock), and it always succeeds
                return sheep.clusterOps().execute(new Request(h.copy().vdiType(Proto.LOCK_TYPE_NORMAL), Request.NO_DATA, r.client()));
            }
            default -> {
                return local(r);
            }
        }
    }

    /** Serves an object operation with {@code handler}, counted in {@code c}. */
    private static Reply counted(IoStats.Counters c, int op, Request r, Supplier<Reply> handler) {
        IoStats.Kind kind = switch (op) {
            case Opcodes.READ_OBJ, Opcodes.READ_PEER -> IoStats.Kind.READ;
            case Opcodes.REMOVE_OBJ, Opcodes.REMOVE_PEER -> IoStats.Kind.REMOVE;
            default -> IoStats.Kind.WRITE;
        };
        c.begin(kind, r.data().length);
        int sent = 0;
        try {
            Reply rep = handler.get();
            sent = rep.data().length;
            return rep;
        } finally {
            c.end(sent);
        }
    }

    private static boolean isForce(int op) {
        return switch (op) {
            case Opcodes.READ_VDIS, Opcodes.READ_DEL_VDIS, Opcodes.GET_CLUSTER_DEFAULT, Opcodes.GET_NODE_LIST, Opcodes.MAKE_FS,
                 Opcodes.SHUTDOWN, Opcodes.STAT_CLUSTER, Opcodes.FORCE_RECOVER, Opcodes.GET_STORE_LIST, Opcodes.CLEANUP,
                 Opcodes.KILL_NODE, Opcodes.GET_VDI_COPIES, Opcodes.COMPLETE_RECOVERY, Opcodes.NOTIFY_VDI_ADD,
                 Opcodes.NOTIFY_VDI_DEL, Opcodes.GET_LOGLEVEL, Opcodes.SET_LOGLEVEL, Opcodes.EXIST, Opcodes.CLUSTER_INFO,
                 Opcodes.OIDS_EXIST, Opcodes.GET_RECOVERY, Opcodes.SET_RECOVERY, Opcodes.STAT_SHEEP, Opcodes.GET_EPOCH,
                 Opcodes.GET_OBJ_LIST, Opcodes.STAT_RECOVERY, Opcodes.STAT, Opcodes.GET_VNODES, Opcodes.MD_INFO,
                 Opcodes.GET_HASH, Opcodes.GET_VM_LIST, Opcodes.FLUSH_DEL_CACHE -> true;
            default -> false;
        };
    }

    private void gate(int op) throws SdError {
        int st = state.status();
        if (st == Proto.STATUS_OK) return;
        if (isForce(op)) return;
        if (st == Proto.STATUS_SHUTDOWN) throw new SdError(SdResult.SHUTDOWN);
        if (st == Proto.STATUS_KILLED) throw new SdError(SdResult.KILLED);
        throw new SdError(state.formatted() ? SdResult.WAIT_FOR_JOIN : SdResult.WAIT_FOR_FORMAT);
    }

    // ------------------------------------------------------------------ local operations

    private Reply local(Request r) throws SdError {
        SdRequest h = r.hdr();
        SdResponse rsp = SdResponse.replyTo(h, SdResult.SUCCESS);
        byte[] out = Request.NO_DATA;
        long want = h.hasFlag(SdFlags.CMD_WRITE) ? 0 : h.dataLength();
        try {
            switch (h.opcode()) {
                case Opcodes.READ_VDIS, Opcodes.READ_DEL_VDIS -> {
                    if (h.dataLength() != Proto.VDI_BITMAP_BYTES) throw new SdError(SdResult.INVALID_PARMS, "bitmap buffer must be 2 MiB");
                    out = sheep.vdis().bitmap(h.opcode() == Opcodes.READ_DEL_VDIS);
                }
                case Opcodes.FLUSH_VDI -> throw new SdError(SdResult.INVALID_PARMS); // obsolete: QEMU then goes DIRECT
                case Opcodes.GET_CLUSTER_DEFAULT -> rsp.defaultNrCopies(state.copies == 0 ? Proto.DEFAULT_COPIES : state.copies)
                        .defaultCopyPolicy(state.copyPolicy).defaultBlockSizeShift(state.blockSizeShift);
                case Opcodes.GET_VDI_INFO -> {
                    VdiOps.Lookup l = ClusterOps.lookupFromPayload(sheep.vdiOps(), h, r.data());
                    VdiState s = sheep.vdis().state(l.vid());
                    rsp.vdiVid(l.vid()).vdiCopies(s != null && s.nrCopies != 0 ? s.nrCopies : l.inode().nrCopies)
                            .vdiBlockSizeShift(l.inode().blockSizeShift);
                }
                case Opcodes.DISCARD_OBJ -> discard(h.objOid());
                case Opcodes.GET_NODE_LIST -> {
                    List<SdNode> nodes = new ArrayList<>(state.ringVnodes(state.view().members()));
                    nodes.sort(null);
                    rsp.nodeNrNodes(nodes.size());
                    out = SdNode.encodeAll(nodes);
                }
                case Opcodes.STAT_SHEEP -> rsp.nodeStoreSize(sheep.store().usedBytes() + sheep.store().freeBytes())
                        .nodeStoreFree(sheep.store().freeBytes());
                case Opcodes.STAT_CLUSTER -> out = statCluster(h, rsp);
                case Opcodes.GET_STORE_LIST -> out = "tree plain ".getBytes();
                case Opcodes.STAT_RECOVERY -> out = sheep.recovery().encodeState();
                case Opcodes.KILL_NODE -> sheep.killSoon();
                case Opcodes.GET_OBJ_LIST -> {
                    // plain: u64 oids of live objects (an erasure-coded object once, whatever strips are here).
                    // With WILDCARD (our recovery): {u64 store key, u64 kept} pairs, stale copies included, so a
                    // recovering node also finds objects only a stale area still has, and which strip each is. kept
                    // is 0 for a live copy, else STALE_MARK | the epoch the stale copy was kept at (how recent it is).
                    boolean withStale = h.hasFlag(SdFlags.CMD_WILDCARD);
                    List<Long> oids = sheep.store().list();
                    if (!withStale) oids = oids.stream().map(StoreKey::oid).distinct().toList();
                    var stale = withStale ? sheep.store().listStaleCopies() : List.<ObjectStore.StaleCopy>of();
                    int entry = withStale ? 16 : 8;
                    long need = (long) (oids.size() + stale.size()) * entry;
                    if (need > want) throw new SdError(SdResult.BUFFER_SMALL);
                    ByteBuffer b = ByteBuffer.allocate((int) need).order(ByteOrder.LITTLE_ENDIAN);
                    for (long o : oids) {
                        b.putLong(o);
                        if (withStale) b.putLong(0);
                    }
                    for (var o : stale) b.putLong(o.key()).putLong(STALE_MARK | (o.epoch() & 0xFFFFFFFFL));
                    out = b.array();
                }
                case Opcodes.GET_EPOCH -> {
                    byte[] raw = sheep.epochLog().readRaw(h.objTgtEpoch());
                    if (raw == null) throw new SdError(SdResult.NO_TAG);
                    if (raw.length > want) throw new SdError(SdResult.BUFFER_SMALL);
                    out = raw;
                }
                case Opcodes.GET_VDI_COPIES -> {
                    out = sheep.vdis().encodeStates();
                    if (out.length > want) throw new SdError(SdResult.BUFFER_SMALL);
                }
                case Opcodes.GET_HASH -> {
                    long oid = h.objCopyPolicy() != 0 ? keyOfPeer(h) : localKey(h.objOid());
                    if (!sheep.store().exists(oid)) throw new SdError(SdResult.NO_OBJ);
                    rsp.hashDigest(sheep.store().sha1(oid, sheep.gateway().sizes().of(oid)));
                }
                case Opcodes.EXIST -> {
                    if (!sheep.store().exists(localKey(h.objOid()))) rsp.result(SdResult.NO_OBJ);
                }
                case Opcodes.STAT -> out = stats.encode();
                case Opcodes.GET_LOGLEVEL -> out = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(sheep.logLevel()).array();
                case Opcodes.SET_LOGLEVEL -> {
                    if (r.data().length < 4) throw new SdError(SdResult.INVALID_PARMS);
                    int lvl = ByteBuffer.wrap(r.data()).order(ByteOrder.LITTLE_ENDIAN).getInt();
                    if (lvl < 0 || lvl > 7) throw new SdError(SdResult.INVALID_PARMS);
                    sheep.setLogLevel(lvl);
                }
                case Opcodes.CLUSTER_INFO -> {
                    ClusterInfo c = state.toClusterInfo();
                    out = c.encode(true);
                    if (want < out.length) out = java.util.Arrays.copyOf(out, (int) want);
                }
                case Opcodes.OIDS_EXIST -> {
                    ByteBuffer in = ByteBuffer.wrap(r.data()).order(ByteOrder.LITTLE_ENDIAN);
                    ByteBuffer miss = ByteBuffer.allocate(r.data().length).order(ByteOrder.LITTLE_ENDIAN);
                    while (in.remaining() >= 8) {
                        long oid = in.getLong();
                        if (!sheep.store().exists(localKey(oid))) miss.putLong(oid);
                    }
                    out = java.util.Arrays.copyOf(miss.array(), miss.position());
                    if (out.length > 0) rsp.result(SdResult.NO_OBJ);
                }
                case Opcodes.REPAIR_REPLICA -> repair(h);
                case Opcodes.GET_RECOVERY -> out = sheep.recovery().encodeThrottle();
                case Opcodes.SET_RECOVERY -> sheep.recovery().decodeThrottle(r.data());
                case Opcodes.SET_VNODES -> {
                    if (sheep.options().gateway()) throw new SdError(SdResult.GATEWAY_MODE);
                    // with auto vnodes a node's vnodes follow its space: only fixed ones (sheep -V) are set by hand
                    if (state.autoVnodes()) throw new SdError(SdResult.INVALID_VNODES_STRATEGY);
                    if (r.data().length < 4) throw new SdError(SdResult.INVALID_PARMS);
                    int vn = ByteBuffer.wrap(r.data()).order(ByteOrder.LITTLE_ENDIAN).getInt(0);
                    if (vn < 1 || vn > 65535) throw new SdError(SdResult.INVALID_PARMS, "vnodes " + vn);
                    sheep.driver().updateNode(state.self().withVnodes(vn)); // every node: a new epoch, objects move
                }
                case Opcodes.GET_VNODES -> {
                    int vn = 0;
                    for (SdNode n : state.view().epochNodes()) if (n.nid().equals(state.self().nid())) vn = n.nrVnodes();
                    out = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(vn).array();
                }
                case Opcodes.MD_INFO -> out = mdInfo(h);
                case Opcodes.MD_PLUG, Opcodes.MD_UNPLUG -> mdChange(h.opcode() == Opcodes.MD_PLUG, r.data());
                case Opcodes.GET_VM_LIST -> out = vmList(want);
                case Opcodes.HANDOVER_VDI -> rsp.result(sheep.writerLocks().handover((int) h.objOid()));
                case Opcodes.FLUSH_DEL_CACHE, Opcodes.DELETE_CACHE -> { }
                default -> throw new SdError(SdResult.INVALID_PARMS, "invalid opcode " + Opcodes.name(h.opcode()));
            }
        } catch (IOException e) {
            LOG.error("{} failed: {}", h, e.toString());
            throw new SdError(SdResult.EIO);
        }
        if (!h.hasFlag(SdFlags.CMD_WRITE) && out.length > h.dataLength()) {
            throw new SdError(SdResult.BUFFER_SMALL);
        }
        rsp.dataLength(out.length).epoch(state.epoch());
        return new Reply(rsp, out);
    }

    /** DISCARD_OBJ (QEMU 2.x): zero the inode entry of a data object; the gateway frees what nobody reads. */
    private void discard(long oid) throws SdError {
        if (!Oids.isData(oid)) throw new SdError(SdResult.INVALID_PARMS);
        int vid = Oids.vid(oid);
        long idx = Oids.index(oid);
        SdRequest w = new SdRequest().opcode(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE).objOid(Oids.inodeOid(vid))
                .objOffset(Inode.dataVdiIdOffset(idx)).dataLength(4);
        sheep.gateway().handle(Request.internal(w, new byte[4]));
    }

    private byte[] statCluster(SdRequest h, SdResponse rsp) throws IOException, SdError {
        int st = state.status();
        if (st == Proto.STATUS_WAIT) rsp.result(state.formatted() ? SdResult.WAIT_FOR_JOIN : SdResult.WAIT_FOR_FORMAT);
        else if (st == Proto.STATUS_SHUTDOWN) rsp.result(SdResult.SHUTDOWN);
        else if (state.driverUnhealthy) rsp.result(SdResult.CLUSTER_ERROR); // dog: "Cluster status: Cluster driver error"
        int nodesNr = Math.max(0, h.clusterNodesNr());
        int recSize = EpochRecord.recordSize(nodesNr);
        int max = (int) (h.dataLength() / recSize);
        List<EpochRecord> recs = sheep.membership().epochRecords(max);
        ByteBuffer b = ByteBuffer.allocate(recs.size() * recSize).order(ByteOrder.LITTLE_ENDIAN);
        boolean first = true;
        for (EpochRecord r : recs) {
            if (r.nodes.size() > nodesNr && nodesNr > 0) {
                rsp.result(SdResult.BUFFER_SMALL);
                return Request.NO_DATA;
            }
            if (r.nodes.size() > nodesNr) r.nodes = List.of(); // dog's first probe (nodes_nr 0) only wants the head
            if (first) {
                r.ctime = state.ctime;
                r.disableRecovery = state.disableRecovery;
                r.nrCopies = state.copies;
                r.copyPolicy = state.copyPolicy;
                r.flags = state.flags;
                r.drvName = state.defaultStore;
                first = false;
            }
            r.nodes = state.ringVnodes(r.nodes);
            r.encode(b, nodesNr);
        }
        return b.array();
    }

    /**
     * What this node stores for {@code oid}: the oid itself, or for an erasure-coded object the strip of this node's
     * position in its placement (an impossible key, absent from every store, if it has none).
     */
    private long localKey(long oid) {
        ErasureCode ec = sheep.gateway().sizes().codeOf(oid);
        if (ec == null) return oid;
        int position = state.view().ring().position(oid, ec.totalStrips(), state.self().nid());
        return StoreKey.strip(oid, position >= 0 ? position : 30);
    }

    private static long keyOfPeer(SdRequest h) throws SdError {
        try {
            return io.sheepdog.sheep.gateway.PeerService.keyOf(h);
        } catch (IllegalArgumentException e) {
            throw new SdError(SdResult.INVALID_PARMS, e.getMessage());
        }
    }

    private void repair(SdRequest h) throws SdError, IOException {
        long oid = h.forwOid();
        NodeId from = new NodeId(h.forwAddr(), h.forwPort());
        long size = sheep.gateway().sizes().of(oid);
        SdRequest read = new SdRequest().opcode(Opcodes.READ_PEER).protoVer(Proto.SHEEP_PROTO_VER).epoch(state.epoch())
                .objOid(oid).dataLength(size).flags(SdFlags.CMD_RECOVERY);
        Reply rep = sheep.gateway().send(new SdNode(from, 0, 0, 0), read, null);
        if (rep.result() != SdResult.SUCCESS) throw new SdError(rep.result());
        sheep.store().remove(oid);
        sheep.store().create(oid, size, null, 0, rep.data());
    }

    /** MD_INFO: {@code sd_md_info}, 64 x {i32 idx, u64 free, u64 used, char path[4096]} then i32 nr (PROTOCOL.md §11.6). */
    private byte[] mdInfo(SdRequest h) {
        ByteBuffer b = ByteBuffer.allocate(MD_INFO_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        var disks = sheep.disks().info();
        int nr = Math.min(disks.size(), MD_MAX_DISKS);
        for (int i = 0; i < nr; i++) {
            var d = disks.get(i);
            int at = i * MD_ENTRY_BYTES;
            b.putInt(at, d.index());
            b.putLong(at + 8, d.free());
            b.putLong(at + 16, d.used());
            Strings.write(b, at + 24, 4096, d.path().toString());
        }
        b.putInt(MD_MAX_DISKS * MD_ENTRY_BYTES, nr);
        return b.array();
    }

    private static final int MD_MAX_DISKS = 64;
    private static final int MD_ENTRY_BYTES = 4120;
    private static final int MD_INFO_BYTES = MD_MAX_DISKS * MD_ENTRY_BYTES + 8;

    /** MD_PLUG / MD_UNPLUG: comma-separated absolute paths (NUL-terminated). */
    private void mdChange(boolean plug, byte[] data) throws SdError, IOException {
        if (sheep.options().gateway()) throw new SdError(SdResult.GATEWAY_MODE);
        int end = 0;
        while (end < data.length && data[end] != 0) end++;
        String spec = new String(data, 0, end, java.nio.charset.StandardCharsets.UTF_8);
        List<java.nio.file.Path> paths = new ArrayList<>();
        for (String p : spec.split(",")) {
            if (p.isBlank()) continue;
            java.nio.file.Path path = java.nio.file.Path.of(p.trim());
            if (!path.isAbsolute()) throw new SdError(SdResult.INVALID_PARMS, "disk path " + p + " is not absolute");
            paths.add(path.normalize());
        }
        if (paths.isEmpty()) throw new SdError(SdResult.INVALID_PARMS, "no disk named");
        if (paths.size() + sheep.disks().paths().size() > MD_MAX_DISKS && plug) {
            throw new SdError(SdResult.INVALID_PARMS, "more than " + MD_MAX_DISKS + " disks");
        }
        try {
            if (plug) sheep.disks().plug(paths);
            else sheep.disks().unplug(paths);
            sheep.reweighLater(); // the node's weight follows its space
        } catch (IOException e) {
            LOG.error("md {} {} failed: {}", plug ? "plug" : "unplug", paths, e.getMessage());
            throw new SdError(SdResult.INVALID_PARMS, e.getMessage());
        }
    }

    /** GET_VM_LIST: n x {name[256], host_addr[16], u16 host_port, pad[6]} for every locked VDI. */
    /**
     * GET_VM_LIST: an entry per VDI lock holder (cluster-wide), then one per NBD writer of this node that waits for a
     * VDI's lock, marked by byte 274 = 1 (a padding byte the original's entry leaves 0).
     */
    private byte[] vmList(long want) throws SdError {
        List<VdiState> locked = new ArrayList<>();
        for (VdiState s : sheep.vdis().all()) if (s.locked() && !s.deleted) locked.add(s);
        var waiting = sheep.writerLocks().waiting();
        ByteBuffer b = ByteBuffer.allocate((locked.size() + waiting.size()) * 280).order(ByteOrder.LITTLE_ENDIAN);
        for (var w : waiting) vmEntry(b, w.vid(), w.client().addr(), w.client().port(), true);
        for (VdiState s : locked) vmEntry(b, s.vid, s.lockClientAddr, s.lockClientPort, false);
        if (b.capacity() > want) throw new SdError(SdResult.BUFFER_SMALL);
        return b.array();
    }

    /** One 280-byte GET_VM_LIST entry: the VDI's name, the client's address and port, and whether it waits. */
    private void vmEntry(ByteBuffer b, int vid, byte[] addr, int port, boolean waiting) {
        int base = b.position();
        String name;
        try {
            name = sheep.vdiOps().readHeader(vid).name;
        } catch (SdError e) {
            name = "";
        }
        Strings.write(b, base, 256, name);
        b.put(base + 256, addr, 0, 16);
        b.putShort(base + 272, (short) port);
        if (waiting) b.put(base + 274, (byte) 1);
        b.position(base + 280);
    }
}
