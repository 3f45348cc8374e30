package io.sheepdog.sheep;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.sheep.access.AccessPolicy;
import io.sheepdog.sheep.cluster.ClusterDriver;
import io.sheepdog.sheep.cluster.ClusterDriverException;
import io.sheepdog.sheep.cluster.ClusterDrivers;
import io.sheepdog.sheep.gateway.Gateway;
import io.sheepdog.sheep.gateway.PeerPool;
import io.sheepdog.sheep.gateway.PeerService;
import io.sheepdog.sheep.nbd.WriterLocks;
import io.sheepdog.sheep.net.IoPortServer;
import io.sheepdog.sheep.net.SdServer;
import io.sheepdog.sheep.node.ClusterSettings;
import io.sheepdog.sheep.node.EpochLog;
import io.sheepdog.sheep.node.FailureDetector;
import io.sheepdog.sheep.node.Membership;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.node.StoreConfig;
import io.sheepdog.sheep.node.StoreWatchdog;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.ClusterOps;
import io.sheepdog.sheep.ops.IoStats;
import io.sheepdog.sheep.ops.LocalOps;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.ops.RequestProcessor;
import io.sheepdog.sheep.recovery.RecoveryManager;
import io.sheepdog.sheep.store.DirProbe;
import io.sheepdog.sheep.store.FileObjectStore;
import io.sheepdog.sheep.store.MultiDiskStore;
import io.sheepdog.sheep.store.ObjectSizes;
import io.sheepdog.sheep.store.ObjectStore;
import io.sheepdog.sheep.vdi.VdiOps;
import io.sheepdog.sheep.vdi.VdiRegistry;
import io.sheepdog.sheep.vdi.VdiState;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One sheep: owns the store directory and wires the parts of the daemon together. Data flows one way: a front end
 * decodes a request, the {@link RequestProcessor} classifies it, the {@link Gateway} places it, the {@link PeerService}
 * of each holder writes it to its {@link ObjectStore}.
 */
public final class Sheep implements AutoCloseable, LocalOps.Node, Membership.Node {
    /** Heartbeats to the other members; null with --failure-timeout 0. */
    private volatile FailureDetector failures;
    /** How often the store is checked for a failure no request has seen (see {@link PeerService#checkStore}). */
    private static final long STORE_CHECK_MS = Long.getLong("sheepdog.storeCheckMs", 3000);
    private volatile StoreWatchdog storeCheck;
    private static final Logger LOG = LoggerFactory.getLogger(Sheep.class);

    private final SheepOptions opts;
    private final Path base;
    private final FileChannel lockChannel;
    private final FileLock lock;
    private final StoreConfig config;
    private final boolean uncleanStop;
    private final EpochLog epochLog;
    private final MultiDiskStore store;
    private final NodeState state;
    private final VdiRegistry vdis = new VdiRegistry();
    private final PeerPool peers = new PeerPool(3000);
    private final PeerService peer;
    private final Gateway gateway;
    private final VdiOps vdiOps;
    private final ClusterOps clusterOps;
    private final Membership membership;
    private final RecoveryManager recovery;
    private final RequestProcessor processor;
    private final AccessPolicy access;
    private final ClusterDriver driver;
    private SdServer server;
    /** Where the other sheep send this node's copies (null: {@code -i off}, or a gateway, which stores none). */
    private IoPortServer ioPort;
    private AutoCloseable nbd;
    private volatile int logLevel = 6;
    /** The store driver {@code dog node format} chose for this node (file {@code node_config}), or null. */
    private final String nodeStoreDriver;

    public Sheep(SheepOptions opts) throws IOException, ClusterDriverException {
        this(opts, null);
    }

    /** With {@code driver} null the driver named by the options is made; tests pass their own. */
    public Sheep(SheepOptions opts, ClusterDriver driver) throws IOException, ClusterDriverException {
        this.opts = opts;
        this.access = new AccessPolicy(opts.access(), () -> state().view().members());
        this.base = opts.storeDir().toAbsolutePath().normalize();
        Files.createDirectories(base);
        if (!Files.isDirectory(base) || !Files.isWritable(base)) throw new IOException("store directory " + base + " is not a writable directory");
        lockChannel = FileChannel.open(base.resolve("lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock l;
        try {
            l = lockChannel.tryLock();
        } catch (OverlappingFileLockException e) {
            l = null;
        }
        if (l == null) {
            lockChannel.close();
            throw new IOException("another sheep daemon is using " + base);
        }
        lock = l;
        try {
            StoreConfig c = StoreConfig.load(base.resolve("config"));
            if (c != null && c.version != Proto.FORMAT_VERSION) {
                throw new IOException("This sheep version is not compatible with the existing data layout, " + c.version);
            }
            if (c == null) {
                c = new StoreConfig();
            }
            uncleanStop = c.ctime != 0 && !c.shutdown;
            config = c;
            epochLog = new EpochLog(base.resolve("epoch"));
            for (Path d : opts.disks()) {
                if (Files.exists(d.resolve("config")) && Files.isDirectory(d.resolve("epoch"))) {
                    throw new IOException("disk " + d + " holds a sheep's store metadata: not a disk for objects");
                }
            }
            store = new MultiDiskStore(opts.objectDirs(), !opts.noSync(), opts.journalBytes(), opts.directWrites());
            nodeStoreDriver = readNodeConfig(base.resolve("node_config"));
            useStoreDriver(config.defaultStore);
            // a disk added to the list since the last start takes its share from the others
            if (store.paths().size() > 1) store.rebalanceInBackground();
            if (config.space == 0) {
                config.space = opts.gateway() ? 0 : Math.max(1, opts.disks().isEmpty() ? store.freeBytes() : store.space());
            }

            String host = opts.myAddr() != null ? opts.myAddr() : opts.bindAddr() != null && !opts.bindAddr().equals("0.0.0.0") ? opts.bindAddr() : "127.0.0.1";
            NodeId nid = NodeId.of(host, opts.port());
            if (opts.ioPort() != SheepOptions.NO_IO_PORT && !opts.gateway()) {
                // bound now: the node id advertises it from the join on
                ioPort = IoPortServer.bind(opts.ioAddr() != null ? opts.ioAddr() : opts.bindAddr(), opts.ioPort());
                nid = new NodeId(nid.addr(), nid.port(), NodeId.addrBytes(opts.ioAddr() != null ? opts.ioAddr() : host), ioPort.port());
            }
            long zone = opts.zone() >= 0 ? opts.zone() : nid.defaultZone();
            int vnodes = opts.gateway() ? 0 : opts.fixedVnodes() ? opts.vnodes() : Proto.DEFAULT_VNODES;
            SdNode self = new SdNode(nid, vnodes, zone, opts.gateway() ? 0 : config.space);
            if (config.ctime != 0 && !vnodesStrategyIs(config.flags)) {
                throw new IOException("Designation of before a restart and a vnodes option is different: the cluster was "
                        + "formatted with " + (opts.fixedVnodes() ? "auto vnodes (start without -V)" : "fixed vnodes (start with -V)"));
            }
            state = new NodeState(self);
            // an unformatted node shows its own strategy (dog cluster format checks that every node has the same)
            int flags = config.ctime == 0 ? (opts.fixedVnodes() ? 0 : Proto.CLUSTER_FLAG_AUTO_VNODES) : config.flags;
            state.setSettings(new ClusterSettings(config.ctime, flags, config.copies,
                    config.copyPolicy, config.blockSizeShift, config.defaultStore, false));
            int latest = epochLog.latest();
            if (latest > 0) {
                var rec = epochLog.read(latest);
                state.setView(Proto.STATUS_WAIT, latest, rec.nodes, List.of());
            }

            this.driver = driver != null ? driver : ClusterDrivers.create(opts.cluster());
            ObjectSizes sizes = new ObjectSizes(state, vdis);
            peer = new PeerService(store, state, sizes);
            peer.setStoreFailureHook(this::storeFailed);
            IoStats stats = new IoStats();
            gateway = new Gateway(state, vdis, peer, peers, sizes, stats);
            vdiOps = new VdiOps(gateway, vdis, state);
            // the main phase of cluster-wide operations on the cluster itself is the membership's (wired once both exist)
            clusterOps = new ClusterOps(this.driver, state, vdiOps, vdis, (sender, m) -> membership().clusterMain(sender, m));
            recovery = new RecoveryManager(state, store, gateway, peer.strips(), vdis,
                    req -> clusterOps.broadcast(req, Request.NO_DATA));
            recovery.setThrottle(opts.recoveryMax(), opts.recoveryIntervalMs());
            peer.setRecoveryHook(recovery);
            store.setListener((disk, why, left) -> {
                // a disk of several: its objects come back from their other copies onto the disks left; the last
                // one: the store failed, and the node leaves (the probe in checkStore says so)
                if (left == 0) {
                    Thread.ofVirtual().start(peer::checkStore);
                } else {
                    recovery.startLocal("disk " + disk + " failed");
                    reweighLater();
                }
            });
            store.setVanishedListener(() -> recovery.startLocal("object files were removed under the store"));
            membership = new Membership(this, state, epochLog, store, vdis, gateway, peers, clusterOps, recovery);
            LocalOps localOps = new LocalOps(this, state, vdis, vdiOps, store,
                    gateway, recovery, epochLog, membership, this.driver, writerLocks, stats);
            processor = new RequestProcessor(state, access, peer, gateway, clusterOps, localOps, stats);
            scanLocalInodes();
        } catch (IOException | ClusterDriverException | RuntimeException e) {
            // a daemon that cannot start gives its store back (tests start another one in the same JVM)
            if (ioPort != null) ioPort.close();
            try {
                l.release();
                lockChannel.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** Seeds the VDI bookkeeping from the inodes this node stores (live and stale); peers add theirs on join. */
    private void scanLocalInodes() throws IOException {
        List<Long> all = new ArrayList<>(store.list());
        for (long oid : all) {
            if (!Oids.isInode(oid)) continue;
            try {
                Inode i = Inode.decode(store.read(oid, 0, Inode.HEADER_FIELDS_SIZE));
                int vid = Oids.vid(oid);
                vdis.add(vid, 0, i.nrCopies, i.copyPolicy, i.blockSizeShift, i.parentVdiId);
                var s = vdis.state(vid);
                s.snapshot = i.isSnapshot();
                if (i.isDeleted()) vdis.markDeleted(vid);
            } catch (IOException | RuntimeException e) {
                LOG.warn("unreadable inode {}: {}", Oids.fileName(oid), e.toString());
            }
        }
    }

    /** Opens the listeners and joins the cluster. */
    public void start() throws IOException, ClusterDriverException {
        server = new SdServer(processor, this::clientGone, access);
        server.listenTcp(opts.bindAddr(), opts.port());
        server.listenUnix(base.resolve("sock"));
        if (ioPort != null) ioPort.start(state.self().nid(), processor, this::clientGone, access, server.peerBudget());
        if (opts.nbdPort() > 0) nbd = NbdSupport.start(this, opts.bindAddr(), opts.nbdPort());
        ClusterInfo ci = state.toClusterInfo();
        driver.join(state.self(), ci.encode(false), membership);
        if (opts.failureTimeoutMs() > 0) failures = new FailureDetector(state, driver::evict, opts.failureTimeoutMs()).start();
        if (peer != null) {
            // a hung disk (a check that never ends) takes the node out as a failed store does
            storeCheck = new StoreWatchdog(this::checkStore, STORE_CHECK_MS, opts.diskTimeoutMs(), this::storeFailed).start();
        }
        LOG.info("sheepdog daemon started: {} zone {} store {} cluster driver {}", state.self().nid(), state.self().zone(), base, driver.name());
    }

    /**
     * The periodic store check: the object disks (PeerService.checkStore), then the store directory itself, which keeps
     * the epoch log and the config and may be on a disk of its own ({@code sheep DIR,DISK...}): a node that cannot write
     * its epochs cannot follow the cluster, so it leaves as for a failed object store; one whose directory hangs never
     * ends this check, and the watchdog takes it out.
     */
    private void checkStore() {
        peer.checkStore();
        try {
            DirProbe.probe(base);
        } catch (IOException e) {
            storeFailed("the store directory " + base + " failed: " + e.getMessage());
        }
    }

    /** Set first thing by {@link #close}: the node is stopping on purpose. */
    private volatile boolean closing;

    /** The store failed or hangs ({@code why}): the node leaves and exits 1, and the others restore what it held. */
    private void storeFailed(String why) {
        if (closing) {
            LOG.info("while stopping: {} (not a failure: the store is being closed)", why);
            return;
        }
        fatal(why + "; leaving the cluster (the other nodes restore what it held)");
    }

    private void clientGone(ClientInfo c) {
        Thread.ofVirtual().start(() -> clusterOps.releaseLocksOf(c));
    }

    // ------------------------------------------------------------------ accessors for the parts

    public NodeState state() { return state; }
    public VdiRegistry vdis() { return vdis; }

    /** This node's NBD writers and the VDI lock handover (see {@link io.sheepdog.sheep.nbd.WriterLocks}). */
    public WriterLocks writerLocks() { return writerLocks; }

    private final WriterLocks writerLocks = new WriterLocks(
            new WriterLocks.Cluster() {
                @Override public int working(int vid) { return vdis.workingVid(vid); }

                @Override public NodeId holderNode(int vid) {
                    VdiState s = vdis.state(vdis.workingVid(vid));
                    return s != null && s.locked() ? s.lockOwner : null;
                }

                @Override public boolean holds(int vid, ClientInfo client) {
                    VdiState s = vdis.state(vdis.workingVid(vid));
                    return s != null && s.locked() && state.self().nid().equals(s.lockOwner)
                            && s.lockConnection == client.connectionId();
                }

                @Override public NodeId self() { return state.self().nid(); }

                @Override public int askHandover(NodeId node, int vid) {
                    for (SdNode n : state.view().members()) {
                        if (!n.nid().equals(node)) continue;
                        SdRequest req = SdRequest.of(Opcodes.HANDOVER_VDI).objOid(vid);
                        return gateway.send(n, req, null).result();
                    }
                    return SdResult.SUCCESS; // its node left: the cluster released the lock with it
                }
            });
    public ObjectStore store() { return store; }
    /** The disks of this node's store ({@code dog node md}). */
    public MultiDiskStore disks() { return store; }
    public Path baseDir() { return base; }
    public EpochLog epochLog() { return epochLog; }
    public PeerPool peers() { return peers; }
    public PeerService peer() { return peer; }
    public Gateway gateway() { return gateway; }
    public VdiOps vdiOps() { return vdiOps; }
    public ClusterOps clusterOps() { return clusterOps; }
    public Membership membership() { return membership; }
    public RecoveryManager recovery() { return recovery; }
    public RequestProcessor processor() { return processor; }
    public ClusterDriver driver() { return driver; }
    public SheepOptions options() { return opts; }

    /** Who may connect and do what (sheep --allow, --admin-allow). */
    public AccessPolicy access() { return access; }

    /** The I/O port's server, or null if this node has none ({@code -i off}, a gateway). */
    public IoPortServer ioPort() { return ioPort; }
    public boolean wasUncleanStop() { return uncleanStop; }
    @Override public boolean isGateway() { return opts.gateway(); }

    @Override public boolean fixedVnodes() { return opts.fixedVnodes(); }

    @Override public int logLevel() { return logLevel; }

    public void setLogLevel(int lvl) {
        logLevel = lvl;
        SheepLogging.setLevel(lvl);
    }

    /**
     * {@code node_config} (16 bytes, a NUL-padded store driver name) as {@code dog node format <dir> <driver>} writes
     * it into the store directory; null if there is none. (The original sheep looks for it one directory up, so it
     * only took effect for store paths given with a trailing slash.)
     */
    private static String readNodeConfig(Path f) throws IOException {
        if (!Files.exists(f)) return null;
        byte[] b = Files.readAllBytes(f);
        String name = Strings.read(ByteBuffer.wrap(Arrays.copyOf(b, 16)), 0, 16);
        if (FileObjectStore.Layout.ofDriver(name) == null) {
            throw new IOException(f + " names the store driver '" + name + "': expected plain or tree");
        }
        return name;
    }

    /**
     * Lays objects out as this node's store driver says: its own {@code node_config} if it has one, else the
     * cluster's ({@code clusterDriver}, from the config, a format or the cluster info of a join). A store that holds
     * objects keeps its layout (they would not be found in another one).
     */
    public void useStoreDriver(String clusterDriver) throws IOException {
        String name = nodeStoreDriver != null ? nodeStoreDriver : clusterDriver;
        FileObjectStore.Layout l = FileObjectStore.Layout.ofDriver(name);
        if (l == null) throw new IOException("unknown store driver '" + name + "'");
        if (l != store.layout()) {
            store.useLayout(l);
            LOG.info("objects are stored with the {} layout", l.name().toLowerCase(Locale.ROOT));
        }
    }

    /**
     * REWEIGHT (dog cluster reweight), on every node: measures the space this node's store may use (free plus used by
     * objects) and, if it moved by 1 % or more from what the cluster knows, tells the cluster, which moves to a new
     * epoch with the node's new weight.
     */
    /**
     * After this node's disks changed (one failed, or was plugged or unplugged): its weight follows its space, off the
     * caller's thread (a request's, or the one that found a failed disk).
     */
    public void reweighLater() {
        Thread.ofVirtual().name("reweigh").start(() -> {
            if (state.status() == Proto.STATUS_OK) reweigh();
        });
    }

    public void reweigh() {
        if (opts.gateway()) return;
        try {
            // one directory: what its file system offers now; several disks: the space each was measured with
            long now = Math.max(1, opts.disks().isEmpty() && store.paths().size() == 1
                    ? store.freeBytes() + store.usedBytes() : store.space());
            SdNode self = state.self();
            if (Math.abs(now - self.space()) * 100 < self.space()) return;
            LOG.info("store space {} -> {} bytes: updating this node's weight", self.space(), now);
            config.space = now;
            saveConfig(false);
            driver.updateNode(self.withSpace(now));
        } catch (IOException e) {
            LOG.error("cannot measure the store's space: {}", e.toString());
        }
    }

    /**
     * Whether a formatted cluster with {@code clusterFlags} uses this node's vnodes strategy: fixed vnodes if and only
     * if it was started with -V (a gateway has no vnodes, so any strategy suits it).
     */
    public boolean vnodesStrategyIs(int clusterFlags) {
        return opts.gateway() || ((clusterFlags & Proto.CLUSTER_FLAG_AUTO_VNODES) == 0) == opts.fixedVnodes();
    }

    public synchronized void saveConfig(boolean shutdown) throws IOException {
        var s = state.settings();
        config.ctime = s.ctime();
        config.flags = s.flags();
        config.copies = s.copies();
        config.copyPolicy = s.copyPolicy();
        config.blockSizeShift = s.blockSizeShift();
        config.defaultStore = s.defaultStore();
        config.shutdown = shutdown;
        config.save(base.resolve("config"));
    }

    /** Main phase of SHUTDOWN: stop serving, remember the clean stop, exit once requests drain. */
    public void shutdownCluster() {
        state.setStatus(Proto.STATUS_SHUTDOWN);
        try {
            if (!recovery.inRecovery()) saveConfig(true);
        } catch (IOException e) {
            LOG.error("cannot record the clean shutdown: {}", e.toString());
        }
        LOG.info("cluster shutdown requested: exiting");
        exitSoon(0, false);
    }

    /** KILL_NODE: leave the cluster and exit. */
    public void killSoon() {
        state.setStatus(Proto.STATUS_KILLED);
        LOG.info("killed by request");
        exitSoon(0, true);
    }

    /** An unrecoverable condition: say why and exit non-zero. */
    public void fatal(String why) {
        exitSoon(1, true); // first: telling why may block (a stderr on the disk that hangs)
        LOG.error("fatal: {}", why);
        System.err.println("sheep: " + why); // the operator of a foreground sheep sees why it stopped
    }

    /**
     * How long a stop (SIGTERM, or a fatal one) may take to leave and close before the process halts anyway: a driver
     * whose server is gone or a hung disk can block it for ever.
     */
    static final long EXIT_WITHIN_MS = 10_000;

    /**
     * Halts the process with {@code code} after {@code ms}, whatever the stop under way still waits for; {@code say}
     * tells why first (it must not block for long), and the queued log lines are written out.
     */
    static void haltAfter(long ms, int code, String threadName, Runnable say) {
        Thread.ofPlatform().daemon().name(threadName).start(() -> {
            try {
                Thread.sleep(ms);
            } catch (InterruptedException ignored) { }
            say.run();
            SheepLogging.flush();
            Runtime.getRuntime().halt(code);
        });
    }

    private void exitSoon(int code, boolean leave) {
        haltAfter(EXIT_WITHIN_MS, code, "sheep-exit-deadline",
                () -> LOG.warn("still stopping after {} ms (a store that does not answer?): halting", EXIT_WITHIN_MS));
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(300); // let the reply that caused this go out
            } catch (InterruptedException ignored) { }
            try {
                if (leave) driver.leave();
                close();
            } catch (RuntimeException | Error e) {
                // (a failed store may not close cleanly) the exit status must still say why the process ended
                LOG.warn("while stopping: {}", e.toString());
            } finally {
                SheepLogging.flush();
                Runtime.getRuntime().halt(code);
            }
        }, "sheep-exit");
        // not a daemon: made from a virtual thread it would be one, and the JVM could end (status 0) on its own once
        // close() stopped the other threads, before this one halts with the status that says why
        t.setDaemon(false);
        t.start();
    }

    @Override
    public void close() {
        // first: from here on, errors from the store being closed (or a check cut short) are not a failed store, which
        // would exit the process with status 1
        closing = true;
        if (peer != null) peer.closing();
        StoreWatchdog check = storeCheck;
        if (check != null) check.close();
        if (failures != null) failures.close();
        try { if (server != null) server.close(); } catch (RuntimeException ignored) { }
        try { if (ioPort != null) ioPort.close(); } catch (RuntimeException ignored) { }
        try { if (nbd != null) nbd.close(); } catch (Exception ignored) { }
        recovery.close();
        driver.close();
        peers.close();
        store.close();
        try {
            lock.release();
            lockChannel.close();
        } catch (IOException ignored) { }
    }

}
