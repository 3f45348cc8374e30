package io.sheepdog.sheep.node;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.cluster.ClusterListener;
import io.sheepdog.sheep.gateway.Gateway;
import io.sheepdog.sheep.gateway.PeerPool;
import io.sheepdog.sheep.ops.ClusterOps;
import io.sheepdog.sheep.ops.OpMessage;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.recovery.RecoveryManager;
import io.sheepdog.sheep.store.FileObjectStore;
import io.sheepdog.sheep.store.ObjectStore;
import io.sheepdog.sheep.vdi.VdiOps;
import io.sheepdog.sheep.vdi.VdiRegistry;
import io.sheepdog.sheep.vdi.VdiState;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How this node follows the cluster's membership (docs/daemon.md §5): the master's join decision, acceptance on every
 * node, leaves, epochs and when recovery starts, plus the main phase of the cluster-wide administrative operations
 * (format, shutdown, recovery switches). All of it runs on the cluster driver's event thread, in the total order.
 */
public final class Membership implements ClusterListener {
    private static final Logger LOG = LoggerFactory.getLogger(Membership.class);
    /** What only the node as a whole can do, or knows. */
    public interface Node {
        /** Ends the process with status 1, saying why. */
        void fatal(String why);
        /** Whether a cluster formatted with {@code clusterFlags} uses this node's vnodes strategy. */
        boolean vnodesStrategyIs(int clusterFlags);
        boolean fixedVnodes();
        /** Stores objects as the cluster's store driver says ({@code plain}, {@code tree}). */
        void useStoreDriver(String name) throws IOException;
        /** Writes the node's config (cluster settings, clean stop). */
        void saveConfig(boolean shutdown) throws IOException;
        boolean wasUncleanStop();
        /** SHUTDOWN's main phase: stop serving, remember the clean stop, exit. */
        void shutdownCluster();
        /** REWEIGHT's main phase: the node's weight follows its space. */
        void reweigh();
    }

    private final Node node;
    private final NodeState state;
    private final EpochLog epochLog;
    private final ObjectStore store;
    private final VdiRegistry vdis;
    private final Gateway gateway;
    private final PeerPool peers;
    private final ClusterOps clusterOps;
    private final RecoveryManager recovery;

    public Membership(Node node, NodeState state, EpochLog epochLog, ObjectStore store, VdiRegistry vdis, Gateway gateway,
                      PeerPool peers, ClusterOps clusterOps, RecoveryManager recovery) {
        this.node = node;
        this.state = state;
        this.epochLog = epochLog;
        this.store = store;
        this.vdis = vdis;
        this.gateway = gateway;
        this.peers = peers;
        this.clusterOps = clusterOps;
        this.recovery = recovery;
    }

    /** Pulls VDI state from the peers after a join (the joiner from all, the others from the joiner), off this thread. */
    private void exchangeVdiState(SdNode joined, List<SdNode> members, boolean me) {
        List<SdNode> from = members.stream().filter(n -> me || n.nid().equals(joined.nid())).toList();
        // the joiner learns the locks from the members; the members have them all already
        Thread.ofVirtual().start(() -> gateway.pullVdiStates(from, me));
    }

    // ------------------------------------------------------------------ join

    @Override
    public JoinDecision onJoinRequest(SdNode joining, List<SdNode> members, byte[] message) {
        ClusterInfo theirs = ClusterInfo.decode(ByteBuffer.wrap(message));
        boolean alone = members.isEmpty();
        ClusterInfo base = alone ? theirs : state.toClusterInfo();
        if (theirs.protoVer != Proto.SHEEP_PROTO_VER) {
            LOG.warn("{} speaks protocol {}, not {}", joining, theirs.protoVer, Proto.SHEEP_PROTO_VER);
        }
        if (!alone && base.ctime != 0 && theirs.ctime != 0 && base.ctime != theirs.ctime) {
            // A store formatted by another cluster: refuse it here, so that the members never count it in an
            // epoch (accepting it and letting it leave would cost two epochs and a recovery toward a node that dies).
            String why = "its store directory belongs to another cluster (created " + (theirs.ctime >>> 32)
                    + ", this cluster was created " + (base.ctime >>> 32) + "); start it with an empty store directory";
            LOG.warn("refusing {}: {}", joining.nid(), why);
            return new JoinDecision(false, why.getBytes(StandardCharsets.UTF_8));
        }
        if (!alone && base.status == Proto.STATUS_OK) {
            boolean replaces = false;
            for (SdNode n : state.view().members()) if (n.nid().equals(joining.nid())) replaces = true;
            if (replaces && !sameNodes(base.nodes, members)) {
                // The joiner replaces a predecessor with its address (it re-joined after losing its session, or
                // restarted): every node delivers the predecessor's leave just before this ACCEPT, and that leave
                // makes an epoch. Answer as of after it, or the ACCEPT would take every node back an epoch.
                base.epoch += 1;
                base.nodes = new ArrayList<>(members);
            }
        }
        if (!alone && base.status == Proto.STATUS_OK && base.ctime != 0 && base.ctime == theirs.ctime
                && theirs.epoch > base.epoch) {
            // The joiner saw epochs this cluster did not (it went on without the others while the cluster driver was
            // away, and re-joins): continue above its epoch, so that no node's epoch ever goes back. An epoch number
            // used twice for different member sets would make peers agree on a number and disagree on the placement.
            LOG.info("{} re-joins at epoch {}, newer than this cluster's {}: the next epoch follows its", joining.nid(),
                    theirs.epoch, base.epoch);
            base.epoch = theirs.epoch;
        }
        if (!alone && base.status != Proto.STATUS_OK) {
            // the cluster is (re)starting: the member with the newest epoch knows the real membership
            boolean sameCluster = base.ctime == 0 || theirs.ctime == 0 || base.ctime == theirs.ctime;
            if (sameCluster && (theirs.epoch > base.epoch || base.ctime == 0 && theirs.ctime != 0)) base = theirs;
        }
        if (base.status != Proto.STATUS_OK && base.ctime != 0) {
            Set<NodeId> present = new HashSet<>();
            for (SdNode n : members) present.add(n.nid());
            present.add(joining.nid());
            boolean all = !base.nodes.isEmpty();
            for (SdNode n : base.nodes) if (!present.contains(n.nid())) { all = false; break; }
            base.status = all ? Proto.STATUS_OK : Proto.STATUS_WAIT;
        }
        return new JoinDecision(true, base.encode(false));
    }

    @Override
    public void onAccept(SdNode joined, List<SdNode> members, byte[] message) {
        ClusterInfo c = ClusterInfo.decode(ByteBuffer.wrap(message));
        boolean me = joined.nid().equals(state.self().nid());
        long myCtime = state.settings().ctime();
        if (me && myCtime != 0 && c.ctime != 0 && myCtime != c.ctime) {
            LOG.error("refusing to join: this store belongs to another cluster (created {}, the cluster was created {}); "
                    + "use an empty store directory", c.ctime >>> 32, myCtime >>> 32);
            node.fatal("the store directory belongs to another cluster");
            return;
        }
        if (me && c.ctime == 0 && myCtime != 0) {
            // we are formatted and the cluster is not: keep our settings, the others adopt them at the next epoch
            c = state.toClusterInfo();
        }
        boolean wasMemberOfLatest = false;
        for (SdNode n : c.nodes) if (n.nid().equals(state.self().nid())) wasMemberOfLatest = true;
        int myOldEpoch = state.epoch();
        if (me && c.ctime != 0 && c.epoch < myOldEpoch) {
            // cannot happen with a master of this version (it continues above the joiner's epoch)
            LOG.warn("the cluster answered with epoch {}, older than this node's {}", c.epoch, myOldEpoch);
        }
        if (me && c.ctime != 0 && !node.vnodesStrategyIs(c.flags)) {
            LOG.error("refusing to join: the cluster uses {} vnodes and this node was started {} -V",
                    node.fixedVnodes() ? "auto" : "fixed", node.fixedVnodes() ? "with" : "without");
            node.fatal("the cluster's vnodes strategy is not this node's");
            return;
        }
        boolean myAuto = state.autoVnodes();
        state.adopt(c);
        if (c.ctime == 0) {
            // an unformatted cluster has no strategy yet: each node keeps its own until the format
            state.updateSettings(s -> s.withFlags((s.flags() & ~Proto.CLUSTER_FLAG_AUTO_VNODES)
                    | (myAuto ? Proto.CLUSTER_FLAG_AUTO_VNODES : 0)));
        }
        if (me) {
            try {
                node.useStoreDriver(c.defaultStore); // a new node stores objects as the cluster was formatted
            } catch (IOException e) {
                LOG.error("keeping this node's object layout: {}", e.getMessage());
            }
        }
        // A node that joins while `dog cluster recover disable` is in force must hold its recovery too: the flag
        // comes with the cluster info, but the recovery manager only heard of it from the DISABLE_RECOVER it missed.
        recovery.setEnabled(!c.disableRecovery);
        try {
            if (c.ctime != 0) node.saveConfig(false);
            // a member records the cluster's epoch if it lacks it; the joiner fetches the record (with its real date)
            // from the others, below, and writes its own only if none has it
            if (!me && c.epoch > 0 && epochLog.read(c.epoch) == null) epochLog.write(c.epoch, c.nodes, System.currentTimeMillis() / 1000);
        } catch (IOException e) {
            LOG.error("cannot persist cluster state: {}", e.toString());
        }
        if (c.status == Proto.STATUS_OK) {
            List<SdNode> prevNodes = c.nodes;
            if (me && !wasMemberOfLatest && c.epoch > 0) {
                // we missed epochs: what we hold may be outdated; keep it only as a recovery source
                recovery.moveAllToStale(myOldEpoch);
            }
            if (!sameNodes(prevNodes, members)) {
                newEpoch(c.epoch + 1, members, prevNodes, c.epoch);
            } else {
                state.setView(Proto.STATUS_OK, c.epoch, prevNodes, members);
                if (me && node.wasUncleanStop()) recovery.start(c.epoch, prevNodes, c.epoch);
            }
        } else {
            state.setView(Proto.STATUS_WAIT, c.epoch, c.nodes, members);
        }
        if (me && c.epoch > 0) fetchMissingEpochs(c.epoch, c.nodes, members);
        LOG.info("{} joined; {} members, epoch {}, status {}", joined.nid(), members.size(), state.epoch(), statusName(state.status()));
        exchangeVdiState(joined, members, me);
    }

    // ------------------------------------------------------------------ leave

    @Override
    public void onLeave(SdNode left, List<SdNode> remaining) {
        peers.forget(left.nid());
        vdis.unlockAllOf(left.nid());
        boolean me = left.nid().equals(state.self().nid());
        if (state.status() == Proto.STATUS_OK && !me && !remaining.isEmpty()) {
            // Only the nodes that stay record the epoch of a departure. A node that recorded its own leave (the
            // last one to stop even wrote an epoch with no members at all) came back with a newest epoch whose
            // members could never all be present, and the whole cluster waited for ever after every node stopped.
            ClusterInfo c = state.toClusterInfo();
            if (!sameNodes(c.nodes, remaining)) newEpoch(c.epoch + 1, remaining, c.nodes, c.epoch);
            else state.setMembers(remaining);
        } else {
            state.setMembers(remaining);
        }
        LOG.info("{} left; {} members, epoch {}", left.nid(), remaining.size(), state.epoch());
    }

    @Override
    public void onNotify(SdNode sender, byte[] message) { clusterOps.onNotify(sender, message); }

    @Override
    public boolean onBlock() { return clusterOps.onBlock(); }

    @Override
    public void onUpdateNode(SdNode node) {
        if (node.nid().equals(state.self().nid())) state.setSelf(node);
        ClusterView v = state.view();
        List<SdNode> members = new ArrayList<>(v.members());
        members.replaceAll(n -> n.nid().equals(node.nid()) ? node : n);
        if (v.status() == Proto.STATUS_OK) {
            // its weight in the ring changes: a new epoch, and the objects move (docs/daemon.md §5.2)
            LOG.info("{} now has {} bytes of space and {} vnodes: epoch {}", node.nid(), node.space(), node.nrVnodes(),
                    v.epoch() + 1);
            newEpoch(v.epoch() + 1, members, v.epochNodes(), v.epoch());
        } else {
            state.setMembers(members);
        }
    }

    @Override
    public void onDriverHealth(boolean healthy, String reason) {
        onDriverHealth(healthy, reason, 0);
    }

    @Override
    public void onDriverHealth(boolean healthy, String reason, long memberUntilNanos) {
        state.setDriverHealth(healthy, reason, memberUntilNanos);
        if (healthy) {
            LOG.info("cluster driver is healthy again");
        } else if (memberUntilNanos != 0) {
            long ms = Math.max(0, TimeUnit.NANOSECONDS.toMillis(memberUntilNanos - System.nanoTime()));
            LOG.error("cluster driver lost its server: {}; serving writes for {} ms more at most (until its session "
                    + "could expire), then not until it is back", reason, ms);
        } else {
            LOG.error("cluster driver lost its server, not serving writes: {}", reason);
        }
    }

    @Override
    public void onJoinRefused(String reason) {
        // nothing this node can do in a cluster that does not want it: say why and exit
        node.fatal("the cluster refused this node: " + reason);
    }

    @Override
    public byte[] onRejoin(String reason) {
        LOG.warn("dropped from the cluster ({}): joining again", reason);
        clusterOps.failPending("the cluster driver lost its session: " + reason);
        // Re-join as a restarting node does (WAIT): a member of a running cluster lets it in at once, but nodes that
        // all lost their sessions (a long ZooKeeper outage) wait until the members of their last epoch are back, as
        // after a restart. A node that re-joined first with OK would run a cluster of its own, writing with fewer
        // copies while the others still write theirs: two histories of the same objects.
        state.setRejoining();
        ClusterInfo c = state.toClusterInfo();
        if (c.ctime != 0) c.status = Proto.STATUS_WAIT;
        return c.encode(false);
    }

    /**
     * A node that was away (or is new) lacks the epochs the cluster went through meanwhile: fetch their records from
     * the members (GET_EPOCH), so that its epoch history (STAT_CLUSTER, {@code dog cluster info}) is the cluster's.
     */
    private void fetchMissingEpochs(int current, List<SdNode> currentNodes, List<SdNode> members) {
        Thread.ofVirtual().name("epoch-catch-up").start(() -> {
            try {
                // the current epoch first: without its record this node could not tell the others what it is
                if (epochLog.read(current) == null && !fetchEpoch(current, members)
                        && epochLog.read(current) == null) {
                    epochLog.write(current, currentNodes, System.currentTimeMillis() / 1000);
                }
                for (int e = 1; e < current; e++) {
                    if (epochLog.read(e) == null && !fetchEpoch(e, members)) return;
                }
            } catch (IOException | RuntimeException ex) {
                LOG.warn("cannot fetch the epoch records this node missed: {}", ex.toString());
            }
        });
    }

    /** Fetches epoch {@code e}'s record from the first of {@code members} that has it and keeps it; false if none. */
    private boolean fetchEpoch(int e, List<SdNode> members) throws IOException {
        for (SdNode n : members) {
            if (n.nid().equals(state.self().nid())) continue;
            SdRequest req = SdRequest.of(Opcodes.GET_EPOCH).objTgtEpoch(e)
                    .dataLength(8 + (long) SdNode.SIZE * Proto.MAX_NODES);
            try {
                Reply r = gateway.send(n, req, null);
                if (r.result() == SdResult.SUCCESS) {
                    epochLog.writeRaw(e, r.data());
                    return true;
                }
            } catch (IOException | RuntimeException ex) {
                LOG.debug("epoch {} from {}: {}", e, n.nid(), ex.toString());
            }
        }
        return false;
    }

    private void newEpoch(int epoch, List<SdNode> members, List<SdNode> prevNodes, int prevEpoch) {
        try {
            epochLog.write(epoch, members, System.currentTimeMillis() / 1000);
        } catch (IOException e) {
            LOG.error("cannot write epoch {}: {}", epoch, e.toString());
        }
        // Recovery first, then the view: a peer request of the new epoch that passes the epoch check must find the
        // new recovery run (and wait for its object list), not none. Otherwise it would touch an object that is not
        // here yet (a rejoining node keeps its old objects only as stale copies) and fail with NO_OBJ, or a create
        // would make a fresh copy that recovery then skips. The run waits for this view before it reads it.
        recovery.start(epoch, prevNodes, prevEpoch);
        state.setView(Proto.STATUS_OK, epoch, members, members);
    }

    static boolean sameNodes(List<SdNode> a, List<SdNode> b) {
        Set<NodeId> x = new HashSet<>();
        for (SdNode n : a) x.add(n.nid());
        Set<NodeId> y = new HashSet<>();
        for (SdNode n : b) y.add(n.nid());
        return x.equals(y);
    }

    public static String statusName(int s) {
        return switch (s) {
            case Proto.STATUS_OK -> "running";
            case Proto.STATUS_WAIT -> "waiting";
            case Proto.STATUS_SHUTDOWN -> "shutdown";
            case Proto.STATUS_KILLED -> "killed";
            default -> "unknown";
        };
    }

    // ------------------------------------------------------------------ main phase of administrative ops

    public Reply clusterMain(SdNode sender, OpMessage m) {
        SdRequest h = m.req();
        SdResponse rsp = m.rsp();
        switch (h.opcode()) {
            case Opcodes.MAKE_FS -> rsp.result(format(h, m.reqData()));
            case Opcodes.SHUTDOWN -> node.shutdownCluster();
            case Opcodes.ENABLE_RECOVER -> {
                state.updateSettings(s -> s.withDisableRecovery(false));
                recovery.setEnabled(true);
            }
            case Opcodes.DISABLE_RECOVER -> {
                state.updateSettings(s -> s.withDisableRecovery(true));
                recovery.setEnabled(false);
            }
            case Opcodes.FORCE_RECOVER -> {
                if (state.status() == Proto.STATUS_WAIT && state.formatted()) {
                    ClusterInfo c = state.toClusterInfo();
                    List<SdNode> members = state.view().members();
                    newEpoch(c.epoch + 1, members, c.nodes, c.epoch);
                } else {
                    rsp.result(SdResult.FORCE_RECOVER);
                }
            }
            case Opcodes.REWEIGHT -> node.reweigh();
            case Opcodes.ALTER_CLUSTER_COPY -> {
                // an erasure-coded cluster's copies are its d+p strips: they cannot change on their own
                if (state.settings().copyPolicy() != 0 || h.clusterCopyPolicy() != 0) {
                    rsp.result(SdResult.NO_SUPPORT);
                } else {
                    state.updateSettings(s -> s.withCopies(h.clusterCopies()));
                    saveQuietly();
                }
            }
            case Opcodes.ALTER_VDI_COPY -> {
                // dog vdi alter-copy: the VDI's objects get the new number of copies. Every node applies it at the
                // same point of the event order, then checks its objects against the placement (a recovery without
                // an epoch change): new copies are fetched, surplus ones become stale and go once all are done.
                VdiState st = vdis.state(h.vdiStateNewVid());
                int copies = h.vdiStateCopies();
                if (st == null) {
                    rsp.result(SdResult.NO_VDI);
                } else if (st.copyPolicy != 0 || h.clusterCopyPolicy() != 0) {
                    rsp.result(SdResult.NO_SUPPORT);
                } else if (copies < 1 || copies > Proto.MAX_COPIES) {
                    rsp.result(SdResult.INVALID_PARMS);
                } else {
                    int old = st.nrCopies;
                    st.nrCopies = copies;
                    LOG.info("VDI {} now has {} copies (was {}): checking its objects", Integer.toHexString(st.vid),
                            copies, old);
                    ClusterView v = state.view();
                    if (v.status() == Proto.STATUS_OK) recovery.start(v.epoch(), v.epochNodes(), v.epoch());
                }
            }
            case Opcodes.COMPLETE_RECOVERY -> recovery.onCompleted(sender, h.objTgtEpoch());
            case Opcodes.CLEANUP -> {
                try {
                    store.purgeStale();
                } catch (IOException e) {
                    rsp.result(SdResult.EIO);
                }
            }
            default -> rsp.result(SdResult.INVALID_PARMS);
        }
        return new Reply(rsp, Request.NO_DATA);
    }

    private int format(SdRequest h, byte[] data) {
        String driverName = VdiOps.nameOf(data, 0);
        if (driverName.isEmpty()) driverName = "plain";
        if (FileObjectStore.Layout.ofDriver(driverName) == null) return SdResult.NO_STORE;
        int policy = h.clusterCopyPolicy();
        if (policy != 0 && !ErasureCode.isValidPolicy(policy)) return SdResult.INVALID_PARMS;
        // VID recycling and full-disk avoidance are not implemented: refuse them rather than ignore them
        if ((h.clusterFlags() & (Proto.CLUSTER_FLAG_RECYCLE_VID | Proto.CLUSTER_FLAG_AVOID_DISKFULL)) != 0) return SdResult.NO_SUPPORT;
        try {
            recovery.stop();
            store.wipe();
            node.useStoreDriver(driverName);
            epochLog.clear();
            vdis.clear();
            int copies = h.clusterCopies() == 0 ? Proto.DEFAULT_COPIES : h.clusterCopies();
            if (policy != 0) copies = ErasureCode.of(policy).totalStrips();
            // the whole settings at once (the ring of the view below follows the flags' vnodes strategy)
            state.setSettings(new ClusterSettings(h.clusterCtime(), h.clusterFlags(), copies, policy,
                    h.clusterBlockSizeShift(), driverName, false));
            recovery.setEnabled(true); // a fresh cluster recovers again, whatever the old one said
            List<SdNode> members = new ArrayList<>(state.view().members());
            epochLog.write(1, members, System.currentTimeMillis() / 1000);
            state.setView(Proto.STATUS_OK, 1, members, members);
            node.saveConfig(false);
            LOG.info("cluster formatted: copies {}{}, store {}", copies,
                    policy == 0 ? "" : " (erasure code " + ErasureCode.dataStrips(policy) + ":"
                            + ErasureCode.parityStrips(policy) + ")", driverName);
            return SdResult.SUCCESS;
        } catch (IOException e) {
            LOG.error("format failed: {}", e.toString());
            return SdResult.EIO;
        }
    }

    private void saveQuietly() {
        try {
            node.saveConfig(false);
        } catch (IOException e) {
            LOG.error("cannot save config: {}", e.toString());
        }
    }

    /** Epoch records for STAT_CLUSTER, newest first. */
    public List<EpochRecord> epochRecords(int max) throws IOException {
        List<EpochRecord> out = new ArrayList<>();
        List<SdNode> members = state.view().members();
        for (int e = state.epoch(); e >= 1 && out.size() < max; e--) {
            EpochRecord r = epochLog.read(e);
            // an epoch this node did not witness (it joined later, or was away): the others have it, as the
            // original fetches it whenever it is asked
            if (r == null && fetchEpoch(e, members)) r = epochLog.read(e);
            if (r == null) continue;
            out.add(r);
        }
        return out;
    }
}
