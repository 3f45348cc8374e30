package io.sheepdog.sheep.vdi;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Proto;

/** What every node knows about one VDI id, kept in memory and exchanged on join (docs/protocol.md §11.5). */
public final class VdiState {
    public final int vid;
    public int nrCopies;
    public int copyPolicy;
    public int blockSizeShift;
    public boolean snapshot;
    public boolean deleted;
    public int parentVid;
    public int lockState = Proto.LOCK_STATE_UNLOCKED;
    /** Gateway node that took the lock, and the client (address, port, connection) it took it for. */
    public NodeId lockOwner;
    public byte[] lockClientAddr = new byte[16];
    public int lockClientPort;
    public long lockConnection;
    /**
     * The working VDI a snapshot of this one made (this node saw it happen; 0: none, or not known here). A client that
     * opened this VDI writes its successor after the snapshot, and its lock went there too.
     */
    public int successor;

    public VdiState(int vid) { this.vid = vid; }

    public boolean locked() { return lockState != Proto.LOCK_STATE_UNLOCKED; }

    public void unlock() {
        lockState = Proto.LOCK_STATE_UNLOCKED;
        lockOwner = null;
        lockClientAddr = new byte[16];
        lockClientPort = 0;
        lockConnection = 0;
    }
}
