package io.sheepdog.client;

import io.sheepdog.proto.NodeId;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * One element of a GET_VDI_COPIES reply ({@code struct vdi_state}, 1428 bytes, docs/protocol.md §11.5): the daemon's
 * state of a VDI including its lock.
 */
public record VdiState(int vid, int nrCopies, boolean snapshot, boolean deleted, int copyPolicy, int blockSizeShift,
                       int parentVid, int lockState, NodeId lockOwner, int[] participantStates,
                       List<NodeId> participants) {
    public static final int SIZE = 1428;
    public static final int MAX_PARTICIPANTS = 31;

    public static VdiState decode(ByteBuffer in) {
        ByteBuffer b = in.slice(in.position(), SIZE).order(ByteOrder.LITTLE_ENDIAN);
        int vid = b.getInt(0);
        int copies = b.get(4) & 0xff;
        boolean snap = b.get(5) != 0;
        boolean del = b.get(6) != 0;
        int policy = b.get(7) & 0xff;
        int shift = b.get(8) & 0xff;
        int parent = b.getInt(12);
        int lockState = b.getInt(16);
        b.position(20);
        NodeId owner = NodeId.decode(b);
        int nrPart = Math.max(0, Math.min(MAX_PARTICIPANTS, b.getInt(60)));
        int[] states = new int[nrPart];
        for (int i = 0; i < nrPart; i++) states[i] = b.getInt(64 + 4 * i);
        List<NodeId> parts = new ArrayList<>(nrPart);
        for (int i = 0; i < nrPart; i++) {
            b.position(188 + NodeId.SIZE * i);
            parts.add(NodeId.decode(b));
        }
        in.position(in.position() + SIZE);
        return new VdiState(vid, copies, snap, del, policy, shift, parent, lockState, owner, states, parts);
    }

    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, vid);
        b.put(4, (byte) nrCopies);
        b.put(5, (byte) (snapshot ? 1 : 0));
        b.put(6, (byte) (deleted ? 1 : 0));
        b.put(7, (byte) copyPolicy);
        b.put(8, (byte) blockSizeShift);
        b.putInt(12, parentVid);
        b.putInt(16, lockState);
        b.position(20);
        lockOwner.encode(b);
        b.putInt(60, participants.size());
        for (int i = 0; i < participantStates.length; i++) b.putInt(64 + 4 * i, participantStates[i]);
        for (int i = 0; i < participants.size(); i++) {
            b.position(188 + NodeId.SIZE * i);
            participants.get(i).encode(b);
        }
        return b.array();
    }
}
