package io.sheepdog.sheep.store;

import io.sheepdog.proto.Oids;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.vdi.VdiRegistry;
import io.sheepdog.sheep.vdi.VdiState;

/** The size an object has on a replica: fixed for inodes and attributes, the VDI's block size for data. */
public final class ObjectSizes {
    private final NodeState state;
    private final VdiRegistry vdis;

    public ObjectSizes(NodeState state, VdiRegistry vdis) {
        this.state = state;
        this.vdis = vdis;
    }

    public long of(long oid) {
        VdiState s = vdis.state(Oids.vid(oid));
        int shift = s != null && s.blockSizeShift != 0 ? s.blockSizeShift : state.blockSizeShift;
        return Oids.objectSize(oid, 1L << shift);
    }
}
