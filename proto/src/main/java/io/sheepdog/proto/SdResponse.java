package io.sheepdog.proto;

/** Response header ({@code struct sd_rsp}); variant accessors per docs/protocol.md §5. */
public final class SdResponse extends Header48 {
    public SdResponse() { super(); }
    public SdResponse(byte[] raw) { super(raw); }

    /** A response that echoes the request's opcode and id. */
    public static SdResponse replyTo(SdRequest req, int result) {
        SdResponse r = new SdResponse();
        r.opcode(req.opcode());
        r.id(req.id());
        r.result(result);
        return r;
    }

    public SdResponse copy() { return new SdResponse(bytes.clone()); }

    @Override public SdResponse opcode(int v) { super.opcode(v); return this; }
    @Override public SdResponse epoch(int v) { super.epoch(v); return this; }
    @Override public SdResponse id(int v) { super.id(v); return this; }
    @Override public SdResponse dataLength(long v) { super.dataLength(v); return this; }

    public int result() { return s32(16); }
    public SdResponse result(int v) { u32(16, v); return this; }

    // obj
    public int objCopies() { return u8(20); }
    public SdResponse objCopies(int v) { u8(20, v); return this; }

    // vdi
    public int vdiVid() { return s32(24); }
    public int vdiAttrId() { return s32(28); }
    public int vdiCopies() { return u8(32); }
    public int vdiBlockSizeShift() { return u8(33); }
    public SdResponse vdiVid(int v) { u32(24, v); return this; }
    public SdResponse vdiAttrId(int v) { u32(28, v); return this; }
    public SdResponse vdiCopies(int v) { u8(32, v); return this; }
    public SdResponse vdiBlockSizeShift(int v) { u8(33, v); return this; }

    // node
    public int nodeNrNodes() { return s32(20); }
    public long nodeStoreSize() { return u64(32); }
    public long nodeStoreFree() { return u64(40); }
    public SdResponse nodeNrNodes(int v) { u32(20, v); return this; }
    public SdResponse nodeStoreSize(long v) { u64(32, v); return this; }
    public SdResponse nodeStoreFree(long v) { u64(40, v); return this; }

    // hash
    public byte[] hashDigest() { byte[] d = new byte[20]; System.arraycopy(bytes, 24, d, 0, 20); return d; }
    public SdResponse hashDigest(byte[] d) { System.arraycopy(d, 0, bytes, 24, 20); return this; }

    // cluster_default
    public int defaultNrCopies() { return u8(20); }
    public int defaultCopyPolicy() { return u8(21); }
    public int defaultBlockSizeShift() { return u8(22); }
    public SdResponse defaultNrCopies(int v) { u8(20, v); return this; }
    public SdResponse defaultCopyPolicy(int v) { u8(21, v); return this; }
    public SdResponse defaultBlockSizeShift(int v) { u8(22, v); return this; }

    @Override public String toString() {
        return String.format("rsp{op=%s epoch=%d id=%d len=%d result=%s}",
                Opcodes.name(opcode()), epoch(), id(), dataLength(), SdResult.name(result()));
    }
}
