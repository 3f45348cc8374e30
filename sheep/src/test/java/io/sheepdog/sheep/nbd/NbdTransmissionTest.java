package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Transmission phase in an EmbeddedChannel: every command, simple and structured replies, and every refusal. */
class NbdTransmissionTest {
    private static final int SIZE = 1 << 20;          // 16 chunks of 64 KiB
    private MemoryExportProvider provider;
    private MemoryDisk disk;
    private EmbeddedNbd nbd;

    @BeforeEach
    void setUp() {
        disk = MemoryDisk.of("disk", SIZE);
        provider = new MemoryExportProvider().add(disk).add(new MemoryDisk("ro", 65536, true, false, false));
    }

    @AfterEach
    void tearDown() {
        if (nbd != null) {
            nbd.close();
            assertEquals(0, nbd.unexpectedErrors.get(), "internal errors in the handler");
        }
    }

    private EmbeddedNbd open(String name, boolean structured) {
        nbd = new EmbeddedNbd(provider).go(name, structured, structured);
        return nbd;
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void writeThenReadWithSimpleReplies() {
        open("disk", false);
        byte[] data = random(10000, 1);
        nbd.request(0, CMD_WRITE, 1, 12345, data.length, data);
        NbdWire.Reply w = nbd.reply();
        assertEquals(1, w.handle());
        assertEquals(0, w.error());
        nbd.request(0, CMD_READ, 2, 12345, data.length, null);
        NbdWire.Reply r = nbd.reply();
        assertEquals(-1, r.chunkType());
        assertArrayEquals(data, r.data());
        assertArrayEquals(data, Arrays.copyOfRange(disk.snapshot(), 12345, 12345 + data.length));
    }

    @Test
    void writePayloadSplitAcrossManyBuffersArrivesIntact() {
        open("disk", true);
        byte[] data = random(300_000, 2);
        nbd.sendSplit(NbdWire.request(CMD_FLAG_FUA, CMD_WRITE, 1, 4096, data.length, data), 1500);
        assertEquals(0, nbd.reply().error());
        assertEquals(1, disk.fuaWrites.get());
        assertArrayEquals(data, Arrays.copyOfRange(disk.snapshot(), 4096, 4096 + data.length));
    }

    @Test
    void manyRequestsInOneBufferAreAllAnswered() {
        open("disk", true);
        byte[] all = new byte[0];
        for (int i = 0; i < 50; i++) {
            byte[] d = new byte[512];
            Arrays.fill(d, (byte) i);
            all = NbdHandshakeTest.concat(all, NbdWire.request(0, CMD_WRITE, i, i * 512L, 512, d));
        }
        nbd.send(all);
        for (int i = 0; i < 50; i++) assertEquals(0, nbd.reply().error());
        byte[] s = disk.snapshot();
        for (int i = 0; i < 50; i++) assertEquals((byte) i, s[i * 512 + 100]);
    }

    @Test
    void structuredReadIsOneDataChunkWithDone() {
        disk.fill(random(SIZE, 3));
        open("disk", true);
        nbd.request(CMD_FLAG_DF, CMD_READ, 77, 1000, 5000, null);
        NbdWire.Reply r = nbd.reply();
        assertEquals(77, r.handle());
        assertEquals(REPLY_TYPE_OFFSET_DATA, r.chunkType());
        assertTrue(r.done());
        assertEquals(1000, r.offset());
        assertArrayEquals(Arrays.copyOfRange(disk.snapshot(), 1000, 6000), r.data());
        nbd.request(0, CMD_READ, 78, 0, 0, null);
        NbdWire.Reply z = nbd.reply();
        assertEquals(REPLY_TYPE_NONE, z.chunkType());
        assertTrue(z.done());
    }

    @Test
    void blockStatusReportsHolesAndDataMergedAndClipped() {
        open("disk", true);
        byte[] d = random(100, 4);
        nbd.request(0, CMD_WRITE, 1, 3 * MemoryDisk.CHUNK + 10, d.length, d);   // chunk 3 allocated
        nbd.request(0, CMD_WRITE, 2, 4 * MemoryDisk.CHUNK, d.length, d);        // chunk 4 allocated
        nbd.reply();
        nbd.reply();
        nbd.request(0, CMD_BLOCK_STATUS, 3, 1000, 6 * MemoryDisk.CHUNK - 1000, null);
        NbdWire.Reply r = nbd.reply();
        assertEquals(REPLY_TYPE_BLOCK_STATUS, r.chunkType());
        assertTrue(r.done());
        ByteBuffer b = ByteBuffer.wrap(r.data());
        b.getInt();
        assertEquals(3 * MemoryDisk.CHUNK - 1000, b.getInt());
        assertEquals(STATE_HOLE | STATE_ZERO, b.getInt());
        assertEquals(2 * MemoryDisk.CHUNK, b.getInt());      // chunks 3 and 4 merged
        assertEquals(0, b.getInt());
        assertEquals(MemoryDisk.CHUNK, b.getInt());           // chunk 5, clipped at the request's end
        assertEquals(STATE_HOLE | STATE_ZERO, b.getInt());
        assertFalse(b.hasRemaining());
        nbd.request(CMD_FLAG_REQ_ONE, CMD_BLOCK_STATUS, 4, 0, SIZE, null);
        ByteBuffer one = ByteBuffer.wrap(nbd.reply().data());
        one.getInt();
        assertEquals(3 * MemoryDisk.CHUNK, one.getInt());
        one.getInt();
        assertFalse(one.hasRemaining());
    }

    @Test
    void trimAndWriteZeroesZeroAndDeallocate() {
        disk.fill(random(SIZE, 5));
        open("disk", true);
        nbd.request(0, CMD_TRIM, 1, MemoryDisk.CHUNK, MemoryDisk.CHUNK, null);
        assertEquals(0, nbd.reply().error());
        assertFalse(disk.isAllocated(MemoryDisk.CHUNK));
        nbd.request(CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 2, 2 * MemoryDisk.CHUNK, MemoryDisk.CHUNK, null);
        assertEquals(0, nbd.reply().error());
        assertTrue(disk.isAllocated(2 * MemoryDisk.CHUNK));
        nbd.request(0, CMD_WRITE_ZEROES, 3, 3 * MemoryDisk.CHUNK, MemoryDisk.CHUNK, null);
        assertEquals(0, nbd.reply().error());
        assertFalse(disk.isAllocated(3 * MemoryDisk.CHUNK));
        byte[] s = disk.snapshot();
        for (int i = MemoryDisk.CHUNK; i < 4 * MemoryDisk.CHUNK; i++) assertEquals(0, s[i], "byte " + i);
        assertNotEquals(0, s[MemoryDisk.CHUNK - 1] | s[MemoryDisk.CHUNK - 2] | s[MemoryDisk.CHUNK - 3]);
    }

    @Test
    void flushReachesTheExport() {
        open("disk", false);
        nbd.request(0, CMD_FLUSH, 9, 0, 0, null);
        assertEquals(0, nbd.reply().error());
        assertEquals(1, disk.flushes.get());
    }

    @Test
    void rangeErrorsFollowQemuNbd() {
        open("disk", true);
        byte[] before = disk.snapshot();
        assertError(CMD_READ, 0, SIZE - 10, 11, null, EINVAL);
        assertError(CMD_READ, 0, SIZE + 1, 0, null, EINVAL);
        assertError(CMD_READ, 0, -1L, 1, null, EINVAL);                 // offset 2^64-1
        assertError(CMD_WRITE, 0, SIZE - 10, 11, new byte[11], ENOSPC);
        assertError(CMD_WRITE, 0, Long.MIN_VALUE, 1, new byte[1], ENOSPC);
        assertError(CMD_WRITE_ZEROES, 0, SIZE, 1, null, ENOSPC);
        assertError(CMD_TRIM, 0, SIZE - 1, 2, null, EINVAL);
        assertError(CMD_BLOCK_STATUS, 0, SIZE, 1, null, EINVAL);
        assertError(CMD_BLOCK_STATUS, 0, 0, 0, null, EINVAL);
        assertArrayEquals(before, disk.snapshot());
        // the connection is still fine
        nbd.request(0, CMD_READ, 100, SIZE - 10, 10, null);
        assertEquals(0, nbd.reply().error());
    }

    @Test
    void oversizeRequestsGetEoverflowAndTheWritePayloadIsSkipped() {
        open("disk", false);
        int max = 1 << 20;     // EmbeddedNbd's max payload
        assertError(CMD_READ, 0, 0, max + 1, null, EOVERFLOW);
        assertError(CMD_READ, 0, 0, 0xffffffffL, null, EOVERFLOW);
        byte[] big = new byte[max + 512];
        Arrays.fill(big, (byte) 0x5a);
        // the payload's bytes must not be taken for requests
        assertError(CMD_WRITE, 0, 0, big.length, big, EOVERFLOW);
        assertTrue(nbd.isOpen());
        nbd.request(0, CMD_READ, 5, 0, 16, null);
        NbdWire.Reply r = nbd.reply();
        assertEquals(5, r.handle());
        assertArrayEquals(new byte[16], r.data());
    }

    @Test
    void writesToReadOnlyExportGetEpermAndChangeNothing() {
        open("ro", true);
        MemoryDisk ro = provider.disk("ro");
        byte[] before = ro.snapshot();
        assertError(CMD_WRITE, 0, 0, 4096, random(4096, 6), EPERM);
        assertError(CMD_TRIM, 0, 0, 4096, null, EPERM);
        assertError(CMD_WRITE_ZEROES, 0, 0, 4096, null, EPERM);
        assertArrayEquals(before, ro.snapshot());
        nbd.request(0, CMD_READ, 1, 0, 4096, null);
        assertEquals(0, nbd.reply().error());
    }

    @Test
    void badFlagsUnknownCommandsAndMissingContextAreEinval() {
        open("disk", false);                 // no structured replies, no meta context
        assertError(CMD_READ, CMD_FLAG_DF, 0, 10, null, EINVAL);
        assertError(CMD_WRITE, CMD_FLAG_NO_HOLE, 0, 4, new byte[4], EINVAL);
        assertError(CMD_FLUSH, 0x8000, 0, 0, null, EINVAL);
        assertError(CMD_CACHE, 0, 0, 10, null, EINVAL);
        assertError(42, 0, 0, 0, null, EINVAL);
        assertError(CMD_BLOCK_STATUS, 0, 0, 10, null, EINVAL);
        assertArrayEquals(new byte[SIZE], disk.snapshot());
    }

    @Test
    void structuredErrorsCarryAMessage() {
        open("disk", true);
        nbd.request(0, CMD_READ, 3, SIZE, 1, null);
        NbdWire.Reply r = nbd.reply();
        assertEquals(REPLY_TYPE_ERROR, r.chunkType());
        assertTrue(r.done());
        assertEquals(EINVAL, r.error());
        assertEquals("read past the end of the export", r.message());
    }

    @Test
    void exportErrorsBecomeReplies() {
        NbdExport failing = new NbdExport() {
            public long size() { return 8192; }
            public boolean readOnly() { return false; }
            public void read(long o, int l, io.netty.buffer.ByteBuf dst) throws java.io.IOException { throw new java.io.IOException("disk on fire"); }
            public void write(long o, io.netty.buffer.ByteBuf d, boolean f) throws NbdException { throw NbdException.noSpace("cluster full"); }
            public void flush() { throw new IllegalStateException("bug"); }
            public void trim(long o, long l, boolean f) { }
            public void writeZeroes(long o, long l, boolean n, boolean f) { }
            public java.util.List<NbdExtent> allocation(long o, long l) { return java.util.List.of(); }
            public void close() { }
        };
        NbdExportProvider p = new NbdExportProvider() {
            public NbdExport open(String n, boolean ro) { return failing; }
            public java.util.List<String> list() { return java.util.List.of("x"); }
        };
        nbd = new EmbeddedNbd(p).go("x", true, true);
        nbd.request(0, CMD_READ, 1, 0, 512, null);
        NbdWire.Reply r = nbd.reply();
        assertEquals(EIO, r.error());
        assertEquals("disk on fire", r.message());
        assertError(CMD_WRITE, 0, 0, 512, new byte[512], ENOSPC);
        assertError(CMD_FLUSH, 0, 0, 0, null, EIO);
        assertError(CMD_BLOCK_STATUS, 0, 0, 512, null, EIO);
        assertTrue(nbd.isOpen());
    }

    @Test
    void disconnectClosesAndClosesTheExportOnce() {
        open("disk", false);
        nbd.request(0, CMD_DISC, 1, 0, 0, null);
        assertFalse(nbd.isOpen());
        assertEquals(1, provider.closed.get());
        assertEquals(0, nbd.out.available());
    }

    @Test
    void badRequestMagicClosesTheConnection() {
        open("disk", false);
        byte[] req = NbdWire.request(0, CMD_READ, 1, 0, 10, null);
        req[3] ^= 0x10;
        nbd.send(req);
        assertFalse(nbd.isOpen());
        assertEquals(1, provider.closed.get());
    }

    private void assertError(int type, int flags, long offset, long length, byte[] payload, int errno) {
        long handle = 0x1000 + type;
        nbd.request(flags, type, handle, offset, length, payload);
        NbdWire.Reply r = nbd.reply();
        assertEquals(handle, r.handle());
        assertEquals(errno, r.error(), NbdProtocol.commandName(type) + " " + offset + "+" + length);
    }
}
