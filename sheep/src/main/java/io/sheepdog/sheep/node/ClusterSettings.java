package io.sheepdog.sheep.node;

import io.sheepdog.proto.Proto;

/**
 * The cluster-wide settings a node holds, as {@code cluster_info} and the {@code config} file carry them: when the
 * cluster was formatted, its flags, default copies and copy policy, object size, store driver, and whether recovery
 * is disabled. Immutable: {@link NodeState} swaps it whole, so a reader never sees half of a format.
 */
public record ClusterSettings(long ctime, int flags, int copies, int copyPolicy, int blockSizeShift, String defaultStore,
                              boolean disableRecovery) {
    /** An unformatted node's. */
    public static final ClusterSettings NONE = new ClusterSettings(0, 0, 0, 0, Proto.DEFAULT_BLOCK_SIZE_SHIFT, "", false);

    public ClusterSettings {
        if (defaultStore == null) defaultStore = "";
        if (blockSizeShift == 0) blockSizeShift = Proto.DEFAULT_BLOCK_SIZE_SHIFT;
    }

    public boolean formatted() { return ctime != 0; }

    /** The copies a VDI gets when it names none: the cluster's, or the default if the format named none either. */
    public int defaultCopies() { return copies == 0 ? Proto.DEFAULT_COPIES : copies; }

    public ClusterSettings withCtime(long v) { return new ClusterSettings(v, flags, copies, copyPolicy, blockSizeShift, defaultStore, disableRecovery); }
    public ClusterSettings withFlags(int v) { return new ClusterSettings(ctime, v, copies, copyPolicy, blockSizeShift, defaultStore, disableRecovery); }
    public ClusterSettings withCopies(int v) { return new ClusterSettings(ctime, flags, v, copyPolicy, blockSizeShift, defaultStore, disableRecovery); }
    public ClusterSettings withCopyPolicy(int v) { return new ClusterSettings(ctime, flags, copies, v, blockSizeShift, defaultStore, disableRecovery); }
    public ClusterSettings withDefaultStore(String v) { return new ClusterSettings(ctime, flags, copies, copyPolicy, blockSizeShift, v, disableRecovery); }
    public ClusterSettings withDisableRecovery(boolean v) { return new ClusterSettings(ctime, flags, copies, copyPolicy, blockSizeShift, defaultStore, v); }
}
