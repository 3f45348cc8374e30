package io.sheepdog.proto;

/**
 * Request header ({@code struct sd_req}). The 32 opcode-specific bytes at 16..47 are a union; the
 * accessors below are grouped by variant (obj, vdi, cluster, vdi_state, ref, forw) and name the field
 * they read, at the offset docs/protocol.md §3 gives.
 */
public final class SdRequest extends Header48 {
    public SdRequest() { super(); }
    public SdRequest(byte[] raw) { super(raw); }

    /** A request for {@code opcode} with {@code proto_ver} filled in the way dog fills it. */
    public static SdRequest of(int opcode) {
        SdRequest r = new SdRequest();
        r.opcode(opcode);
        r.protoVer(Opcodes.isInternal(opcode) ? Proto.SHEEP_PROTO_VER : Proto.PROTO_VER);
        return r;
    }

    public SdRequest copy() { return new SdRequest(bytes.clone()); }

    @Override public SdRequest protoVer(int v) { super.protoVer(v); return this; }
    @Override public SdRequest opcode(int v) { super.opcode(v); return this; }
    @Override public SdRequest flags(int v) { super.flags(v); return this; }
    @Override public SdRequest epoch(int v) { super.epoch(v); return this; }
    @Override public SdRequest id(int v) { super.id(v); return this; }
    @Override public SdRequest dataLength(long v) { super.dataLength(v); return this; }

    public boolean hasFlag(int f) { return (flags() & f) != 0; }

    // ---- obj variant ----
    public long objOid() { return u64(16); }
    public long objCowOid() { return u64(24); }
    public int objCopies() { return u8(32); }
    public int objCopyPolicy() { return u8(33); }
    public int objEcIndex() { return u8(34); }
    public int objTgtEpoch() { return s32(36); }
    /** Offset inside the object (u32 on the wire). */
    public long objOffset() { return u32(40); }
    /** QEMU declared offset as a u64 at 40: non-zero high bytes mean an offset beyond 4 GiB. */
    public long objOffsetHigh() { return u32(44); }

    public SdRequest objOid(long v) { u64(16, v); return this; }
    public SdRequest objCowOid(long v) { u64(24, v); return this; }
    public SdRequest objCopies(int v) { u8(32, v); return this; }
    public SdRequest objCopyPolicy(int v) { u8(33, v); return this; }
    public SdRequest objEcIndex(int v) { u8(34, v); return this; }
    public SdRequest objTgtEpoch(int v) { u32(36, v); return this; }
    public SdRequest objOffset(long v) { u32(40, v); return this; }

    // ---- vdi variant ----
    public long vdiSize() { return u64(16); }
    public int vdiBaseVid() { return s32(24); }
    public int vdiCopies() { return u8(28); }
    public int vdiCopyPolicy() { return u8(29); }
    public int vdiStorePolicy() { return u8(30); }
    public int vdiBlockSizeShift() { return u8(31); }
    public int vdiSnapId() { return s32(32); }
    public int vdiType() { return s32(36); }

    public SdRequest vdiSize(long v) { u64(16, v); return this; }
    public SdRequest vdiBaseVid(int v) { u32(24, v); return this; }
    public SdRequest vdiCopies(int v) { u8(28, v); return this; }
    public SdRequest vdiCopyPolicy(int v) { u8(29, v); return this; }
    public SdRequest vdiStorePolicy(int v) { u8(30, v); return this; }
    public SdRequest vdiBlockSizeShift(int v) { u8(31, v); return this; }
    public SdRequest vdiSnapId(int v) { u32(32, v); return this; }
    public SdRequest vdiType(int v) { u32(36, v); return this; }

    // ---- cluster variant ----
    public long clusterOid() { return u64(16); }
    public long clusterCtime() { return u64(24); }
    public int clusterCopies() { return u8(32); }
    public int clusterCopyPolicy() { return u8(33); }
    public int clusterFlags() { return u16(34); }
    public int clusterTag() { return s32(36); }
    public int clusterNodesNr() { return s32(40); }
    public int clusterBlockSizeShift() { return u8(44); }

    public SdRequest clusterOid(long v) { u64(16, v); return this; }
    public SdRequest clusterCtime(long v) { u64(24, v); return this; }
    public SdRequest clusterCopies(int v) { u8(32, v); return this; }
    public SdRequest clusterCopyPolicy(int v) { u8(33, v); return this; }
    public SdRequest clusterFlags(int v) { u16(34, v); return this; }
    public SdRequest clusterTag(int v) { u32(36, v); return this; }
    public SdRequest clusterNodesNr(int v) { u32(40, v); return this; }
    public SdRequest clusterBlockSizeShift(int v) { u8(44, v); return this; }

    // ---- vdi_state variant (NOTIFY_VDI_ADD, ALTER_VDI_COPY) ----
    public int vdiStateOldVid() { return s32(16); }
    public int vdiStateNewVid() { return s32(20); }
    public int vdiStateCopies() { return u8(24); }
    public boolean vdiStateSetBitmap() { return u8(25) != 0; }
    public int vdiStateCopyPolicy() { return u8(26); }
    public int vdiStateBlockSizeShift() { return u8(27); }

    public SdRequest vdiStateOldVid(int v) { u32(16, v); return this; }
    public SdRequest vdiStateNewVid(int v) { u32(20, v); return this; }
    public SdRequest vdiStateCopies(int v) { u8(24, v); return this; }
    public SdRequest vdiStateSetBitmap(boolean v) { u8(25, v ? 1 : 0); return this; }
    public SdRequest vdiStateCopyPolicy(int v) { u8(26, v); return this; }
    public SdRequest vdiStateBlockSizeShift(int v) { u8(27, v); return this; }

    // ---- ref variant (DECREF) ----
    public long refOid() { return u64(16); }
    public int refGeneration() { return s32(24); }
    public int refCount() { return s32(28); }
    public SdRequest refOid(long v) { u64(16, v); return this; }
    public SdRequest refGeneration(int v) { u32(24, v); return this; }
    public SdRequest refCount(int v) { u32(28, v); return this; }

    // ---- forw variant (REPAIR_REPLICA) ----
    public long forwOid() { return u64(16); }
    public byte[] forwAddr() { byte[] a = new byte[16]; System.arraycopy(bytes, 24, a, 0, 16); return a; }
    public int forwPort() { return u16(40); }
    public SdRequest forwOid(long v) { u64(16, v); return this; }
    public SdRequest forwAddr(byte[] a) { System.arraycopy(a, 0, bytes, 24, 16); return this; }
    public SdRequest forwPort(int v) { u16(40, v); return this; }

    @Override public String toString() {
        return String.format("req{op=%s ver=%d flags=0x%x epoch=%d id=%d len=%d oid=%016x off=%d}",
                Opcodes.name(opcode()), protoVer(), flags(), epoch(), id(), dataLength(), objOid(), objOffset());
    }
}
