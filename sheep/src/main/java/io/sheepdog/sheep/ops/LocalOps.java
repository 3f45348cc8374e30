package io.sheepdog.sheep.ops;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.OpTable;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.sheep.cluster.ClusterDriver;
import io.sheepdog.sheep.gateway.Gateway;
import io.sheepdog.sheep.gateway.PeerService;
import io.sheepdog.sheep.nbd.WriterLocks;
import io.sheepdog.sheep.node.EpochLog;
import io.sheepdog.sheep.node.Membership;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.recovery.RecoveryManager;
import io.sheepdog.sheep.store.MultiDiskStore;
import io.sheepdog.sheep.store.ObjectStore;
import io.sheepdog.sheep.store.StoreKey;
import io.sheepdog.sheep.vdi.VdiOps;
import io.sheepdog.sheep.vdi.VdiRegistry;
import io.sheepdog.sheep.vdi.VdiState;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The operations a node answers by itself ({@link io.sheepdog.proto.OpTable.Kind#LOCAL}): what it knows of the
 * cluster and its VDIs, its own store, disks, statistics and settings.
 */
public final class LocalOps {
    private static final Logger LOG = LoggerFactory.getLogger(LocalOps.class);
    /** In GET_OBJ_LIST's WILDCARD reply, the bit that marks a stale copy (the low 32 bits hold its epoch). */
    static final long STALE_MARK = 1L << 32;

    /** What only the node as a whole can do, or knows. */
    public interface Node {
        boolean isGateway();
        int logLevel();
        void setLogLevel(int level);
        /** Leaves the cluster and exits (KILL_NODE). */
        void killSoon();
        /** The node's weight follows its space (after its disks changed). */
        void reweighLater();
    }

    private final Node node;
    private final NodeState state;
    private final VdiRegistry vdis;
    private final VdiOps vdiOps;
    private final MultiDiskStore store;
    private final Gateway gateway;
    private final RecoveryManager recovery;
    private final EpochLog epochLog;
    private final Membership membership;
    private final ClusterDriver driver;
    private final WriterLocks writerLocks;
    private final IoStats stats;

    public LocalOps(Node node, NodeState state, VdiRegistry vdis, VdiOps vdiOps, MultiDiskStore store, Gateway gateway,
                    RecoveryManager recovery, EpochLog epochLog, Membership membership, ClusterDriver driver,
                    WriterLocks writerLocks, IoStats stats) {
        this.node = node;
        this.state = state;
        this.vdis = vdis;
        this.vdiOps = vdiOps;
        this.store = store;
        this.gateway = gateway;
        this.recovery = recovery;
        this.epochLog = epochLog;
        this.membership = membership;
        this.driver = driver;
        this.writerLocks = writerLocks;
        this.stats = stats;
    }

    /** Serves a LOCAL opcode of {@link io.sheepdog.proto.OpTable}; any other is INVALID_PARMS. */
    Reply serve(Request r) throws SdError {
        SdRequest h = r.hdr();
        SdResponse rsp = SdResponse.replyTo(h, SdResult.SUCCESS);
        byte[] out = Request.NO_DATA;
        long want = h.hasFlag(SdFlags.CMD_WRITE) ? 0 : h.dataLength();
        try {
            switch (h.opcode()) {
                case Opcodes.READ_VDIS, Opcodes.READ_DEL_VDIS -> {
                    if (h.dataLength() != Proto.VDI_BITMAP_BYTES) throw new SdError(SdResult.INVALID_PARMS, "bitmap buffer must be 2 MiB");
                    out = vdis.bitmap(h.opcode() == Opcodes.READ_DEL_VDIS);
                }
                case Opcodes.FLUSH_VDI -> throw new SdError(SdResult.INVALID_PARMS); // obsolete: QEMU then goes DIRECT
                case Opcodes.GET_CLUSTER_DEFAULT -> rsp.defaultNrCopies(state.settings().defaultCopies())
                        .defaultCopyPolicy(state.settings().copyPolicy())
                        .defaultBlockSizeShift(state.settings().blockSizeShift());
                case Opcodes.GET_VDI_INFO -> {
                    VdiOps.Lookup l = ClusterOps.lookupFromPayload(vdiOps, h, r.data());
                    VdiState s = vdis.state(l.vid());
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
                case Opcodes.STAT_SHEEP -> rsp.nodeStoreSize(store.usedBytes() + store.freeBytes())
                        .nodeStoreFree(store.freeBytes());
                case Opcodes.STAT_CLUSTER -> out = statCluster(h, rsp);
                case Opcodes.GET_STORE_LIST -> out = "tree plain ".getBytes();
                case Opcodes.STAT_RECOVERY -> out = recovery.encodeState();
                case Opcodes.KILL_NODE -> node.killSoon();
                case Opcodes.GET_OBJ_LIST -> {
                    // plain: u64 oids of live objects (an erasure-coded object once, whatever strips are here).
                    // With WILDCARD (our recovery): {u64 store key, u64 kept} pairs, stale copies included, so a
                    // recovering node also finds objects only a stale area still has, and which strip each is. kept
                    // is 0 for a live copy, else STALE_MARK | the epoch the stale copy was kept at (how recent it is).
                    boolean withStale = h.hasFlag(SdFlags.CMD_WILDCARD);
                    List<Long> oids = store.list();
                    if (!withStale) oids = oids.stream().map(StoreKey::oid).distinct().toList();
                    var stale = withStale ? store.listStaleCopies() : List.<ObjectStore.StaleCopy>of();
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
                    byte[] raw = epochLog.readRaw(h.objTgtEpoch());
                    if (raw == null) throw new SdError(SdResult.NO_TAG);
                    if (raw.length > want) throw new SdError(SdResult.BUFFER_SMALL);
                    out = raw;
                }
                case Opcodes.GET_VDI_COPIES -> {
                    out = vdis.encodeStates();
                    if (out.length > want) throw new SdError(SdResult.BUFFER_SMALL);
                }
                case Opcodes.GET_HASH -> {
                    long oid = h.objCopyPolicy() != 0 ? keyOfPeer(h) : localKey(h.objOid());
                    if (!store.exists(oid)) throw new SdError(SdResult.NO_OBJ);
                    rsp.hashDigest(store.sha1(oid, gateway.sizes().of(oid)));
                }
                case Opcodes.EXIST -> {
                    if (!store.exists(localKey(h.objOid()))) rsp.result(SdResult.NO_OBJ);
                }
                case Opcodes.STAT -> out = stats.encode((int) Math.min(want, Integer.MAX_VALUE));
                case Opcodes.GET_LOGLEVEL -> out = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(node.logLevel()).array();
                case Opcodes.SET_LOGLEVEL -> {
                    if (r.data().length < 4) throw new SdError(SdResult.INVALID_PARMS);
                    int lvl = ByteBuffer.wrap(r.data()).order(ByteOrder.LITTLE_ENDIAN).getInt();
                    if (lvl < 0 || lvl > 7) throw new SdError(SdResult.INVALID_PARMS);
                    node.setLogLevel(lvl);
                }
                case Opcodes.CLUSTER_INFO -> {
                    ClusterInfo c = state.toClusterInfo();
                    out = c.encode(true);
                    if (want < out.length) out = Arrays.copyOf(out, (int) want);
                }
                case Opcodes.OIDS_EXIST -> {
                    ByteBuffer in = ByteBuffer.wrap(r.data()).order(ByteOrder.LITTLE_ENDIAN);
                    ByteBuffer miss = ByteBuffer.allocate(r.data().length).order(ByteOrder.LITTLE_ENDIAN);
                    while (in.remaining() >= 8) {
                        long oid = in.getLong();
                        if (!store.exists(localKey(oid))) miss.putLong(oid);
                    }
                    out = Arrays.copyOf(miss.array(), miss.position());
                    if (out.length > 0) rsp.result(SdResult.NO_OBJ);
                }
                case Opcodes.REPAIR_REPLICA -> repair(h);
                case Opcodes.GET_RECOVERY -> out = recovery.encodeThrottle();
                case Opcodes.SET_RECOVERY -> recovery.decodeThrottle(r.data());
                case Opcodes.SET_VNODES -> {
                    if (node.isGateway()) throw new SdError(SdResult.GATEWAY_MODE);
                    // with auto vnodes a node's vnodes follow its space: only fixed ones (sheep -V) are set by hand
                    if (state.autoVnodes()) throw new SdError(SdResult.INVALID_VNODES_STRATEGY);
                    if (r.data().length < 4) throw new SdError(SdResult.INVALID_PARMS);
                    int vn = ByteBuffer.wrap(r.data()).order(ByteOrder.LITTLE_ENDIAN).getInt(0);
                    if (vn < 1 || vn > 65535) throw new SdError(SdResult.INVALID_PARMS, "vnodes " + vn);
                    driver.updateNode(state.self().withVnodes(vn)); // every node: a new epoch, objects move
                }
                case Opcodes.GET_VNODES -> {
                    int vn = 0;
                    for (SdNode n : state.view().epochNodes()) if (n.nid().equals(state.self().nid())) vn = n.nrVnodes();
                    out = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(vn).array();
                }
                case Opcodes.MD_INFO -> out = mdInfo(h);
                case Opcodes.MD_PLUG, Opcodes.MD_UNPLUG -> mdChange(h.opcode() == Opcodes.MD_PLUG, r.data());
                case Opcodes.GET_VM_LIST -> out = vmList(want);
                case Opcodes.HANDOVER_VDI -> rsp.result(writerLocks.handover((int) h.objOid()));
                case Opcodes.FENCE_VDI -> rsp.result(gateway.fenceHere((int) h.objOid(), h.objOffset() != 0));
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
        gateway.handle(Request.internal(w, new byte[4]));
    }

    private byte[] statCluster(SdRequest h, SdResponse rsp) throws IOException, SdError {
        int st = state.status();
        if (st == Proto.STATUS_WAIT) rsp.result(state.formatted() ? SdResult.WAIT_FOR_JOIN : SdResult.WAIT_FOR_FORMAT);
        else if (st == Proto.STATUS_SHUTDOWN) rsp.result(SdResult.SHUTDOWN);
        else if (state.driverUnhealthy()) rsp.result(SdResult.CLUSTER_ERROR); // dog: "Cluster status: Cluster driver error"
        int nodesNr = Math.max(0, h.clusterNodesNr());
        int recSize = EpochRecord.recordSize(nodesNr);
        int max = (int) (h.dataLength() / recSize);
        List<EpochRecord> recs = membership.epochRecords(max);
        ByteBuffer b = ByteBuffer.allocate(recs.size() * recSize).order(ByteOrder.LITTLE_ENDIAN);
        boolean first = true;
        for (EpochRecord r : recs) {
            if (r.nodes.size() > nodesNr && nodesNr > 0) {
                rsp.result(SdResult.BUFFER_SMALL);
                return Request.NO_DATA;
            }
            if (r.nodes.size() > nodesNr) r.nodes = List.of(); // dog's first probe (nodes_nr 0) only wants the head
            if (first) {
                var s = state.settings();
                r.ctime = s.ctime();
                r.disableRecovery = s.disableRecovery();
                r.nrCopies = s.copies();
                r.copyPolicy = s.copyPolicy();
                r.flags = s.flags();
                r.drvName = s.defaultStore();
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
        ErasureCode ec = gateway.sizes().codeOf(oid);
        if (ec == null) return oid;
        int position = state.view().ring().position(oid, ec.totalStrips(), state.self().nid());
        return StoreKey.strip(oid, position >= 0 ? position : 30);
    }

    private static long keyOfPeer(SdRequest h) throws SdError {
        try {
            return PeerService.keyOf(h);
        } catch (IllegalArgumentException e) {
            throw new SdError(SdResult.INVALID_PARMS, e.getMessage());
        }
    }

    private void repair(SdRequest h) throws SdError, IOException {
        long oid = h.forwOid();
        NodeId from = new NodeId(h.forwAddr(), h.forwPort());
        long size = gateway.sizes().of(oid);
        SdRequest read = new SdRequest().opcode(Opcodes.READ_PEER).protoVer(Proto.SHEEP_PROTO_VER).epoch(state.epoch())
                .objOid(oid).dataLength(size).flags(SdFlags.CMD_RECOVERY);
        Reply rep = gateway.send(new SdNode(from, 0, 0, 0), read, null);
        if (rep.result() != SdResult.SUCCESS) throw new SdError(rep.result());
        store.remove(oid);
        store.create(oid, size, null, 0, rep.data());
    }

    /** MD_INFO: {@code sd_md_info}, 64 x {i32 idx, u64 free, u64 used, char path[4096]} then i32 nr (docs/protocol.md §11.6). */
    private byte[] mdInfo(SdRequest h) {
        ByteBuffer b = ByteBuffer.allocate(MD_INFO_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        var disks = store.info();
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
        if (node.isGateway()) throw new SdError(SdResult.GATEWAY_MODE);
        int end = 0;
        while (end < data.length && data[end] != 0) end++;
        String spec = new String(data, 0, end, StandardCharsets.UTF_8);
        List<Path> paths = new ArrayList<>();
        for (String p : spec.split(",")) {
            if (p.isBlank()) continue;
            Path path = Path.of(p.trim());
            if (!path.isAbsolute()) throw new SdError(SdResult.INVALID_PARMS, "disk path " + p + " is not absolute");
            paths.add(path.normalize());
        }
        if (paths.isEmpty()) throw new SdError(SdResult.INVALID_PARMS, "no disk named");
        if (paths.size() + store.paths().size() > MD_MAX_DISKS && plug) {
            throw new SdError(SdResult.INVALID_PARMS, "more than " + MD_MAX_DISKS + " disks");
        }
        try {
            if (plug) store.plug(paths);
            else store.unplug(paths);
            node.reweighLater(); // the node's weight follows its space
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
        for (VdiState s : vdis.all()) if (s.locked() && !s.deleted) locked.add(s);
        var waiting = writerLocks.waiting();
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
            name = vdiOps.readHeader(vid).name;
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
