package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The inode object ({@code struct sd_inode}, docs/protocol.md §10.2). The full object is 12 587 576 bytes, most of it
 * the {@code data_vdi_id} table and the {@code gref} table; this class keeps only the entries that the VDI's size
 * can use, so a 1 GiB VDI costs 1 KiB of table, not 12 MiB.
 */
public final class Inode {
    public static final int SIZE = 12_587_576;
    public static final int HEADER_SIZE = 4664;
    public static final int DATA_VDI_ID_OFFSET = 4664;
    public static final int MAX_INDEX = 1 << 20;
    public static final int GREF_OFFSET = DATA_VDI_ID_OFFSET + 4 * MAX_INDEX; // 4 198 968
    /** What QEMU reads: header plus data_vdi_id. */
    public static final int QEMU_SIZE = GREF_OFFSET;
    /** Header bytes that carry fields (the rest of the header is unused). */
    public static final int HEADER_FIELDS_SIZE = 572;

    public String name = "";
    public String tag = "";
    public long createTime;
    public long snapCtime;
    public long vmClockNsec;
    public long vdiSize;
    public long vmStateSize;
    public int copyPolicy;
    public int storePolicy;
    public int nrCopies;
    public int blockSizeShift = Proto.DEFAULT_BLOCK_SIZE_SHIFT;
    public int snapId;
    public int vdiId;
    public int parentVdiId;
    public int btreeCounter;
    /** data_vdi_id[0 .. dataVdiId.length); entries beyond are zero. */
    public int[] dataVdiId = new int[0];
    /** gref generation/count per index (same length as dataVdiId, may be all zero). */
    public int[] grefGeneration = new int[0];
    public int[] grefCount = new int[0];

    public long objectSize() { return 1L << blockSizeShift; }

    /** Number of data objects the VDI's size spans. */
    public int objectCount() { return objectCount(vdiSize, blockSizeShift); }

    public static int objectCount(long size, int shift) {
        long n = (size + (1L << shift) - 1) >>> shift;
        return (int) Math.min(n, MAX_INDEX);
    }

    public boolean isSnapshot() { return snapCtime != 0; }
    public boolean isClone() { return snapId == 1 && parentVdiId != 0; }
    public boolean isDeleted() { return name.isEmpty(); }

    /** Grows the tables so that index {@code idx} exists. */
    public void ensureCapacity(int n) {
        if (n <= dataVdiId.length) return;
        dataVdiId = Arrays.copyOf(dataVdiId, n);
        grefGeneration = Arrays.copyOf(grefGeneration, n);
        grefCount = Arrays.copyOf(grefCount, n);
    }

    public int dataVid(long idx) { return idx < dataVdiId.length ? dataVdiId[(int) idx] : 0; }

    public static long dataVdiIdOffset(long idx) { return DATA_VDI_ID_OFFSET + 4L * idx; }
    public static long grefOffset(long idx) { return GREF_OFFSET + 8L * idx; }

    /** Encodes the 4664-byte header. */
    public byte[] encodeHeader() {
        ByteBuffer b = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        encodeHeaderInto(b);
        return b.array();
    }

    private void encodeHeaderInto(ByteBuffer b) {
        Strings.write(b, 0, 256, name);
        Strings.write(b, 256, 256, tag);
        b.putLong(512, createTime);
        b.putLong(520, snapCtime);
        b.putLong(528, vmClockNsec);
        b.putLong(536, vdiSize);
        b.putLong(544, vmStateSize);
        b.put(552, (byte) copyPolicy);
        b.put(553, (byte) storePolicy);
        b.put(554, (byte) nrCopies);
        b.put(555, (byte) blockSizeShift);
        b.putInt(556, snapId);
        b.putInt(560, vdiId);
        b.putInt(564, parentVdiId);
        b.putInt(568, btreeCounter);
    }

    /**
     * Encodes the first {@code length} bytes of the object (header, data_vdi_id, gref) as they would be on disk.
     * {@code length} of {@link #SIZE} gives the full object.
     */
    public byte[] encode(int length) {
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        encodeHeaderInto(h);
        b.put(0, h.array(), 0, Math.min(length, HEADER_SIZE));
        for (int i = 0; i < dataVdiId.length; i++) {
            long off = dataVdiIdOffset(i);
            if (off + 4 <= length && dataVdiId[i] != 0) b.putInt((int) off, dataVdiId[i]);
            long g = grefOffset(i);
            if (g + 8 <= length && (grefGeneration[i] != 0 || grefCount[i] != 0)) {
                b.putInt((int) g, grefGeneration[i]);
                b.putInt((int) g + 4, grefCount[i]);
            }
        }
        return b.array();
    }

    /** Decodes from the start of an inode object; {@code b} may hold any prefix of the object (at least the header fields). */
    public static Inode decode(ByteBuffer in) {
        ByteBuffer b = in.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int base = b.position();
        int avail = b.remaining();
        if (avail < HEADER_FIELDS_SIZE) throw new IllegalArgumentException("inode too short: " + avail);
        ByteBuffer s = b.slice(base, avail).order(ByteOrder.LITTLE_ENDIAN);
        Inode n = new Inode();
        n.name = Strings.read(s, 0, 256);
        n.tag = Strings.read(s, 256, 256);
        n.createTime = s.getLong(512);
        n.snapCtime = s.getLong(520);
        n.vmClockNsec = s.getLong(528);
        n.vdiSize = s.getLong(536);
        n.vmStateSize = s.getLong(544);
        n.copyPolicy = s.get(552) & 0xff;
        n.storePolicy = s.get(553) & 0xff;
        n.nrCopies = s.get(554) & 0xff;
        n.blockSizeShift = s.get(555) & 0xff;
        n.snapId = s.getInt(556);
        n.vdiId = s.getInt(560);
        n.parentVdiId = s.getInt(564);
        n.btreeCounter = s.getInt(568);
        int count = n.blockSizeShift == 0 ? 0 : n.objectCount();
        int haveIdx = (int) Math.max(0, Math.min(count, (avail - (long) DATA_VDI_ID_OFFSET) / 4));
        n.ensureCapacity(count);
        for (int i = 0; i < haveIdx; i++) n.dataVdiId[i] = s.getInt(DATA_VDI_ID_OFFSET + 4 * i);
        int haveGref = (int) Math.max(0, Math.min(count, (avail - (long) GREF_OFFSET) / 8));
        for (int i = 0; i < haveGref; i++) {
            n.grefGeneration[i] = s.getInt(GREF_OFFSET + 8 * i);
            n.grefCount[i] = s.getInt(GREF_OFFSET + 8 * i + 4);
        }
        return n;
    }

    public static Inode decode(byte[] b) { return decode(ByteBuffer.wrap(b)); }

    /** Bytes that encode data_vdi_id[from .. to) for an in-place WRITE_OBJ at {@link #dataVdiIdOffset(long)}. */
    public byte[] encodeDataVdiIds(int from, int to) {
        ByteBuffer b = ByteBuffer.allocate(4 * (to - from)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = from; i < to; i++) b.putInt(dataVid(i));
        return b.array();
    }

    /** Applies a write of {@code data} at byte {@code offset} of the object to this decoded view (header and tables). */
    public void applyWrite(long offset, byte[] data) {
        long end = offset + data.length;
        if (offset < HEADER_FIELDS_SIZE) {
            byte[] h = encodeHeader();
            int n = (int) Math.min(end, HEADER_SIZE) - (int) offset;
            System.arraycopy(data, 0, h, (int) offset, n);
            Inode t = decode(ByteBuffer.wrap(h));
            name = t.name; tag = t.tag; createTime = t.createTime; snapCtime = t.snapCtime; vmClockNsec = t.vmClockNsec;
            vdiSize = t.vdiSize; vmStateSize = t.vmStateSize; copyPolicy = t.copyPolicy; storePolicy = t.storePolicy;
            nrCopies = t.nrCopies; blockSizeShift = t.blockSizeShift; snapId = t.snapId; vdiId = t.vdiId;
            parentVdiId = t.parentVdiId; btreeCounter = t.btreeCounter;
            if (blockSizeShift != 0) ensureCapacity(objectCount());
        }
        ByteBuffer d = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        long tabEnd = Math.min(end, GREF_OFFSET);
        long first = Math.max(offset, DATA_VDI_ID_OFFSET);
        first += (4 - (first - DATA_VDI_ID_OFFSET) % 4) % 4; // partially written entries are left as they were
        for (long o = first; o + 4 <= tabEnd; o += 4) {
            int idx = (int) ((o - DATA_VDI_ID_OFFSET) / 4);
            ensureCapacity(idx + 1);
            dataVdiId[idx] = d.getInt((int) (o - offset));
        }
        for (long o = Math.max(offset, GREF_OFFSET); o + 8 <= end; o += 8) {
            int idx = (int) ((o - GREF_OFFSET) / 8);
            ensureCapacity(idx + 1);
            grefGeneration[idx] = d.getInt((int) (o - offset));
            grefCount[idx] = d.getInt((int) (o - offset) + 4);
        }
    }
}
