package io.sheepdog.bench;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Proto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The inode codec and the inode update of the write path. A VDI of {@code vdiSizeGiB} has size/4 MiB entries in its
 * data_vdi_id table (1 GiB: 256; 100 GiB: 25 600; 4 TiB: the full 1 048 576). Decoding and encoding cost grows with
 * the table; an update of one entry (what a first write to an object does) should not.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class InodeBench {
    @Param({"1", "100", "4096"})
    public int vdiSizeGiB;

    private Inode inode;
    private byte[] encoded;       // header + the data_vdi_id table the VDI uses, as read from disk
    private int length;
    private int nextIndex;
    private byte[] entry;

    @Setup
    public void setup() {
        inode = new Inode();
        inode.name = "bench-vdi";
        inode.vdiSize = (long) vdiSizeGiB << 30;
        inode.nrCopies = 3;
        inode.blockSizeShift = Proto.DEFAULT_BLOCK_SIZE_SHIFT;
        inode.vdiId = 0x7c2b25;
        inode.createTime = 1_700_000_000L << 32;
        int n = inode.objectCount();
        inode.ensureCapacity(n);
        for (int i = 0; i < n; i += 2) inode.dataVdiId[i] = inode.vdiId; // half allocated
        length = (int) Inode.dataVdiIdOffset(n);
        encoded = inode.encode(length);
        entry = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(inode.vdiId).array();
    }

    /** Decode header and table (what opening a VDI, or a gateway's inode cache miss, costs). */
    @Benchmark
    public Inode decode() {
        return Inode.decode(encoded);
    }

    /** Encode header and table (what writing a whole inode costs: create, snapshot, clone). */
    @Benchmark
    public byte[] encode() {
        return inode.encode(length);
    }

    /** The inode update of a first write to an object: one data_vdi_id entry encoded and applied. */
    @Benchmark
    public int updateOneEntry() {
        int idx = nextIndex;
        nextIndex = (nextIndex + 1) % inode.dataVdiId.length;
        inode.dataVdiId[idx] = inode.vdiId;
        byte[] wire = inode.encodeDataVdiIds(idx, idx + 1);
        inode.applyWrite(Inode.dataVdiIdOffset(idx), entry);
        return wire.length + inode.dataVid(idx);
    }
}
