package io.sheepdog.sheep.parts;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.sheep.access.AccessOptions;
import io.sheepdog.sheep.access.AccessPolicy;
import io.sheepdog.sheep.cluster.SoloClusterDriver;
import io.sheepdog.sheep.gateway.Gateway;
import io.sheepdog.sheep.gateway.PeerPool;
import io.sheepdog.sheep.gateway.PeerService;
import io.sheepdog.sheep.nbd.WriterLocks;
import io.sheepdog.sheep.node.EpochLog;
import io.sheepdog.sheep.node.Membership;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.ClusterOps;
import io.sheepdog.sheep.ops.IoStats;
import io.sheepdog.sheep.ops.LocalOps;
import io.sheepdog.sheep.ops.RequestProcessor;
import io.sheepdog.sheep.recovery.RecoveryManager;
import io.sheepdog.sheep.store.MultiDiskStore;
import io.sheepdog.sheep.store.ObjectSizes;
import io.sheepdog.sheep.vdi.VdiOps;
import io.sheepdog.sheep.vdi.VdiRegistry;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The parts of one sheep, wired as {@code Sheep} wires them but without it and without a network: a store in a
 * temporary directory, a node that is the whole cluster, a cluster driver that is never started. Tests build the
 * parts they look at from here (as Ratis tests build a {@code MiniRaftCluster}) and drive them directly. What the node
 * as a whole would do (exit, save its config, ...) is recorded in {@link #events}.
 */
public final class OneNode implements AutoCloseable, LocalOps.Node, Membership.Node {
    public final SdNode self = new SdNode(NodeId.of("127.0.0.1", 7000), Proto.DEFAULT_VNODES, 0, 1L << 30);
    public final NodeState state = new NodeState(self);
    public final VdiRegistry vdis = new VdiRegistry();
    public final MultiDiskStore store;
    public final ObjectSizes sizes = new ObjectSizes(state, vdis);
    public final PeerService peer;
    public final PeerPool peers = new PeerPool(1000);
    public final Gateway gateway;
    public final VdiOps vdiOps;
    public final SoloClusterDriver driver = new SoloClusterDriver();
    public final EpochLog epochLog;
    public final List<SdRequest> broadcasts = new CopyOnWriteArrayList<>();
    public final RecoveryManager recovery;
    public final ClusterOps clusterOps;
    public final Membership membership;
    public final WriterLocks writerLocks;
    public final IoStats stats = new IoStats();
    public final LocalOps localOps;
    public final RequestProcessor processor;
    /** What the parts asked of the node: "fatal: ...", "saveConfig", "shutdown", "reweigh", "kill", "store plain". */
    public final List<String> events = new CopyOnWriteArrayList<>();

    /** A running one-node cluster (formatted, epoch 1, copies 1) over {@code dir}. */
    public OneNode(Path dir) throws IOException {
        this(dir, AccessOptions.OPEN);
    }

    public OneNode(Path dir, AccessOptions access) throws IOException {
        store = new MultiDiskStore(List.of(dir.resolve("obj")), false);
        epochLog = new EpochLog(dir.resolve("epoch"));
        peer = new PeerService(store, state, sizes);
        gateway = new Gateway(state, vdis, peer, peers, sizes, stats);
        vdiOps = new VdiOps(gateway, vdis, state);
        recovery = new RecoveryManager(state, store, gateway, peer.strips(), vdis, broadcasts::add);
        peer.setRecoveryHook(recovery);
        clusterOps = new ClusterOps(driver, state, vdiOps, vdis, (sender, m) -> membership().clusterMain(sender, m));
        membership = new Membership(this, state, epochLog, store, vdis, gateway, peers, clusterOps, recovery);
        writerLocks = new WriterLocks(new WriterLocks.Cluster() {
            @Override public NodeId holderNode(int vid) { return null; }
            @Override public boolean holds(int vid, ClientInfo client) { return false; }
            @Override public NodeId self() { return self.nid(); }
            @Override public int askHandover(NodeId node, int vid) { return 0; }
        });
        localOps = new LocalOps(this, state, vdis, vdiOps, store, gateway, recovery, epochLog, membership, driver,
                writerLocks, stats);
        processor = new RequestProcessor(state, new AccessPolicy(access, () -> state.view().members()), peer, gateway,
                clusterOps, localOps, stats);
        state.setSettings(new io.sheepdog.sheep.node.ClusterSettings(1, Proto.CLUSTER_FLAG_AUTO_VNODES, 1, 0,
                Proto.DEFAULT_BLOCK_SIZE_SHIFT, "plain", false));
        state.setView(Proto.STATUS_OK, 1, List.of(self), List.of(self));
        epochLog.write(1, List.of(self), 1);
    }

    private Membership membership() { return membership; }

    // ------------------------------------------------------------------ the node as a whole, recorded

    @Override public boolean isGateway() { return false; }
    @Override public int logLevel() { return 6; }
    @Override public void setLogLevel(int level) { events.add("loglevel " + level); }
    @Override public void killSoon() { events.add("kill"); }
    @Override public void reweighLater() { events.add("reweigh"); }
    @Override public void fatal(String why) { events.add("fatal: " + why); }
    @Override public boolean vnodesStrategyIs(int clusterFlags) { return (clusterFlags & Proto.CLUSTER_FLAG_AUTO_VNODES) != 0; }
    @Override public boolean fixedVnodes() { return false; }
    @Override public void useStoreDriver(String name) { events.add("store " + name); }
    @Override public void saveConfig(boolean shutdown) { events.add(shutdown ? "saveConfig shutdown" : "saveConfig"); }
    @Override public boolean wasUncleanStop() { return false; }
    @Override public void shutdownCluster() { events.add("shutdown"); }
    @Override public void reweigh() { events.add("reweigh"); }

    @Override
    public void close() {
        recovery.stop();
        store.close();
    }
}
