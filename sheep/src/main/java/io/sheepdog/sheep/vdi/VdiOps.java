package io.sheepdog.sheep.vdi;

import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdHash;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.proto.VdiAttr;
import io.sheepdog.sheep.gateway.Gateway;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.ops.SdError;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The "work" part of the VDI operations (docs/protocol.md §10.4, §10.5, §10.7): lookups by name, snapshot id or tag;
 * creation of VDIs, snapshots and clones; deletion; attributes. They run on the node that received the request,
 * under the cluster-wide block, so two of them never interleave; their effect on the in-memory bookkeeping of every
 * node is applied afterwards by the ordered main phase.
 */
public final class VdiOps {
    private final Gateway gateway;
    private final VdiRegistry vdis;
    private final NodeState state;

    public VdiOps(Gateway gateway, VdiRegistry vdis, NodeState state) {
        this.gateway = gateway;
        this.vdis = vdis;
        this.state = state;
    }

    /** Result of a lookup: the VID found (0 if none), the free VID a new VDI of that name would get, next snap id. */
    public record Lookup(int vid, int freeVid, int nextSnapId, boolean nameExists, Inode inode) {}

    public static String nameOf(byte[] data, int off) {
        int n = 0;
        while (n < Proto.MAX_VDI_LEN && off + n < data.length && data[off + n] != 0) n++;
        return new String(data, off, n, StandardCharsets.UTF_8);
    }

    public Inode readHeader(int vid) throws SdError {
        return Inode.decode(gateway.read(Oids.inodeOid(vid), 0, Inode.HEADER_SIZE));
    }

    /** Header and data_vdi_id table (only the entries the VDI's size spans). */
    public Inode readInode(int vid) throws SdError {
        Inode head = readHeader(vid);
        int count = head.objectCount();
        if (count == 0) return head;
        byte[] all = new byte[Inode.HEADER_SIZE + 4 * count];
        byte[] h = head.encodeHeader();
        System.arraycopy(h, 0, all, 0, h.length);
        byte[] tab = gateway.read(Oids.inodeOid(vid), Inode.DATA_VDI_ID_OFFSET, 4 * count);
        System.arraycopy(tab, 0, all, Inode.HEADER_SIZE, tab.length);
        return Inode.decode(all);
    }

    /**
     * Finds {@code name} (with {@code snapId} or {@code tag} for a snapshot; neither = the working VDI).
     * @throws SdError NO_VDI, NO_TAG or FULL_VDI
     */
    public Lookup lookup(String name, int snapId, String tag) throws SdError {
        Lookup l = scan(name, snapId, tag);
        if (l.vid() == 0) {
            boolean wantSnap = snapId != 0 || (tag != null && !tag.isEmpty());
            throw new SdError(wantSnap && l.nameExists() ? SdResult.NO_TAG : SdResult.NO_VDI);
        }
        return l;
    }

    /** Like {@link #lookup} but returns vid 0 instead of throwing when nothing matches. */
    public Lookup scan(String name, int snapId, String tag) throws SdError {
        int left = SdHash.vdiHash(name);
        if (left == 0) left = 1;
        int right = vdis.nextClear(left);
        boolean wrapped = false;
        if (right < 0) {
            right = vdis.nextClear(1);
            wrapped = true;
            if (right < 0 || right >= left) throw new SdError(SdResult.FULL_VDI);
        }
        if (right == left) return new Lookup(0, left, 1, false, null);
        boolean wantSnap = snapId != 0 || (tag != null && !tag.isEmpty());
        boolean nameExists = false;
        int nextSnap = 1;
        boolean sawLatest = false;
        int[][] ranges = wrapped ? new int[][] {{right - 1, 1}, {Proto.NR_VDIS - 1, left}} : new int[][] {{right - 1, left}};
        for (int[] r : ranges) {
            for (int vid = r[0]; vid >= r[1]; vid--) {
                if (!vdis.inUse(vid) && !vdis.isDeleted(vid)) continue;
                Inode ino;
                try {
                    ino = readHeader(vid);
                } catch (SdError e) {
                    if (e.result() == SdResult.NO_OBJ) continue;
                    throw e;
                }
                if (!name.equals(ino.name)) continue;
                nameExists = true;
                if (!sawLatest) {
                    sawLatest = true;
                    nextSnap = ino.snapId + 1;
                }
                if (!wantSnap) {
                    if (!ino.isSnapshot()) return new Lookup(vid, right, nextSnap, true, ino);
                    return new Lookup(0, right, nextSnap, true, null); // the working VDI was deleted
                }
                if (!ino.isSnapshot()) continue;
                boolean tagMatch = tag != null && !tag.isEmpty() && tag.equals(ino.tag);
                boolean idMatch = snapId != 0 && ino.snapId == snapId;
                if (tagMatch || idMatch) return new Lookup(vid, right, nextSnap, true, ino);
            }
        }
        return new Lookup(0, right, nextSnap, nameExists, null);
    }

    /** What NEW_VDI produced, for the response and the main phase. */
    public record Created(int newVid, int oldVid, int copies, int policy, int shift, int parent) {}

    public Created newVdi(SdRequest h, byte[] data) throws SdError {
        if (data.length != Proto.MAX_VDI_LEN) throw new SdError(SdResult.INVALID_PARMS, "NEW_VDI needs a 256-byte name");
        String name = nameOf(data, 0);
        if (name.isEmpty()) throw new SdError(SdResult.INVALID_PARMS, "empty VDI name");
        int copies = h.vdiCopies();
        int policy = h.vdiCopyPolicy();
        if (copies == 0) {
            copies = state.settings().defaultCopies();
            policy = state.settings().copyPolicy();
        }
        if (policy != 0) {
            // erasure coded: d data and p parity strips, and the inode kept in d+p replicas (docs/protocol.md §13)
            if (!ErasureCode.isValidPolicy(policy)) {
                throw new SdError(SdResult.INVALID_PARMS, String.format("bad erasure code policy %#x", policy));
            }
            copies = ErasureCode.of(policy).totalStrips();
        }
        if (copies > Proto.MAX_COPIES) throw new SdError(SdResult.INVALID_PARMS, "too many copies");
        int shift = h.vdiBlockSizeShift() == 0 ? state.settings().blockSizeShift() : h.vdiBlockSizeShift();
        if (shift < Proto.MIN_BLOCK_SIZE_SHIFT || shift > Proto.MAX_BLOCK_SIZE_SHIFT) throw new SdError(SdResult.INVALID_PARMS, "bad block size shift");
        int base = h.vdiBaseVid();
        boolean snapshot = h.vdiSnapId() != 0;

        Lookup cur = scan(name, 0, null);
        if (base != 0 && !vdis.inUse(base)) throw new SdError(SdResult.NO_BASE_VDI);
        if (snapshot) {
            if (base == 0 || cur.vid() == 0) throw new SdError(SdResult.NO_VDI);
        } else if (cur.vid() != 0) {
            throw new SdError(SdResult.VDI_EXIST);
        }
        if (!snapshot) return create(h, name, policy, copies, shift, base, snapshot, cur);
        // a snapshot of a VDI in use: its writes pause everywhere while its table is copied (VdiWriteFence); the
        // main phase (NOTIFY_VDI_ADD) makes it read-only and resumes them, and they go on in the new working VDI
        if (!gateway.fenceEverywhere(base, true)) {
            gateway.fenceEverywhere(base, false);
            throw new SdError(SdResult.SYSTEM_ERROR, "the writes of " + name + " did not pause for the snapshot; try again");
        }
        try {
            return create(h, name, policy, copies, shift, base, snapshot, cur);
        } catch (SdError | RuntimeException e) {
            gateway.fenceEverywhere(base, false);
            throw e;
        }
    }

    /** A snapshot of {@code vid} is made (its main phase, on every node): the writes paused here go on. */
    public void resumeWrites(int vid) {
        gateway.fence().resume(vid);
    }

    /** The rest of NEW_VDI: the new inode (a copy of {@code base}'s table, if any) and, for a snapshot, the old one's mark. */
    private Created create(SdRequest h, String name, int policy, int copies, int shift, int base, boolean snapshot,
                           Lookup cur) throws SdError {
        Inode baseInode = base != 0 ? readInode(base) : null;
        long size = h.vdiSize();
        if (size == 0 && baseInode != null) size = baseInode.vdiSize;
        if (baseInode != null) shift = baseInode.blockSizeShift;
        if (Inode.objectCount(size, shift) > Inode.MAX_INDEX || (size >>> shift) > Inode.MAX_INDEX) {
            throw new SdError(SdResult.INVALID_PARMS, "VDI size too large for a flat index");
        }
        int newVid = cur.freeVid();
        long now = nowTime();

        Inode n = new Inode();
        n.name = name;
        n.createTime = now;
        n.vdiSize = size;
        n.copyPolicy = policy;
        n.storePolicy = h.vdiStorePolicy();
        n.nrCopies = copies;
        n.blockSizeShift = shift;
        n.vdiId = newVid;
        n.parentVdiId = base;
        n.snapId = snapshot ? cur.nextSnapId() : (cur.nameExists() ? cur.nextSnapId() : 1);
        int count = Inode.objectCount(size, shift);
        n.ensureCapacity(count);
        if (baseInode != null) {
            n.nrCopies = baseInode.nrCopies == 0 ? copies : baseInode.nrCopies;
            n.copyPolicy = baseInode.copyPolicy;
            for (int i = 0; i < Math.min(count, baseInode.dataVdiId.length); i++) n.dataVdiId[i] = baseInode.dataVdiId[i];
        }
        byte[] img = n.encode(Inode.HEADER_SIZE + 4 * count);
        try {
            gateway.create(Oids.inodeOid(newVid), 0, img, n.nrCopies, 0);
        } catch (SdError e) {
            // as the original: an inode that cannot be written is "Failed to write to requested VDI" (strict mode with
            // too few zones, a gateway-only cluster), except a full disk, which says so
            if (e.result() == SdResult.NO_SPACE) throw e;
            throw new SdError(SdResult.VDI_WRITE, "cannot write the inode of " + Integer.toHexString(newVid) + ": "
                    + SdResult.name(e.result()) + " " + e.getMessage());
        }
        int oldVid = 0;
        if (snapshot) {
            // the old working inode becomes the snapshot: set snap_ctime in its header
            int cv = cur.vid();
            byte[] t = new byte[8];
            ByteBuffer.wrap(t).order(ByteOrder.LITTLE_ENDIAN).putLong(now);
            gateway.write(Oids.inodeOid(cv), 520, t, 0);
            oldVid = cv;
        }
        return new Created(newVid, oldVid, n.nrCopies, n.copyPolicy, shift, base);
    }

    /** DEL_VDI: drops every object reference of the VDI, then clears its name. Returns the VID deleted. */
    public int delVdi(SdRequest h, byte[] data) throws SdError {
        if (data.length != Proto.MAX_VDI_LEN && data.length != 2 * Proto.MAX_VDI_LEN) {
            throw new SdError(SdResult.INVALID_PARMS, "DEL_VDI needs name[256] [+ tag[256]]");
        }
        String name = nameOf(data, 0);
        String tag = data.length > Proto.MAX_VDI_LEN ? nameOf(data, Proto.MAX_VDI_LEN) : "";
        Lookup l = lookup(name, h.vdiSnapId(), tag);
        int vid = l.vid();
        Inode ino = readInode(vid);
        // Release the objects this VDI still names (dog does it first; QEMU may not). Writing zeros into the table
        // goes through the gateway's reclaim, which keeps objects a snapshot or clone still reads.
        int count = ino.objectCount();
        for (int from = 0; from < count; from += 1024) {
            int to = Math.min(count, from + 1024);
            boolean any = false;
            for (int i = from; i < to; i++) if (ino.dataVdiId[i] != 0) { any = true; break; }
            if (!any) continue;
            byte[] zeros = new byte[4 * (to - from)];
            SdRequest w = new SdRequest().opcode(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE)
                    .objOid(Oids.inodeOid(vid)).objOffset(Inode.dataVdiIdOffset(from)).dataLength(zeros.length);
            var rep = gateway.handle(Request.internal(w, zeros));
            if (rep.result() != SdResult.SUCCESS) throw new SdError(rep.result(), "releasing objects of " + name);
        }
        // clear the name and size; keep the rest of the header (ancestry stays readable)
        byte[] cleared = new byte[Proto.MAX_VDI_LEN];
        gateway.write(Oids.inodeOid(vid), 0, cleared, 0);
        byte[] zeroSize = new byte[8];
        gateway.write(Oids.inodeOid(vid), 536, zeroSize, 0);
        return vid;
    }

    public static long nowTime() {
        long ms = System.currentTimeMillis();
        return ((ms / 1000) << 32) | ((ms % 1000) * 1_000_000L);
    }

    // ------------------------------------------------------------------ attributes (§10.7)

    public record AttrResult(int vid, int attrId) {}

    public AttrResult vdiAttr(SdRequest h, byte[] data) throws SdError {
        if (data.length < VdiAttr.VALUE_OFFSET || data.length > VdiAttr.SIZE) throw new SdError(SdResult.INVALID_PARMS, "bad attribute size");
        byte[] full = new byte[VdiAttr.SIZE];
        System.arraycopy(data, 0, full, 0, data.length);
        VdiAttr a = VdiAttr.decode(ByteBuffer.wrap(full));
        if (a.key.isEmpty()) throw new SdError(SdResult.INVALID_PARMS, "empty attribute key");
        Lookup l = lookup(a.name, h.vdiSnapId(), a.tag);
        int vid = SdHash.vdiHash(a.name);
        if (vid == 0) vid = 1;
        int attrId = VdiAttr.attrId(a.name, a.tag, a.snapId, a.key);
        boolean creat = h.hasFlag(SdFlags.CMD_CREAT);
        boolean excl = h.hasFlag(SdFlags.CMD_EXCL);
        boolean del = h.hasFlag(SdFlags.CMD_DEL);
        a.ctime = l.inode() != null ? l.inode().createTime : 0;
        byte[] want = Strings.fixed(a.name, 256);
        for (long probe = 0; probe < (1L << 32); probe++) {
            int id = (int) (attrId + probe);
            long oid = Oids.attrOid(vid, id);
            byte[] head;
            try {
                head = gateway.read(oid, 0, VdiAttr.VALUE_OFFSET);
            } catch (SdError e) {
                if (e.result() != SdResult.NO_OBJ) throw e;
                // an empty slot: the attribute does not exist
                if (creat && !del) {
                    full = a.encode();
                    gateway.create(oid, 0, full, 0, 0);
                    return new AttrResult(vid, id);
                }
                throw new SdError(SdResult.NO_OBJ);
            }
            VdiAttr have = VdiAttr.decode(ByteBuffer.wrap(Arrays.copyOf(head, VdiAttr.SIZE)));
            boolean emptySlot = head[0] == 0;
            boolean match = !emptySlot && Arrays.equals(Strings.fixed(have.name, 256), want)
                    && have.tag.equals(a.tag) && have.snapId == a.snapId && have.key.equals(a.key);
            if (match) {
                if (del) {
                    gateway.write(oid, 0, new byte[1], 0);
                    return new AttrResult(vid, id);
                }
                if (creat && excl) throw new SdError(SdResult.VDI_EXIST);
                if (creat) gateway.write(oid, 0, a.encode(), 0);
                return new AttrResult(vid, id);
            }
            if (emptySlot && creat && !del) {
                gateway.write(oid, 0, a.encode(), 0);
                return new AttrResult(vid, id);
            }
        }
        throw new SdError(SdResult.FULL_VDI);
    }
}
