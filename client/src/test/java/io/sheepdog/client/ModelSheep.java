package io.sheepdog.client;

import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.Header48;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdHash;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A single-node, in-memory model of a sheep's client-facing protocol, for unit tests of the client library while
 * the real daemon is not available: a real TCP server (so connections, pipelining and out-of-order replies are
 * exercised for real) whose object store and VDI bookkeeping follow docs/protocol.md §10 in a simplified way (no
 * replication, no reference counting). Replies can be delayed randomly so that they come back out of order.
 * It counts CREATE_AND_WRITE_OBJ requests per oid so tests can check that an object was created only once.
 */
public final class ModelSheep implements AutoCloseable {
    private final ServerSocketChannel server;
    private final Thread acceptor;
    private final List<SocketChannel> clients = new CopyOnWriteArrayList<>();
    private final Map<Long, byte[]> objects = new ConcurrentHashMap<>();
    private final Map<Long, AtomicInteger> creates = new ConcurrentHashMap<>();
    private final Map<Integer, AtomicInteger> opCounts = new ConcurrentHashMap<>();
    private final BitSet inuse = new BitSet(Proto.NR_VDIS);
    private final BitSet deleted = new BitSet(Proto.NR_VDIS);
    private final Object vdiLock = new Object();
    private final ReentrantLock objLock = new ReentrantLock();
    public volatile int maxDelayMs;
    public volatile long ctime;
    public volatile int epoch;
    public volatile int copies = 1;
    /** Extra GET_VM_LIST entries (name, addr, port). */
    public final List<SheepClient.VmEntry> vmList = new CopyOnWriteArrayList<>();

    public ModelSheep() throws IOException {
        server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress("127.0.0.1", 0));
        acceptor = Thread.ofVirtual().start(this::acceptLoop);
    }

    public int port() { return ((InetSocketAddress) server.socket().getLocalSocketAddress()).getPort(); }

    public int creates(long oid) { AtomicInteger a = creates.get(oid); return a == null ? 0 : a.get(); }

    public int opCount(int opcode) { AtomicInteger a = opCounts.get(opcode); return a == null ? 0 : a.get(); }

    public boolean hasObject(long oid) { return objects.containsKey(oid); }

    public byte[] object(long oid) { return objects.get(oid); }

    /** Formats the model cluster (as MAKE_FS would). */
    public void format() {
        ctime = System.currentTimeMillis() / 1000 << 32;
        epoch = 1;
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (SocketChannel c : clients) c.close();
    }

    /** Drops every client connection (to test reconnects). */
    public void dropConnections() throws IOException {
        for (SocketChannel c : clients) c.close();
        clients.clear();
    }

    private void acceptLoop() {
        try {
            while (true) {
                SocketChannel c = server.accept();
                clients.add(c);
                Thread.ofVirtual().start(() -> serve(c));
            }
        } catch (IOException e) {
            // closed
        }
    }

    private void serve(SocketChannel ch) {
        ReentrantLock wl = new ReentrantLock();
        try {
            while (true) {
                ByteBuffer hb = ByteBuffer.allocate(Header48.SIZE);
                readFully(ch, hb);
                SdRequest req = new SdRequest(hb.array());
                byte[] payload = new byte[0];
                if (req.hasFlag(SdFlags.CMD_WRITE) && req.dataLength() > 0) {
                    payload = new byte[(int) req.dataLength()];
                    readFully(ch, ByteBuffer.wrap(payload));
                }
                byte[] p = payload;
                Thread.ofVirtual().start(() -> {
                    int d = maxDelayMs;
                    if (d > 0) {
                        try { Thread.sleep(ThreadLocalRandom.current().nextInt(d + 1)); } catch (InterruptedException ignored) { }
                    }
                    Answer a;
                    try {
                        a = handle(req, p);
                    } catch (RuntimeException e) {
                        a = new Answer(SdResponse.replyTo(req, SdResult.SYSTEM_ERROR), new byte[0]);
                    }
                    a.rsp.epoch(epoch).dataLength(a.data.length);
                    wl.lock();
                    try {
                        ByteBuffer[] bufs = {ByteBuffer.wrap(a.rsp.bytes()), ByteBuffer.wrap(a.data)};
                        long total = Header48.SIZE + (long) a.data.length, done = 0;
                        while (done < total) done += ch.write(bufs);
                    } catch (IOException ignored) {
                        // client went away
                    } finally {
                        wl.unlock();
                    }
                });
            }
        } catch (IOException e) {
            try { ch.close(); } catch (IOException ignored) { }
        }
    }

    private static void readFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) if (ch.read(b) < 0) throw new EOFException();
    }

    private record Answer(SdResponse rsp, byte[] data) { }

    private static Answer ok(SdRequest req, byte[] data) { return new Answer(SdResponse.replyTo(req, SdResult.SUCCESS), data); }

    private static Answer err(SdRequest req, int code) { return new Answer(SdResponse.replyTo(req, code), new byte[0]); }

    private Answer handle(SdRequest req, byte[] p) {
        opCounts.computeIfAbsent(req.opcode(), k -> new AtomicInteger()).incrementAndGet();
        switch (req.opcode()) {
            case Opcodes.READ_OBJ -> { return readObj(req); }
            case Opcodes.WRITE_OBJ -> { return writeObj(req, p, false); }
            case Opcodes.CREATE_AND_WRITE_OBJ -> { return writeObj(req, p, true); }
            case Opcodes.REMOVE_OBJ -> { return objects.remove(req.objOid()) == null ? err(req, SdResult.NO_OBJ) : ok(req, new byte[0]); }
            case Opcodes.GET_NODE_LIST -> {
                if (ctime == 0 && epoch == 0) { SdResponse r = SdResponse.replyTo(req, 0).nodeNrNodes(1); return new Answer(r, self().toBytes()); }
                SdResponse r = SdResponse.replyTo(req, 0).nodeNrNodes(1);
                return new Answer(r, self().toBytes());
            }
            case Opcodes.STAT_CLUSTER -> { return statCluster(req); }
            case Opcodes.CLUSTER_INFO -> {
                ClusterInfo ci = new ClusterInfo();
                ci.epoch = epoch; ci.ctime = ctime; ci.nrCopies = copies; ci.blockSizeShift = 22;
                ci.status = ctime == 0 ? Proto.STATUS_WAIT : Proto.STATUS_OK; ci.defaultStore = "plain";
                ci.flags = Proto.CLUSTER_FLAG_AUTO_VNODES;
                ci.nodes = List.of(self());
                return ok(req, ci.encode(true));
            }
            case Opcodes.MAKE_FS -> {
                String store = Strings.read(ByteBuffer.wrap(p), 0, p.length);
                if (!store.equals("plain") && !store.equals("tree")) return err(req, SdResult.NO_STORE);
                synchronized (vdiLock) { objects.clear(); inuse.clear(); deleted.clear(); }
                ctime = req.clusterCtime(); epoch = 1; copies = req.clusterCopies() == 0 ? 3 : req.clusterCopies();
                return ok(req, new byte[0]);
            }
            case Opcodes.GET_STORE_LIST -> { return ok(req, "tree plain ".getBytes()); }
            case Opcodes.READ_VDIS -> { return ok(req, bitmap(inuse)); }
            case Opcodes.READ_DEL_VDIS -> { return ok(req, bitmap(deleted)); }
            case Opcodes.GET_VDI_INFO, Opcodes.LOCK_VDI -> { return lookup(req, p); }
            case Opcodes.RELEASE_VDI -> { return ok(req, new byte[0]); }
            case Opcodes.NEW_VDI -> { return newVdi(req, p); }
            case Opcodes.DEL_VDI -> { return delVdi(req, p); }
            case Opcodes.STAT_SHEEP -> { return new Answer(SdResponse.replyTo(req, 0).nodeStoreSize(100L << 30).nodeStoreFree(60L << 30), new byte[0]); }
            case Opcodes.STAT_RECOVERY -> { return ok(req, new byte[24]); }
            case Opcodes.GET_VM_LIST -> {
                ByteBuffer b = ByteBuffer.allocate(vmList.size() * SheepClient.VM_ENTRY_SIZE).order(ByteOrder.LITTLE_ENDIAN);
                int i = 0;
                for (SheepClient.VmEntry e : vmList) {
                    Strings.write(b, i * 280, 256, e.name());
                    b.put(i * 280 + 256, e.hostAddr());
                    b.putShort(i * 280 + 272, (short) e.hostPort());
                    i++;
                }
                return ok(req, b.array());
            }
            case Opcodes.EXIST -> { return objects.containsKey(req.objOid()) ? ok(req, new byte[0]) : err(req, SdResult.NO_OBJ); }
            case Opcodes.ENABLE_RECOVER, Opcodes.DISABLE_RECOVER, Opcodes.SHUTDOWN -> { return ok(req, new byte[0]); }
            default -> { return err(req, SdResult.INVALID_PARMS); }
        }
    }

    public SdNode self() { return new SdNode(NodeId.of("127.0.0.1", port()), 128, 0, 100L << 30); }

    private Answer statCluster(SdRequest req) {
        int nodesNr = req.clusterNodesNr();
        int rec = EpochRecord.recordSize(nodesNr);
        int n = (int) Math.min(epoch, req.dataLength() / rec);
        if (n > 0 && nodesNr < 1) return err(req, SdResult.BUFFER_SMALL);
        ByteBuffer b = ByteBuffer.allocate(n * rec).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            EpochRecord r = new EpochRecord();
            r.ctime = ctime; r.epoch = epoch - i; r.flags = Proto.CLUSTER_FLAG_AUTO_VNODES; r.time = ctime >>> 32; r.nrCopies = copies; r.drvName = "plain";
            r.nodes = List.of(self());
            r.encode(b, nodesNr);
        }
        int result = ctime == 0 ? SdResult.WAIT_FOR_FORMAT : SdResult.SUCCESS;
        return new Answer(SdResponse.replyTo(req, result), b.array());
    }

    private static byte[] bitmap(BitSet bs) {
        byte[] out = new byte[Proto.VDI_BITMAP_BYTES];
        byte[] raw = bs.toByteArray();
        System.arraycopy(raw, 0, out, 0, Math.min(raw.length, out.length));
        return out;
    }

    // ---------------------------------------------------------------- objects

    private boolean readonlyData(long oid) {
        if (!Oids.isData(oid)) return false;
        byte[] inode = objects.get(Oids.inodeOid(Oids.vid(oid)));
        if (inode == null) return false;
        return ByteBuffer.wrap(inode).order(ByteOrder.LITTLE_ENDIAN).getLong(520) != 0;
    }

    private static int objSize(long oid) {
        return Oids.isInode(oid) ? Inode.SIZE : Proto.DATA_OBJ_SIZE;
    }

    private Answer readObj(SdRequest req) {
        byte[] o = objects.get(req.objOid());
        if (o == null) return err(req, SdResult.NO_OBJ);
        int off = (int) req.objOffset(), len = (int) req.dataLength();
        byte[] out = new byte[len];
        if (off < o.length) System.arraycopy(o, off, out, 0, Math.min(len, o.length - off));
        return ok(req, out);
    }

    private Answer writeObj(SdRequest req, byte[] p, boolean create) {
        long oid = req.objOid();
        if (readonlyData(oid)) return err(req, SdResult.READONLY);
        objLock.lock();
        try {
            byte[] o = objects.get(oid);
            if (create) {
                creates.computeIfAbsent(oid, k -> new AtomicInteger()).incrementAndGet();
                o = new byte[objSize(oid)];
                if (req.hasFlag(SdFlags.CMD_COW)) {
                    byte[] src = objects.get(req.objCowOid());
                    if (src == null) return err(req, SdResult.NO_OBJ);
                    System.arraycopy(src, 0, o, 0, Math.min(src.length, o.length));
                }
            } else if (o == null) {
                return err(req, SdResult.NO_OBJ);
            }
            int off = (int) req.objOffset();
            System.arraycopy(p, 0, o, off, p.length);
            objects.put(oid, o);
        } finally {
            objLock.unlock();
        }
        return ok(req, new byte[0]);
    }

    // ---------------------------------------------------------------- VDIs (docs/protocol.md §10.4/10.5, simplified)

    private Inode inode(int vid) {
        byte[] o = objects.get(Oids.inodeOid(vid));
        return o == null ? null : Inode.decode(o);
    }

    private record Found(int vid, int freeVid, int nextSnapId) { }

    private Found find(String name, int snapId, String tag) {
        int left = SdHash.vdiHash(name);
        if (left == 0) left = 1;
        int right = inuse.nextClearBit(left);
        if (right == left) return new Found(0, left, 1);
        boolean nameExists = false;
        int nextSnap = 1;
        for (int v = right - 1; v >= left; v--) {
            if (!inuse.get(v)) continue;
            byte[] o = objects.get(Oids.inodeOid(v));
            if (o == null) continue;
            ByteBuffer b = ByteBuffer.wrap(o).order(ByteOrder.LITTLE_ENDIAN);
            String n = Strings.read(b, 0, 256);
            if (!n.equals(name)) continue;
            long snapCtime = b.getLong(520);
            int sid = b.getInt(556);
            if (!nameExists) nextSnap = sid + 1;
            nameExists = true;
            if (snapId == 0 && tag.isEmpty()) {
                return snapCtime == 0 ? new Found(v, right, nextSnap) : new Found(0, right, nextSnap);
            }
            if (snapCtime == 0) continue;
            String t = Strings.read(b, 256, 256);
            if ((!tag.isEmpty() && t.equals(tag)) || (snapId != 0 && sid == snapId)) return new Found(v, right, nextSnap);
        }
        return new Found(nameExists && !(snapId == 0 && tag.isEmpty()) ? -1 : 0, right, nextSnap);
    }

    private Answer lookup(SdRequest req, byte[] p) {
        ByteBuffer b = ByteBuffer.wrap(p);
        String name = Strings.read(b, 0, 256);
        String tag = p.length >= 512 ? Strings.read(b, 256, 256) : "";
        synchronized (vdiLock) {
            Found f = find(name, req.vdiSnapId(), tag);
            if (f.vid == -1) return err(req, SdResult.NO_TAG);
            if (f.vid == 0) return err(req, SdResult.NO_VDI);
            Inode n = inode(f.vid);
            return new Answer(SdResponse.replyTo(req, 0).vdiVid(f.vid).vdiCopies(n.nrCopies).vdiBlockSizeShift(n.blockSizeShift), new byte[0]);
        }
    }

    private Answer newVdi(SdRequest req, byte[] p) {
        if (p.length != 256) return err(req, SdResult.INVALID_PARMS);
        String name = Strings.read(ByteBuffer.wrap(p), 0, 256);
        synchronized (vdiLock) {
            Found f = find(name, 0, "");
            int base = req.vdiBaseVid();
            long now = (System.currentTimeMillis() / 1000) << 32;
            Inode n = new Inode();
            n.name = name;
            n.createTime = now;
            n.vdiSize = req.vdiSize();
            n.nrCopies = req.vdiCopies() == 0 ? copies : req.vdiCopies();
            n.copyPolicy = req.vdiCopyPolicy();
            n.blockSizeShift = req.vdiBlockSizeShift() == 0 ? 22 : req.vdiBlockSizeShift();
            n.vdiId = f.freeVid;
            if (req.vdiSnapId() != 0) {
                // snapshot: base must be the current working VDI
                if (f.vid == 0) return err(req, SdResult.NO_VDI);
                byte[] cur = objects.get(Oids.inodeOid(f.vid));
                ByteBuffer.wrap(cur).order(ByteOrder.LITTLE_ENDIAN).putLong(520, now);
                Inode old = Inode.decode(cur);
                n.snapId = old.snapId + 1;
                n.parentVdiId = f.vid;
                n.ensureCapacity(old.dataVdiId.length);
                System.arraycopy(old.dataVdiId, 0, n.dataVdiId, 0, old.dataVdiId.length);
            } else if (base != 0) {
                if (f.vid != 0) return err(req, SdResult.VDI_EXIST);
                Inode src = inode(base);
                if (src == null) return err(req, SdResult.NO_BASE_VDI);
                n.snapId = f.nextSnapId;
                n.parentVdiId = base;
                n.ensureCapacity(src.dataVdiId.length);
                System.arraycopy(src.dataVdiId, 0, n.dataVdiId, 0, src.dataVdiId.length);
            } else {
                if (f.vid != 0) return err(req, SdResult.VDI_EXIST);
                n.snapId = f.nextSnapId;
            }
            objects.put(Oids.inodeOid(n.vdiId), n.encode(Inode.SIZE));
            inuse.set(n.vdiId);
            return new Answer(SdResponse.replyTo(req, 0).vdiVid(n.vdiId).vdiCopies(n.nrCopies).vdiBlockSizeShift(n.blockSizeShift), new byte[0]);
        }
    }

    private Answer delVdi(SdRequest req, byte[] p) {
        ByteBuffer b = ByteBuffer.wrap(p);
        String name = Strings.read(b, 0, 256);
        String tag = p.length >= 512 ? Strings.read(b, 256, 256) : "";
        synchronized (vdiLock) {
            Found f = find(name, req.vdiSnapId(), tag);
            if (f.vid == -1) return err(req, SdResult.NO_TAG);
            if (f.vid == 0) return err(req, SdResult.NO_VDI);
            byte[] o = objects.get(Oids.inodeOid(f.vid));
            Inode n = Inode.decode(o);
            boolean empty = true;
            for (int v : n.dataVdiId) if (v != 0) { empty = false; break; }
            if (empty) {
                ByteBuffer ob = ByteBuffer.wrap(o).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < 256; i++) ob.put(i, (byte) 0);
                ob.putLong(536, 0);
            }
            deleted.set(f.vid);
            return new Answer(SdResponse.replyTo(req, 0).vdiVid(f.vid), new byte[0]);
        }
    }

    /** Creates a VDI directly (test setup). Returns its VID. */
    public int createVdi(String name, long size) throws IOException {
        try (SheepConnection c = SheepConnection.open("127.0.0.1", port())) {
            return new SheepClient(c).newVdi(SheepClient.NewVdi.create(name, size)).vid();
        }
    }

    /** Number of data objects currently stored. */
    public long dataObjects() {
        return objects.keySet().stream().filter(Oids::isData).count();
    }

    public List<Long> oids() { return new ArrayList<>(objects.keySet()); }
}
