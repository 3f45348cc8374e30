package io.sheepdog.client;

import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.proto.StripVersion;
import io.sheepdog.proto.VdiAttr;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * Typed helpers for the requests dog (and other tools) send, over any {@link ObjectTransport}. Every method that
 * expects SUCCESS throws {@link SheepdogException} with the result code otherwise; transport failures surface as
 * plain {@link IOException}s. Requests are built the way dog builds them (docs/protocol.md §15): proto_ver set by
 * opcode, epoch 0.
 */
public final class SheepClient {
    /** Node slots dog offers for node lists (SD_MAX_NODES). */
    public static final int NODE_LIST_BUFFER = SdNode.SIZE * Proto.MAX_NODES;
    public static final int VM_ENTRY_SIZE = 280;
    public static final int VM_LIST_MAX = 4096;
    public static final int MD_INFO_SIZE = 263_688;
    public static final int SD_STAT_SIZE = 120;

    private final ObjectTransport transport;

    public SheepClient(ObjectTransport transport) { this.transport = transport; }

    public ObjectTransport transport() { return transport; }

    // ------------------------------------------------------------------ plumbing

    /** Sends a request and returns the reply whatever its result. */
    public Reply exec(SdRequest req, byte[] payload) throws IOException {
        return transport.call(req, payload);
    }

    /** Sends a request and throws unless it succeeded. */
    public Reply execOk(SdRequest req, byte[] payload) throws IOException {
        return SheepdogException.check(transport.call(req, payload));
    }

    private static SdRequest read(int opcode, int bufferLength) {
        return SdRequest.of(opcode).dataLength(bufferLength);
    }

    private static SdRequest write(int opcode, byte[] payload) {
        return SdRequest.of(opcode).flags(SdFlags.CMD_WRITE).dataLength(payload.length);
    }

    private static ByteBuffer le(byte[] b) { return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN); }

    /** name[256] + tag[256], the payload of VDI lookups. */
    public static byte[] nameTag(String name, String tag) {
        byte[] b = new byte[Proto.MAX_VDI_LEN + Proto.MAX_VDI_TAG_LEN];
        byte[] n = Strings.fixed(name, Proto.MAX_VDI_LEN);
        byte[] t = Strings.fixed(tag == null ? "" : tag, Proto.MAX_VDI_TAG_LEN);
        System.arraycopy(n, 0, b, 0, n.length);
        System.arraycopy(t, 0, b, Proto.MAX_VDI_LEN, t.length);
        return b;
    }

    // ------------------------------------------------------------------ cluster / node

    /** GET_NODE_LIST: the members in node order (empty while the node has not joined). */
    public List<SdNode> getNodeList() throws IOException {
        Reply r = execOk(read(Opcodes.GET_NODE_LIST, NODE_LIST_BUFFER), null);
        int nr = Math.min(r.header().nodeNrNodes(), r.data().length / SdNode.SIZE);
        return SdNode.decodeAll(le(r.data()), Math.max(0, nr));
    }

    /**
     * STAT_CLUSTER. Its result encodes the cluster status (SUCCESS = running, WAIT_FOR_FORMAT, WAIT_FOR_JOIN,
     * SHUTDOWN ...) so it is returned, not thrown. {@code nodesNr} is the node-slot stride of each record and
     * {@code maxRecords} the number of records the buffer holds (newest first).
     */
    public ClusterStat statCluster(int nodesNr, int maxRecords) throws IOException {
        int recSize = EpochRecord.recordSize(nodesNr);
        SdRequest req = read(Opcodes.STAT_CLUSTER, (long) recSize * maxRecords > Integer.MAX_VALUE
                ? Integer.MAX_VALUE : recSize * maxRecords).clusterNodesNr(nodesNr);
        Reply r = exec(req, null);
        List<EpochRecord> recs = new ArrayList<>();
        ByteBuffer b = le(r.data());
        while (b.remaining() >= recSize) recs.add(EpochRecord.decode(b, nodesNr));
        return new ClusterStat(r.result(), r.header().epoch(), recs);
    }

    /**
     * All epoch records, as dog's {@code cluster info} gets them: learn the epoch, then ask with room for every
     * record, doubling the node stride on BUFFER_SMALL.
     */
    public ClusterStat statClusterAll(int nodesHint) throws IOException {
        ClusterStat first = statCluster(0, 1);
        int epoch = Math.max(1, first.epoch());
        int nodes = Math.max(1, nodesHint);
        while (true) {
            ClusterStat s = statCluster(nodes, epoch);
            if (s.result() != SdResult.BUFFER_SMALL) return s;
            if (nodes >= Proto.MAX_NODES) return s;
            nodes = Math.min(Proto.MAX_NODES, nodes * 2);
        }
    }

    public record ClusterStat(int result, int epoch, List<EpochRecord> records) { }

    /** CLUSTER_INFO of the contacted node. */
    public ClusterInfo clusterInfo() throws IOException {
        Reply r = execOk(read(Opcodes.CLUSTER_INFO, ClusterInfo.SIZE), null);
        byte[] d = r.data();
        if (d.length < ClusterInfo.HEAD_SIZE) d = Arrays.copyOf(d, ClusterInfo.HEAD_SIZE);
        return ClusterInfo.decode(ByteBuffer.wrap(d));
    }

    /** GET_CLUSTER_DEFAULT: {nr_copies, copy_policy, block_size_shift}. */
    public int[] getClusterDefault() throws IOException {
        Reply r = execOk(SdRequest.of(Opcodes.GET_CLUSTER_DEFAULT), null);
        return new int[] {r.header().defaultNrCopies(), r.header().defaultCopyPolicy(), r.header().defaultBlockSizeShift()};
    }

    /** MAKE_FS (format). Returns the raw result so a caller can react to NO_STORE. */
    public int makeFs(int copies, int copyPolicy, int blockSizeShift, int flags, long ctime, String store) throws IOException {
        byte[] name = (store + "\0").getBytes(StandardCharsets.UTF_8);
        SdRequest req = write(Opcodes.MAKE_FS, name).clusterCopies(copies).clusterCopyPolicy(copyPolicy)
                .clusterBlockSizeShift(blockSizeShift).clusterFlags(flags).clusterCtime(ctime);
        return exec(req, name).result();
    }

    /** GET_STORE_LIST: the names of the store drivers the daemon supports, e.g. {@code "tree plain "}. */
    public String getStoreList() throws IOException {
        Reply r = execOk(read(Opcodes.GET_STORE_LIST, 512), null);
        return Strings.read(ByteBuffer.wrap(r.data()), 0, r.data().length);
    }

    public void shutdown() throws IOException { execOk(SdRequest.of(Opcodes.SHUTDOWN), null); }

    public void killNode() throws IOException { execOk(SdRequest.of(Opcodes.KILL_NODE), null); }

    public void enableRecover() throws IOException { execOk(SdRequest.of(Opcodes.ENABLE_RECOVER), null); }

    public void disableRecover() throws IOException { execOk(SdRequest.of(Opcodes.DISABLE_RECOVER), null); }

    public void forceRecover() throws IOException { execOk(read(Opcodes.FORCE_RECOVER, NODE_LIST_BUFFER), null); }

    public void reweight() throws IOException { execOk(SdRequest.of(Opcodes.REWEIGHT), null); }

    public void alterClusterCopy(int copies) throws IOException {
        execOk(SdRequest.of(Opcodes.ALTER_CLUSTER_COPY).clusterCopies(copies), null);
    }

    public void alterVdiCopy(int vid, int copies, int blockSizeShift) throws IOException {
        execOk(SdRequest.of(Opcodes.ALTER_VDI_COPY).vdiStateNewVid(vid).vdiStateCopies(copies)
                .vdiStateBlockSizeShift(blockSizeShift), null);
    }

    /** STAT_SHEEP: the contacted node's store size and free bytes (0/0 on gateways). */
    public StoreStat statSheep() throws IOException {
        Reply r = execOk(SdRequest.of(Opcodes.STAT_SHEEP), null);
        return new StoreStat(r.header().nodeStoreSize(), r.header().nodeStoreFree());
    }

    public record StoreStat(long size, long free) {
        public long used() { return size - free; }
    }

    /** STAT_RECOVERY. */
    public RecoveryState statRecovery() throws IOException {
        Reply r = execOk(read(Opcodes.STAT_RECOVERY, 24), null);
        ByteBuffer b = le(Arrays.copyOf(r.data(), 24));
        return new RecoveryState(b.get(0) != 0, b.getInt(4), b.getLong(8), b.getLong(16));
    }

    /** {@code state}: 0 preparing the object list, 1 recovering objects, 2 notifying completion. */
    public record RecoveryState(boolean inRecovery, int state, long nrFinished, long nrTotal) { }

    public RecoveryThrottle getRecoveryThrottle() throws IOException {
        Reply r = execOk(read(Opcodes.GET_RECOVERY, 24), null);
        ByteBuffer b = le(Arrays.copyOf(r.data(), 24));
        return new RecoveryThrottle(b.getInt(0) & 0xffffffffL, b.getLong(8), b.get(16) != 0);
    }

    public void setRecoveryThrottle(long max, long intervalMs) throws IOException {
        byte[] p = new byte[24];
        ByteBuffer b = le(p);
        b.putInt(0, (int) max).putLong(8, intervalMs).put(16, (byte) (max > 0 && intervalMs > 0 ? 1 : 0));
        execOk(write(Opcodes.SET_RECOVERY, p), p);
    }

    public record RecoveryThrottle(long max, long intervalMs, boolean throttling) { }

    /** STAT: the 15 request counters of {@code struct sd_stat}, in wire order. */
    public long[] stat() throws IOException {
        Reply r = execOk(read(Opcodes.STAT, SD_STAT_SIZE), null);
        ByteBuffer b = le(Arrays.copyOf(r.data(), SD_STAT_SIZE));
        long[] v = new long[15];
        for (int i = 0; i < 15; i++) v[i] = b.getLong(8 * i);
        return v;
    }

    /** Bytes of the sheep-JVM extension after {@code sd_stat}: version, number of stages, (count, ns) of 4 stages. */
    public static final int STAT_STAGES_SIZE = 16 + 4 * 16;

    /**
     * {@code sd_stat}'s 15 counters, followed, if the sheep sends them (this project's sheep does; the original does
     * not), by the write stages as (count, nanoseconds) pairs: gateway writes, peer writes, the gateway's local copy,
     * waiting for the remote copies. So the array has 15 or 23 values.
     */
    public long[] statWithStages() throws IOException {
        Reply r = execOk(read(Opcodes.STAT, SD_STAT_SIZE + STAT_STAGES_SIZE), null);
        byte[] d = r.data();
        ByteBuffer b = le(Arrays.copyOf(d, Math.max(d.length, SD_STAT_SIZE)));
        boolean stages = d.length >= SD_STAT_SIZE + STAT_STAGES_SIZE && b.getLong(SD_STAT_SIZE) == 1 && b.getLong(SD_STAT_SIZE + 8) == 4;
        long[] v = new long[stages ? 23 : 15];
        for (int i = 0; i < 15; i++) v[i] = b.getLong(8 * i);
        for (int i = 15; i < v.length; i++) v[i] = b.getLong(SD_STAT_SIZE + 16 + 8 * (i - 15));
        return v;
    }

    public int getLogLevel() throws IOException {
        Reply r = execOk(read(Opcodes.GET_LOGLEVEL, 4), null);
        return le(Arrays.copyOf(r.data(), 4)).getInt(0);
    }

    public void setLogLevel(int level) throws IOException {
        byte[] p = new byte[4];
        le(p).putInt(0, level);
        execOk(write(Opcodes.SET_LOGLEVEL, p), p);
    }

    public void setVnodes(int vnodes) throws IOException {
        byte[] p = new byte[8];
        le(p).putInt(0, vnodes);
        execOk(write(Opcodes.SET_VNODES, p), p);
    }

    /** MD_INFO of the contacted node. */
    public List<MdDisk> mdInfo() throws IOException {
        Reply r = execOk(read(Opcodes.MD_INFO, MD_INFO_SIZE), null);
        ByteBuffer b = le(Arrays.copyOf(r.data(), MD_INFO_SIZE));
        int nr = Math.max(0, Math.min(64, b.getInt(263_680)));
        List<MdDisk> out = new ArrayList<>(nr);
        for (int i = 0; i < nr; i++) {
            int base = i * 4120;
            out.add(new MdDisk(b.getInt(base), b.getLong(base + 8), b.getLong(base + 16), Strings.read(b, base + 24, 4096)));
        }
        return out;
    }

    public record MdDisk(int idx, long free, long used, String path) { }

    public void mdPlug(String paths) throws IOException { mdChange(Opcodes.MD_PLUG, paths); }

    public void mdUnplug(String paths) throws IOException { mdChange(Opcodes.MD_UNPLUG, paths); }

    private void mdChange(int op, String paths) throws IOException {
        byte[] p = (paths + "\0").getBytes(StandardCharsets.UTF_8);
        execOk(write(op, p), p);
    }

    // ------------------------------------------------------------------ VDIs

    /** READ_VDIS: the "in use" bitmap. */
    public VdiBitmap readVdis() throws IOException {
        return new VdiBitmap(execOk(read(Opcodes.READ_VDIS, Proto.VDI_BITMAP_BYTES), null).data());
    }

    /** READ_DEL_VDIS: the "deleted" bitmap. */
    public VdiBitmap readDelVdis() throws IOException {
        return new VdiBitmap(execOk(read(Opcodes.READ_DEL_VDIS, Proto.VDI_BITMAP_BYTES), null).data());
    }

    /** Result of a VDI lookup or creation. */
    public record VdiId(int vid, int copies, int blockSizeShift) { }

    /** GET_VDI_INFO of (name, snapid, tag); snapId 0 and an empty tag mean the working VDI. */
    public VdiId getVdiInfo(String name, int snapId, String tag) throws IOException {
        byte[] p = nameTag(name, tag);
        Reply r = execOk(write(Opcodes.GET_VDI_INFO, p).vdiSnapId(snapId), p);
        return new VdiId(r.header().vdiVid(), r.header().vdiCopies(), r.header().vdiBlockSizeShift());
    }

    /** LOCK_VDI: the same lookup as GET_VDI_INFO, plus a lock on USE_LOCK clusters. */
    public VdiId lockVdi(String name, int snapId, String tag, int lockType) throws IOException {
        byte[] p = nameTag(name, tag);
        Reply r = execOk(write(Opcodes.LOCK_VDI, p).vdiSnapId(snapId).vdiType(lockType), p);
        return new VdiId(r.header().vdiVid(), r.header().vdiCopies(), r.header().vdiBlockSizeShift());
    }

    /** RELEASE_VDI of a VID (answers SUCCESS even if it was not locked). */
    public void releaseVdi(int vid, int lockType) throws IOException {
        execOk(SdRequest.of(Opcodes.RELEASE_VDI).vdiBaseVid(vid).vdiType(lockType), null);
    }

    /** Parameters of NEW_VDI (create, clone, snapshot). Zero copies/shift mean the cluster defaults. */
    public record NewVdi(String name, long size, int baseVid, int snapId, int copies, int copyPolicy,
                         int storePolicy, int blockSizeShift) {
        public static NewVdi create(String name, long size) { return new NewVdi(name, size, 0, 0, 0, 0, 0, 0); }
    }

    /** NEW_VDI; returns the new VID. */
    public VdiId newVdi(NewVdi v) throws IOException {
        byte[] p = Strings.fixed(v.name(), Proto.MAX_VDI_LEN);
        SdRequest req = write(Opcodes.NEW_VDI, p).vdiSize(v.size()).vdiBaseVid(v.baseVid()).vdiSnapId(v.snapId())
                .vdiCopies(v.copies()).vdiCopyPolicy(v.copyPolicy()).vdiStorePolicy(v.storePolicy())
                .vdiBlockSizeShift(v.blockSizeShift());
        Reply r = execOk(req, p);
        return new VdiId(r.header().vdiVid(), r.header().vdiCopies(), r.header().vdiBlockSizeShift());
    }

    /** DEL_VDI of (name, snapid, tag). The caller must have released the data objects first. */
    public int delVdi(String name, int snapId, String tag) throws IOException {
        byte[] p = nameTag(name, tag);
        return execOk(write(Opcodes.DEL_VDI, p).vdiSnapId(snapId), p).header().vdiVid();
    }

    /** GET_VDI_COPIES: the daemon's state of every VDI (with locks), growing the buffer on BUFFER_SMALL. */
    public List<VdiState> getVdiCopies() throws IOException {
        int entries = 512;
        while (true) {
            Reply r = exec(read(Opcodes.GET_VDI_COPIES, entries * VdiState.SIZE), null);
            if (r.result() == SdResult.BUFFER_SMALL && entries < (1 << 20)) {
                entries *= 2;
                continue;
            }
            SheepdogException.check(r);
            ByteBuffer b = le(r.data());
            List<VdiState> out = new ArrayList<>();
            while (b.remaining() >= VdiState.SIZE) out.add(VdiState.decode(b));
            return out;
        }
    }

    /**
     * An entry of GET_VM_LIST: a locked VDI and the address of the client holding the lock, or (this implementation's
     * sheep, byte 274 = 1) of an NBD client of the answering node that waits to take the lock over.
     */
    public record VmEntry(String name, byte[] hostAddr, int hostPort, boolean waiting) {
        public VmEntry(String name, byte[] hostAddr, int hostPort) { this(name, hostAddr, hostPort, false); }

        public String host() { return NodeId.hostOf(hostAddr); }
    }

    /** GET_VM_LIST (0x83): the VDIs that are in use, with the client holding each. */
    public List<VmEntry> getVmList() throws IOException {
        Reply r = execOk(read(Opcodes.GET_VM_LIST, VM_LIST_MAX * VM_ENTRY_SIZE), null);
        ByteBuffer b = le(r.data());
        List<VmEntry> out = new ArrayList<>();
        for (int off = 0; off + VM_ENTRY_SIZE <= r.data().length; off += VM_ENTRY_SIZE) {
            String name = Strings.read(b, off, 256);
            byte[] addr = new byte[16];
            b.get(off + 256, addr);
            int port = b.getShort(off + 272) & 0xffff;
            out.add(new VmEntry(name, addr, port, b.get(off + 274) == 1));
        }
        return out;
    }

    /** Result of GET_VDI_ATTR: the VID (hash of the name) and the attribute id that was matched or created. */
    public record AttrId(int vid, int attrId) {
        public long oid() { return Oids.attrOid(vid, attrId); }
    }

    /** GET_VDI_ATTR with flags CREAT / EXCL / DEL (or 0 for a lookup). */
    public AttrId getVdiAttr(VdiAttr attr, int flags) throws IOException {
        byte[] p = attr.encode();
        Reply r = execOk(write(Opcodes.GET_VDI_ATTR, p).flags(SdFlags.CMD_WRITE | flags).vdiSnapId(attr.snapId), p);
        return new AttrId(r.header().vdiVid(), r.header().vdiAttrId());
    }

    // ------------------------------------------------------------------ objects

    // The blocking forms below go through ObjectTransport.call, which a transport inside the daemon runs on the
    // calling thread: a caller with a single request to make saves the hand-off to another thread and back.

    /** READ_OBJ; the result has exactly {@code length} bytes. */
    public byte[] readObj(long oid, long offset, int length) throws IOException {
        return readObj(oid, offset, length, 0, 0, 0);
    }

    /** Blocking form of {@link #readObjAsync}. */
    public byte[] readObj(long oid, long offset, int length, int copies, int copyPolicy, int flags) throws IOException {
        Reply r = SheepdogException.check(transport.call(readObjRequest(oid, offset, length, copies, copyPolicy, flags), null));
        return exactly(r.data(), length);
    }

    public CompletableFuture<byte[]> readObjAsync(long oid, long offset, int length, int copies, int copyPolicy, int flags) {
        return transport.submit(readObjRequest(oid, offset, length, copies, copyPolicy, flags), null)
                .thenApply(r -> readData(r, length));
    }

    /**
     * READ_OBJ of the same range of several objects, sent together ({@link ObjectTransport#submitAll}: one write
     * for all of them on a connection); each future fails like {@link #readObjAsync}'s.
     */
    public List<CompletableFuture<byte[]>> readObjsAsync(long[] oids, long offset, int length) {
        List<SdRequest> reqs = new ArrayList<>(oids.length);
        for (long oid : oids) reqs.add(readObjRequest(oid, offset, length, 0, 0, 0));
        List<CompletableFuture<Reply>> replies = transport.submitAll(reqs);
        List<CompletableFuture<byte[]>> out = new ArrayList<>(oids.length);
        for (CompletableFuture<Reply> f : replies) out.add(f.thenApply(r -> readData(r, length)));
        return out;
    }

    private static byte[] readData(Reply r, int length) {
        if (!r.ok()) throw new CompletionException(new SheepdogException(r.result()));
        return exactly(r.data(), length);
    }

    private static SdRequest readObjRequest(long oid, long offset, int length, int copies, int copyPolicy, int flags) {
        return SdRequest.of(Opcodes.READ_OBJ).flags(flags).dataLength(length).objOid(oid).objOffset(offset)
                .objCopies(copies).objCopyPolicy(copyPolicy);
    }

    private static byte[] exactly(byte[] d, int length) {
        return d.length == length ? d : Arrays.copyOf(d, length);
    }

    /** WRITE_OBJ of {@code data} at {@code offset} of an existing object. */
    public void writeObj(long oid, long offset, byte[] data) throws IOException {
        writeObj(oid, offset, data, 0, 0, 0);
    }

    /** Blocking form of {@link #writeObjAsync}. */
    public void writeObj(long oid, long offset, byte[] data, int copies, int copyPolicy, int flags) throws IOException {
        SheepdogException.check(transport.call(writeObjRequest(oid, offset, data, copies, copyPolicy, flags), data));
    }

    public CompletableFuture<Void> writeObjAsync(long oid, long offset, byte[] data, int copies, int copyPolicy, int flags) {
        return transport.submit(writeObjRequest(oid, offset, data, copies, copyPolicy, flags), data).thenApply(SheepClient::okOrThrow);
    }

    /**
     * {@link #writeObj(long, long, byte[], int, int, int)} of {@code data}'s remaining bytes, which the transport may
     * send as they are (see {@link ObjectTransport#submitBuffer}).
     */
    public void writeObj(long oid, long offset, ByteBuffer data, int copies, int copyPolicy, int flags) throws IOException {
        SheepdogException.check(transport.callBuffer(writeObjRequest(oid, offset, data.remaining(), copies, copyPolicy, flags), data));
    }

    /** {@link #writeObjAsync(long, long, byte[], int, int, int)} of {@code data}'s remaining bytes, kept until done. */
    public CompletableFuture<Void> writeObjAsync(long oid, long offset, ByteBuffer data, int copies, int copyPolicy, int flags) {
        return transport.submitBuffer(writeObjRequest(oid, offset, data.remaining(), copies, copyPolicy, flags), data)
                .thenApply(SheepClient::okOrThrow);
    }

    private static SdRequest writeObjRequest(long oid, long offset, byte[] data, int copies, int copyPolicy, int flags) {
        return writeObjRequest(oid, offset, data.length, copies, copyPolicy, flags);
    }

    private static SdRequest writeObjRequest(long oid, long offset, int length, int copies, int copyPolicy, int flags) {
        return SdRequest.of(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE | flags).dataLength(length)
                .objOid(oid).objOffset(offset).objCopies(copies).objCopyPolicy(copyPolicy);
    }

    /** CREATE_AND_WRITE_OBJ; with {@code cowOid != 0} the object is initialised from it (COW flag). */
    public void createAndWriteObj(long oid, long cowOid, long offset, byte[] data, int copies, int copyPolicy) throws IOException {
        createAndWriteObj(oid, cowOid, offset, data, copies, copyPolicy, 0);
    }

    /** Blocking form of {@link #createAndWriteObjAsync}. */
    public void createAndWriteObj(long oid, long cowOid, long offset, byte[] data, int copies, int copyPolicy, int flags)
            throws IOException {
        SheepdogException.check(transport.call(createRequest(oid, cowOid, offset, data, copies, copyPolicy, flags), data));
    }

    public CompletableFuture<Void> createAndWriteObjAsync(long oid, long cowOid, long offset, byte[] data, int copies,
                                                          int copyPolicy, int flags) {
        return transport.submit(createRequest(oid, cowOid, offset, data, copies, copyPolicy, flags), data)
                .thenApply(SheepClient::okOrThrow);
    }

    private static SdRequest createRequest(long oid, long cowOid, long offset, byte[] data, int copies, int copyPolicy,
                                           int flags) {
        int f = SdFlags.CMD_WRITE | flags | (cowOid != 0 ? SdFlags.CMD_COW : 0);
        return SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).flags(f).dataLength(data.length).objOid(oid)
                .objCowOid(cowOid).objOffset(offset).objCopies(copies).objCopyPolicy(copyPolicy);
    }

    public void removeObj(long oid) throws IOException {
        execOk(SdRequest.of(Opcodes.REMOVE_OBJ).objOid(oid), null);
    }

    /** EXIST: whether the contacted node stores {@code oid} locally. */
    public boolean exist(long oid) throws IOException {
        Reply r = exec(SdRequest.of(Opcodes.EXIST).objOid(oid), null);
        if (r.result() == SdResult.NO_OBJ) return false;
        SheepdogException.check(r);
        return true;
    }

    /** OIDS_EXIST: the subset of {@code oids} the contacted node does not store. */
    public long[] oidsExist(long[] oids) throws IOException {
        byte[] p = new byte[8 * oids.length];
        ByteBuffer b = le(p);
        for (long o : oids) b.putLong(o);
        SdRequest req = SdRequest.of(Opcodes.OIDS_EXIST).flags(SdFlags.CMD_WRITE | SdFlags.CMD_PIGGYBACK).dataLength(p.length);
        Reply r = exec(req, p);
        if (r.result() == SdResult.SUCCESS) return new long[0];
        if (r.result() != SdResult.NO_OBJ) throw new SheepdogException(r.result());
        ByteBuffer d = le(r.data());
        long[] missing = new long[r.data().length / 8];
        for (int i = 0; i < missing.length; i++) missing[i] = d.getLong(8 * i);
        return missing;
    }

    /** GET_HASH: SHA-1 of the whole object as stored on the contacted node, for epoch {@code tgtEpoch}. */
    public byte[] getHash(long oid, int tgtEpoch) throws IOException {
        return execOk(SdRequest.of(Opcodes.GET_HASH).objOid(oid).objTgtEpoch(tgtEpoch), null).header().hashDigest();
    }

    /**
     * A versioned READ_PEER of strip {@code index} of an erasure-coded object ({@code policy}) on the contacted node
     * at {@code epoch}: {@code len} bytes from the start of the strip at version {@code want}
     * ({@link StripVersion#ANY}: as it is). The reply's data is the strip's state (16 bytes) followed by the bytes, or
     * by nothing when the strip cannot show that version.
     */
    public byte[] readStrip(long oid, int policy, int index, int len, int epoch, long want) throws IOException {
        SdRequest req = SdRequest.of(Opcodes.READ_PEER).epoch(epoch).objOid(oid).dataLength(len).objCopyPolicy(policy)
                .objEcIndex(index).objCowOid(want).flags(SdFlags.CMD_FWD | SdFlags.CMD_VERSIONED);
        return execOk(req, null).data();
    }

    /**
     * A versioned CREATE_AND_WRITE_PEER of a whole strip {@code index} of an erasure-coded object on the contacted
     * node, at version {@code version} (over whatever the node holds of it).
     */
    public void createStrip(long oid, int policy, int index, byte[] strip, long version, int epoch) throws IOException {
        byte[] payload = ByteBuffer.allocate(16 + strip.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(StripVersion.ANY).putLong(version).put(strip).array();
        SdRequest req = SdRequest.of(Opcodes.CREATE_AND_WRITE_PEER).epoch(epoch).objOid(oid).dataLength(payload.length)
                .objCopyPolicy(policy).objEcIndex(index).flags(SdFlags.CMD_WRITE | SdFlags.CMD_FWD | SdFlags.CMD_VERSIONED);
        execOk(req, payload);
    }

    /** REPAIR_REPLICA: make the contacted node copy {@code oid} from {@code from}. */
    public void repairReplica(long oid, NodeId from) throws IOException {
        execOk(SdRequest.of(Opcodes.REPAIR_REPLICA).forwOid(oid).forwAddr(from.addr()).forwPort(from.port()), null);
    }

    // ------------------------------------------------------------------ inodes

    /** The inode header of {@code vid} (4664 bytes) without the index table. */
    public Inode readInodeHeader(int vid) throws IOException {
        return Inode.decode(readObj(Oids.inodeOid(vid), 0, Inode.HEADER_SIZE));
    }

    /**
     * The inode of {@code vid} with its {@code data_vdi_id} table: reads the header, then only the
     * {@code 4 * objectCount} table bytes the VDI's size uses (never the whole 12 MiB object).
     */
    public Inode readInode(int vid) throws IOException {
        Inode h = readInodeHeader(vid);
        int count = h.blockSizeShift == 0 ? 0 : h.objectCount();
        if (count == 0 || h.storePolicy != 0) return h;
        byte[] table = readObj(Oids.inodeOid(vid), Inode.DATA_VDI_ID_OFFSET, 4 * count);
        ByteBuffer b = le(table);
        h.ensureCapacity(count);
        for (int i = 0; i < count; i++) h.dataVdiId[i] = b.getInt(4 * i);
        return h;
    }

    /** Writes data_vdi_id[from..to) of {@code inode} to the inode object of {@code vid}. */
    public void writeDataVdiIds(int vid, Inode inode, int from, int to) throws IOException {
        writeObj(Oids.inodeOid(vid), Inode.dataVdiIdOffset(from), inode.encodeDataVdiIds(from, to));
    }

    // ------------------------------------------------------------------ helpers

    private static Void okOrThrow(Reply r) {
        if (!r.ok()) throw new CompletionException(new SheepdogException(r.result()));
        return null;
    }

    /** Waits for a future and unwraps its failure into the IOException it carries. */
    public static <T> T join(CompletableFuture<T> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (ExecutionException e) {
            throw unwrap(e.getCause());
        }
    }

    /** The IOException behind a future's failure (CompletionException layers removed). */
    public static IOException unwrap(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException)
                && t.getCause() != null) t = t.getCause();
        if (t instanceof IOException io) return io;
        if (t instanceof UncheckedIOException u) return u.getCause();
        return new IOException(String.valueOf(t.getMessage()), t);
    }
}
