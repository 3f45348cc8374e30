package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.client.VdiBitmap;
import io.sheepdog.client.VdiEnumerator;
import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdResult;
import java.io.EOFException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** {@code dog cluster ...} (docs/dog.md §4). */
final class ClusterCmds {
    private ClusterCmds() {}

    /** {@code cluster info [-v] [-r] [-d]}. */
    static int info(Ctx c) throws IOException {
        SheepClient.ClusterStat st = c.client().statClusterAll(c.nodes.size());
        List<EpochRecord> logs = st.records();
        EpochRecord first = logs.isEmpty() ? null : logs.get(0);
        boolean running = st.result() == SdResult.SUCCESS;
        if (!c.raw) c.out.print("Cluster status: ");
        if (running) c.out.print("running, auto-recovery " + (first != null && first.disableRecovery ? "disabled" : "enabled") + "\n");
        else c.out.print(SdResult.message(st.result()) + "\n");
        if (c.verbose) {
            if (!c.raw) c.out.print("Cluster store: ");
            if (running && first != null) {
                c.out.print(first.drvName + " with " + Fmt.copies(first.nrCopies, first.copyPolicy) + " redundancy policy\n");
            } else {
                c.out.print(SdResult.message(st.result()) + "\n");
            }
            int flags = first == null ? 0 : first.flags;
            if (!c.raw) c.out.print("Cluster vnodes strategy: ");
            c.out.print((flags & Proto.CLUSTER_FLAG_AUTO_VNODES) != 0 ? "auto\n" : "fixed\n");
            if (!c.raw) c.out.print("Cluster vnode mode: ");
            c.out.print((flags & Proto.CLUSTER_FLAG_DISKMODE) != 0 ? "disk\n" : "node\n");
        } else {
            c.out.print("\n");
        }
        if (!c.raw && first != null) {
            c.out.print("Cluster created at " + Fmt.ctime(first.ctime >>> 32) + "\n\n");
            c.out.print("Epoch Time           Version [Host:Port:V-Nodes,,,]\n");
        }
        for (int i = 0; i < logs.size(); i++) {
            EpochRecord r = logs.get(i);
            String time = c.raw ? Long.toString(r.time) : Fmt.isoDate(r.time);
            StringBuilder b = new StringBuilder(time).append(' ');
            b.append(c.raw ? Integer.toString(r.epoch) : Fmt.right(Integer.toString(r.epoch), 6)).append(" [");
            if (c.has('d')) {
                if (i == logs.size() - 1) {
                    b.append("formated");
                } else {
                    b.append(diff(logs.get(i + 1).nodes, r.nodes));
                }
            } else {
                // node order, as the original's epoch logs are kept (a daemon may hand them out unsorted)
                List<SdNode> sorted = new ArrayList<>(r.nodes);
                sorted.sort(null);
                for (int j = 0; j < sorted.size(); j++) {
                    SdNode n = sorted.get(j);
                    b.append(j > 0 ? ", " : "").append(Addr.of(n.nid())).append(':').append(n.nrVnodes());
                }
            }
            c.out.print(b.append("]\n"));
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code +addr} for nodes that joined and {@code -addr} for nodes that left between two epochs. */
    private static String diff(List<SdNode> older, List<SdNode> newer) {
        List<String> parts = new ArrayList<>();
        for (SdNode n : newer) if (older.stream().noneMatch(o -> o.nid().equals(n.nid()))) parts.add("+" + Addr.of(n.nid()));
        for (SdNode o : older) if (newer.stream().noneMatch(n -> n.nid().equals(o.nid()))) parts.add("-" + Addr.of(o.nid()));
        return String.join(", ", parts);
    }

    /** {@code cluster format}. */
    static int format(Ctx c) throws IOException {
        // refused before anything is asked or sent, rather than formatted without what was asked for
        if (c.has('R')) throw DogExit.failure("Recycling the VIDs of deleted VDI families (-R) is not supported yet");
        if (c.has('F')) throw DogExit.failure("Cancelling a recovery that would fill a disk (-F) is not supported yet");
        boolean fixedVnodes = c.has('V');
        for (SdNode n : c.nodes) {
            if (n.nrVnodes() == 0) continue;
            ClusterInfo ci;
            try {
                ci = c.client(n.nid()).clusterInfo();
            } catch (SheepdogException e) {
                throw DogExit.failure(e.getMessage());
            }
            boolean auto = (ci.flags & Proto.CLUSTER_FLAG_AUTO_VNODES) != 0;
            if (auto && fixedVnodes) {
                throw DogExit.failure("Can not apply the option of '-V', because there are vnode strategy of sheep is auto in the cluster");
            }
            if (!auto && !fixedVnodes) {
                throw DogExit.failure("Need to specify the option of '-V', because there are vnode strategy of sheep is fixed in the cluster");
            }
        }
        // Without -c the original sends copies 0 (the sheep picks its default, 3) and asks nothing: a script that
        // formats a 2-zone cluster must not stop at a question.
        Redundancy red = c.has('c') ? Redundancy.parse(c.opt('c')) : new Redundancy(0, 0);
        int shift = c.has('z') ? Redundancy.parseShift(c.opt('z')) : Proto.DEFAULT_BLOCK_SIZE_SHIFT;
        int zones = c.ring.nrZones();
        if (red.copies() > zones && !c.has('f')) {
            c.confirm("Number of copies (" + red.copies() + ") is larger than number of zones (" + zones
                    + ").\nAre you sure you want to continue? [yes/no]: ");
        }
        VdiBitmap inuse = c.client().readVdis();
        if (inuse.nextSet(0) >= 0 && !c.has('f')) c.confirm(Prompts.sheep("Caution! The cluster is not empty."));
        String store = c.has('b') ? c.opt('b') : "plain";
        c.out.print("using backend " + store + " store\n");
        int flags = 0;
        if (c.has('t')) flags |= Proto.CLUSTER_FLAG_STRICT;
        if (c.has('l')) flags |= Proto.CLUSTER_FLAG_USE_LOCK;
        if (c.has('R')) flags |= Proto.CLUSTER_FLAG_RECYCLE_VID;
        if (!fixedVnodes) flags |= Proto.CLUSTER_FLAG_AUTO_VNODES;
        if (c.has('F')) flags |= Proto.CLUSTER_FLAG_AVOID_DISKFULL;
        long nowMs = System.currentTimeMillis();
        long ctime = ((nowMs / 1000) << 32) | ((nowMs % 1000) * 1_000_000L);
        int rc = c.client().makeFs(red.copies(), red.copyPolicy(), shift, flags, ctime, store);
        if (rc != SdResult.SUCCESS) {
            c.err.println("Format failed: " + SdResult.message(rc));
            if (rc == SdResult.NO_STORE) {
                String list = c.client().getStoreList();
                c.out.print("Available stores:\n---------------------------------------\n" + list + "\n");
            }
            return ExitCodes.SYSFAIL;
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code cluster shutdown}. */
    static int shutdown(Ctx c) throws IOException {
        try {
            c.client().shutdown();
        } catch (SheepdogException e) {
            throw DogExit.failure("failed to execute request");
        } catch (EOFException e) {
            // the daemon closed the connection while going down: that is what we asked for
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code cluster recover {force|enable|disable}}. */
    static int recover(Ctx c) throws IOException {
        String what = c.arg(0);
        if (what == null) {
            CommandTable.printUsage(c.out, c.sub);
            return ExitCodes.FAILURE;
        }
        switch (what) {
            case "force" -> {
                if (!c.has('f')) c.confirm(Prompts.FORCE_RECOVER);
                try {
                    c.client().forceRecover();
                } catch (SheepdogException e) {
                    throw DogExit.failure("failed to execute request, " + e.getMessage());
                }
            }
            case "enable", "disable" -> {
                try {
                    if (what.equals("enable")) c.client().enableRecover();
                    else c.client().disableRecover();
                } catch (SheepdogException e) {
                    throw DogExit.failure("failed to execute request, " + e.getMessage());
                }
                c.out.print("Cluster recovery: " + what + "\n");
            }
            default -> {
                CommandTable.printUsage(c.out, c.sub);
                return ExitCodes.FAILURE;
            }
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code cluster reweight}. */
    static int reweight(Ctx c) throws IOException {
        try {
            c.client().reweight();
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to execute request: " + e.getMessage());
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code cluster check}: {@code vdi check} of every VDI and snapshot. */
    static int check(Ctx c) throws IOException {
        int rc = ExitCodes.SUCCESS;
        for (Inode n : VdiEnumerator.list(c.client(), true, vid -> c.err.println("Failed to read inode header"))) {
            if (n.isSnapshot()) c.out.print("fix snapshot " + n.name + " (id: " + n.snapId + ", tag: \"" + n.tag + "\")\n");
            else c.out.print("fix vdi " + n.name + "\n");
            int r = VdiCheck.repair(c, n);
            if (r != ExitCodes.SUCCESS) rc = r;
        }
        return rc;
    }

    /** {@code cluster alter-copy -c N}. */
    static int alterCopy(Ctx c) throws IOException {
        Redundancy red;
        if (c.has('c')) {
            red = Redundancy.parse(c.opt('c'));
            if (red.erasureCoded()) throw DogExit.usage("Changing the cluster's redundancy to erasure code is not supported yet.");
        } else {
            c.out.print("The cluster's redundancy level is not specified, use 3 as default.\n");
            red = new Redundancy(Proto.DEFAULT_COPIES, 0);
        }
        if (red.copies() > c.nodes.size() && !c.has('f')) {
            c.confirm("Number of copies (" + red.copies() + ") is larger than number of nodes (" + c.nodes.size()
                    + ").\nAre you sure you want to continue? [yes/no]: ");
        }
        EpochRecord first = c.latestEpoch();
        int old = first == null ? 0 : first.nrCopies;
        if (first != null && first.copyPolicy != 0) {
            throw DogExit.failure("The cluster's copy policy is erasure code, changing it is not supported yet.");
        }
        if (old == red.copies()) {
            throw DogExit.failure("The cluster's redundancy level is already set to " + old + ", nothing changed.");
        }
        if (!c.has('f')) {
            c.confirm(Prompts.sheep2("Caution! Changing cluster's redundancy level will affect",
                    "all the VDIs to be created later."));
        }
        try {
            c.client().alterClusterCopy(red.copies());
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to change the cluster's redundancy level: " + e.getMessage());
        }
        c.err.println("The cluster's redundancy level is set to " + red.copies() + ", the old one was " + old + ".");
        return ExitCodes.SUCCESS;
    }
}
