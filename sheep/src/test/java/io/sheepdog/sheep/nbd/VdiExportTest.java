package io.sheepdog.sheep.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.sheep.Sheep;
import io.sheepdog.sheep.SheepOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A VDI export on a real sheep, fed the way the NBD server feeds it: writes lent as composite network buffers that
 * cross object boundaries, reads appended after a reply header. The export must neither release nor move what it
 * is lent, and the bytes must come back exactly, holes as zeros.
 */
class VdiExportTest {
    private static final int MIB = 1 << 20;
    private static final long SIZE = 20L * MIB;     // five 4 MiB objects
    @TempDir Path dir;
    private Sheep sheep;

    @BeforeEach
    void start() throws Exception {
        int port = io.sheepdog.sheep.TestPorts.free();
        sheep = new Sheep(SheepOptions.builder(dir.resolve("store")).port(port).zone(0).bindAddr("127.0.0.1").cluster("solo").foreground(true).logDir(dir).noSync(true).build());
        sheep.start();
        try (SheepConnection c = SheepConnection.open("127.0.0.1", port)) {
            SdRequest f = SdRequest.of(Opcodes.MAKE_FS).clusterCopies(1).clusterCtime(5L << 32).clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES).flags(SdFlags.CMD_WRITE).dataLength(6);
            assertEquals(SdResult.SUCCESS, c.call(f, "plain\0".getBytes()).result());
            assertEquals(SdResult.SUCCESS, c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(SIZE).flags(SdFlags.CMD_WRITE)
                    .dataLength(256), Strings.fixed("disk", 256)).result());
        }
    }

    @AfterEach
    void stop() { sheep.close(); }

    /** {@code data} as the server lends a payload: a composite of pooled direct pieces of uneven sizes. */
    private static CompositeByteBuf lent(byte[] data, Random rnd, List<ByteBuf> pieces) {
        CompositeByteBuf c = PooledByteBufAllocator.DEFAULT.compositeDirectBuffer(1024);
        for (int at = 0; at < data.length; ) {
            int n = Math.min(data.length - at, 1 + rnd.nextInt(300_000));
            ByteBuf p = PooledByteBufAllocator.DEFAULT.directBuffer(n).writeBytes(data, at, n);
            pieces.add(p);
            c.addComponent(true, p);
            at += n;
        }
        return c;
    }

    @Test
    void clusterFailuresBecomeTheNbdErrorsQemuActsOn() {
        // ENOSPC makes QEMU pause the VM (werror=enospc) rather than fail the guest's I/O
        assertEquals(NbdProtocol.ENOSPC, VdiExportProvider.VdiExport.nbdError(new io.sheepdog.client.SheepdogException(SdResult.NO_SPACE)).errno());
        assertEquals(NbdProtocol.EPERM, VdiExportProvider.VdiExport.nbdError(new io.sheepdog.client.SheepdogException(SdResult.READONLY)).errno());
        NbdException halt = VdiExportProvider.VdiExport.nbdError(new io.sheepdog.client.SheepdogException(SdResult.HALT));
        assertEquals(NbdProtocol.EIO, halt.errno());
        assertEquals(SdResult.message(SdResult.HALT), halt.getMessage());
    }

    @Test
    void unalignedWritesAndReadsAcrossObjectsMatchAModel() throws Exception {
        Random rnd = new Random(17);
        byte[] model = new byte[(int) SIZE];
        VdiExportProvider provider = new VdiExportProvider(sheep.processor());
        try (NbdExport e = provider.open("disk", false)) {
            assertEquals(SIZE, e.size());
            for (int i = 0; i < 12; i++) {
                // into objects 0..2 or object 4 only, so object 3 (12..16 MiB) stays a hole that must read as zeros
                boolean tail = i % 4 == 3;
                long lo = tail ? 16L * MIB : 0, hi = tail ? SIZE : 12L * MIB;
                int len = 1 + rnd.nextInt((int) Math.min(6L * MIB, hi - lo));
                long off = lo + rnd.nextLong(hi - lo - len + 1);
                byte[] d = new byte[len];
                rnd.nextBytes(d);
                List<ByteBuf> pieces = new ArrayList<>();
                CompositeByteBuf payload = lent(d, rnd, pieces);
                int readerIndex = payload.readerIndex();
                try {
                    e.write(off, payload, false);
                    assertEquals(1, payload.refCnt(), "the export does not release the payload it is lent");
                    assertEquals(readerIndex, payload.readerIndex(), "nor move its reader index");
                    for (ByteBuf p : pieces) assertEquals(1, p.refCnt(), "nor any network buffer in it");
                } finally {
                    payload.release();
                }
                for (ByteBuf p : pieces) assertEquals(0, p.refCnt());
                System.arraycopy(d, 0, model, (int) off, len);
            }
            for (int i = 0; i < 12; i++) {
                long off = i == 0 ? 0 : rnd.nextInt((int) SIZE);
                int len = i == 0 ? (int) SIZE : 1 + rnd.nextInt((int) Math.min(9L * MIB, SIZE - off));
                ByteBuf dst = PooledByteBufAllocator.DEFAULT.directBuffer(16 + len);
                try {
                    dst.writeLong(0x1122334455667788L).writeLong(off); // a reply header before the data
                    e.read(off, len, dst);
                    assertEquals(16 + len, dst.writerIndex(), "the read appends exactly its length");
                    assertEquals(0x1122334455667788L, dst.getLong(0), "and leaves what was before it alone");
                    byte[] got = new byte[len];
                    dst.getBytes(16, got);
                    byte[] want = new byte[len];
                    System.arraycopy(model, (int) off, want, 0, len);
                    assertArrayEquals(want, got, "read " + off + "+" + len);
                } finally {
                    dst.release();
                }
            }
            // a write lent as a heap buffer slice with a non-zero reader index
            byte[] d = new byte[MIB + 3];
            rnd.nextBytes(d);
            ByteBuf heap = Unpooled.buffer(d.length + 5).writeBytes(new byte[5]).writeBytes(d);
            heap.skipBytes(5);
            e.write(4L * MIB - 1, heap, true);
            assertEquals(5, heap.readerIndex());
            System.arraycopy(d, 0, model, 4 * MIB - 1, d.length);
            ByteBuf dst = Unpooled.buffer(3 * MIB);
            e.read(3L * MIB, 3 * MIB, dst);
            byte[] got = new byte[3 * MIB];
            dst.getBytes(0, got);
            byte[] want = new byte[3 * MIB];
            System.arraycopy(model, 3 * MIB, want, 0, 3 * MIB);
            assertArrayEquals(want, got);
        }
    }
}
