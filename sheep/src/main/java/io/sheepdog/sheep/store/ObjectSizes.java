package io.sheepdog.sheep.store;

import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Oids;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.vdi.VdiRegistry;
import io.sheepdog.sheep.vdi.VdiState;

/**
 * How an object is stored: its size (fixed for inodes and attributes, the VDI's block size for data; a strip of an
 * erasure-coded object is that divided by the data strips) and, for the data of an erasure-coded VDI, its code.
 */
public final class ObjectSizes {
    private final NodeState state;
    private final VdiRegistry vdis;

    public ObjectSizes(NodeState state, VdiRegistry vdis) {
        this.state = state;
        this.vdis = vdis;
    }

    /** The size of what {@code key} stores: a whole object, or one strip of one (see {@link StoreKey}). */
    public long of(long key) {
        long oid = StoreKey.oid(key);
        VdiState s = vdis.state(Oids.vid(oid));
        int shift = s != null && s.blockSizeShift != 0 ? s.blockSizeShift : state.settings().blockSizeShift();
        long size = Oids.objectSize(oid, 1L << shift);
        if (StoreKey.isStrip(key) && s != null && ErasureCode.isValidPolicy(s.copyPolicy)) {
            size /= ErasureCode.dataStrips(s.copyPolicy);
        }
        return size;
    }

    /** The erasure code {@code oid} is stored with; null if it is replicated. */
    public ErasureCode codeOf(long oid) {
        if (!ErasureCode.appliesTo(oid)) return null;
        VdiState s = vdis.state(Oids.vid(oid));
        return s != null && ErasureCode.isValidPolicy(s.copyPolicy) ? ErasureCode.of(s.copyPolicy) : null;
    }
}
