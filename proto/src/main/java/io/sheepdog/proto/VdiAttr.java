package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** {@code struct sheepdog_vdi_attr} (66 320 bytes, docs/protocol.md §10.7). */
public final class VdiAttr {
    public static final int SIZE = 66_320;
    public static final int VALUE_OFFSET = 784;

    public String name = "";
    public String tag = "";
    public long ctime;
    public int snapId;
    public int valueLen;
    public String key = "";
    public byte[] value = new byte[0];

    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        Strings.write(b, 0, 256, name);
        Strings.write(b, 256, 256, tag);
        b.putLong(512, ctime);
        b.putInt(520, snapId);
        b.putInt(524, valueLen);
        Strings.write(b, 528, 256, key);
        b.put(VALUE_OFFSET, value, 0, Math.min(value.length, Proto.MAX_ATTR_VALUE_LEN));
        return b.array();
    }

    public static VdiAttr decode(ByteBuffer in) {
        ByteBuffer b = in.slice().order(ByteOrder.LITTLE_ENDIAN);
        VdiAttr a = new VdiAttr();
        a.name = Strings.read(b, 0, 256);
        a.tag = Strings.read(b, 256, 256);
        a.ctime = b.getLong(512);
        a.snapId = b.getInt(520);
        a.valueLen = b.getInt(524);
        a.key = Strings.read(b, 528, 256);
        int n = Math.max(0, Math.min(a.valueLen, Math.min(Proto.MAX_ATTR_VALUE_LEN, b.remaining() - VALUE_OFFSET)));
        a.value = new byte[n];
        b.get(VALUE_OFFSET, a.value);
        return a;
    }

    /**
     * attr_id: low 32 bits of FNV-1a-64 over name[256] | tag[256] | snap_id (u32 LE) | key[256].
     */
    public static int attrId(String name, String tag, int snapId, String key) {
        long h = SdHash.FNV1A_BASIS;
        h = SdHash.fnv1a(Strings.fixed(name, 256), h);
        h = SdHash.fnv1a(Strings.fixed(tag, 256), h);
        byte[] sid = {(byte) snapId, (byte) (snapId >>> 8), (byte) (snapId >>> 16), (byte) (snapId >>> 24)};
        h = SdHash.fnv1a(sid, h);
        h = SdHash.fnv1a(Strings.fixed(key, 256), h);
        return (int) h;
    }
}
