package io.sheepdog.client;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdResult;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class VolumeTest extends ModelSheepFixture {
    static final int MB = 1 << 20;

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void splitCutsAtObjectBoundaries() {
        List<Volume.Piece> p = Volume.split(4 * MB, 22, 4L * MB - 10, 5, 4 * MB + 20);
        assertEquals(3, p.size());
        assertEquals(new Volume.Piece(0, 4 * MB - 10, 5, 10), p.get(0));
        assertEquals(new Volume.Piece(1, 0, 15, 4 * MB), p.get(1));
        assertEquals(new Volume.Piece(2, 0, 15 + 4 * MB, 10), p.get(2));
        assertTrue(Volume.split(4 * MB, 22, 0, 0, 0).isEmpty());
    }

    @Test
    void runsGroupConsecutiveIndexes() {
        List<int[]> r = Volume.runs(List.of(7, 3, 4, 5, 9, 10));
        assertEquals(3, r.size());
        assertArrayEquals(new int[] {3, 6}, r.get(0));
        assertArrayEquals(new int[] {7, 8}, r.get(1));
        assertArrayEquals(new int[] {9, 11}, r.get(2));
    }

    @Test
    void unallocatedReadsAsZerosAndWritesReadBack() throws Exception {
        int vid = sheep.createVdi("v", 20L * MB);
        try (Volume v = Volume.openWritable(client, "v", false)) {
            assertEquals(vid, v.vid());
            assertEquals(20L * MB, v.size());
            assertArrayEquals(new byte[3 * MB], v.read(MB, 3 * MB));
            byte[] d = random(9 * MB, 1);
            long off = 3L * MB + 12345;     // spans objects 0..3
            v.write(off, d);
            assertArrayEquals(d, v.read(off, d.length));
            assertArrayEquals(new byte[12345], v.read(3L * MB, 12345), "bytes before the write stay zero");
            // objects 0..3 created once each, and recorded with ONE inode write (a contiguous run)
            for (int i = 0; i < 4; i++) assertEquals(1, sheep.creates(Oids.dataOid(vid, i)), "object " + i);
            assertEquals(0, sheep.creates(Oids.dataOid(vid, 4)));
            assertEquals(1, sheep.opCount(Opcodes.WRITE_OBJ));
            Inode n = client.readInode(vid);
            for (int i = 0; i < 4; i++) assertEquals(vid, n.dataVdiId[i]);
            assertEquals(0, n.dataVdiId[4]);
            // a second write into existing objects is a plain WRITE_OBJ, nothing is created again
            v.write(off, random(100, 2));
            assertEquals(1, sheep.creates(Oids.dataOid(vid, 0)));
        }
        // a fresh open sees the same data
        try (Volume r = Volume.openReadOnly(client, "v", 0, "")) {
            byte[] expect = random(9 * MB, 1);
            System.arraycopy(random(100, 2), 0, expect, 0, 100);
            assertArrayEquals(expect, r.read(3L * MB + 12345, expect.length));
            assertThrows(SheepdogException.class, () -> r.write(0, new byte[1]));
        }
    }

    @Test
    void concurrentWritesToOneUnallocatedObjectCreateItOnce() throws Exception {
        int vid = sheep.createVdi("conc", 8L * MB);
        sheep.maxDelayMs = 5; // replies out of order, creations overlap
        try (Volume v = Volume.openWritable(client, "conc", false);
             var exec = Executors.newVirtualThreadPerTaskExecutor()) {
            int writers = 32, chunk = 64 * 1024;
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < writers; t++) {
                int id = t;
                // half the writers hit object 0, half object 1, all at distinct offsets
                fs.add(exec.submit(() -> { v.write((long) (id % 2) * 4 * MB + (id / 2) * chunk, random(chunk, id)); return null; }));
            }
            for (Future<?> f : fs) f.get();
            assertEquals(1, sheep.creates(Oids.dataOid(vid, 0)));
            assertEquals(1, sheep.creates(Oids.dataOid(vid, 1)));
            for (int t = 0; t < writers; t++) {
                assertArrayEquals(random(chunk, t), v.read((long) (t % 2) * 4 * MB + (t / 2) * chunk, chunk), "writer " + t);
            }
        }
    }

    @Test
    void writesAfterASnapshotCopyOnWriteAndKeepTheSnapshot() throws Exception {
        int vid = sheep.createVdi("cow", 8L * MB);
        byte[] base = random(8 * MB, 7);
        try (Volume v = Volume.openWritable(client, "cow", false)) {
            v.write(0, base);
        }
        // take a snapshot the way dog does: NEW_VDI(snapid 1, base = current VID)
        int working = client.newVdi(new SheepClient.NewVdi("cow", 8L * MB, vid, 1, 0, 0, 0, 22)).vid();
        assertNotEquals(vid, working);
        try (Volume v = Volume.openWritable(client, "cow", false)) {
            assertEquals(working, v.vid());
            assertEquals(vid, v.dataVid(0), "the new working VDI shares the snapshot's objects");
            byte[] patch = random(4096, 8);
            v.write(4 * MB + 100, patch);
            assertEquals(1, sheep.creates(Oids.dataOid(working, 1)));
            assertEquals(0, sheep.creates(Oids.dataOid(working, 0)));
            assertEquals(working, v.dataVid(1));
            assertEquals(vid, v.dataVid(0));
            byte[] expect = base.clone();
            System.arraycopy(patch, 0, expect, 4 * MB + 100, patch.length);
            assertArrayEquals(expect, v.read(0, 8 * MB), "COW kept the rest of the object");
            assertArrayEquals(new long[] {1, 1}, v.usage());
        }
        try (Volume snap = Volume.openReadOnly(client, "cow", 1, "")) {
            assertTrue(snap.isSnapshot());
            assertArrayEquals(base, snap.read(0, 8 * MB), "the snapshot is unchanged");
        }
    }

    @Test
    void snapshotTakenWhileOpenIsFollowed() throws Exception {
        int vid = sheep.createVdi("live", 8L * MB);
        try (Volume v = Volume.openWritable(client, "live", true)) {
            byte[] a = random(MB, 1);
            v.write(0, a);
            // someone snapshots the VDI under us
            int working = client.newVdi(new SheepClient.NewVdi("live", 8L * MB, vid, 1, 0, 0, 0, 22)).vid();
            byte[] b = random(MB, 2);
            v.write(0, b); // READONLY from the server, reload, redo against the new working VDI
            assertEquals(working, v.vid());
            assertArrayEquals(b, v.read(0, MB));
            assertEquals(1, sheep.creates(Oids.dataOid(working, 0)));
            try (Volume snap = Volume.openReadOnly(client, "live", 1, "")) {
                assertArrayEquals(a, snap.read(0, MB));
            }
        }
    }

    @Test
    void discardReleasesFullyCoveredObjectsOnly() throws Exception {
        int vid = sheep.createVdi("d", 12L * MB);
        try (Volume v = Volume.openWritable(client, "d", false)) {
            v.write(0, random(12 * MB, 3));
            int released = v.discard(MB, 8L * MB); // covers object 1 fully, 0 and 2 partially
            assertEquals(1, released);
            assertEquals(vid, v.dataVid(0));
            assertEquals(0, v.dataVid(1));
            assertEquals(vid, v.dataVid(2));
            assertArrayEquals(new byte[4 * MB], v.read(4L * MB, 4 * MB));
            assertEquals(0, client.readInode(vid).dataVdiId[1], "entry zeroed in the inode object");
            assertEquals(List.of(new Volume.Extent(0, 4L * MB, true), new Volume.Extent(4L * MB, 4L * MB, false),
                    new Volume.Extent(8L * MB, 4L * MB, true)), v.allocationMap(0, 12L * MB));
            assertEquals(List.of(new Volume.Extent(5L * MB, 3L * MB, false), new Volume.Extent(8L * MB, MB, true)),
                    v.allocationMap(5L * MB, 4L * MB));
            v.writeZeroes(100, 12L * MB - 100);
            byte[] head = random(12 * MB, 3);
            assertArrayEquals(Arrays.copyOf(head, 100), v.read(0, 100));
            assertArrayEquals(new byte[12 * MB - 100], v.read(100, 12 * MB - 100));
            assertEquals(0, v.dataVid(2), "the tail object was fully covered and discarded");
        }
    }

    @Test
    void resizeGrowsOnly() throws Exception {
        int vid = sheep.createVdi("r", 4L * MB);
        try (Volume v = Volume.openWritable(client, "r", false)) {
            assertThrows(java.io.IOException.class, () -> v.write(4L * MB, new byte[1]));
            v.resize(10L * MB);
            assertEquals(10L * MB, v.size());
            v.write(9L * MB, random(MB, 4));
            assertEquals(10L * MB, client.readInodeHeader(vid).vdiSize);
            var e = assertThrows(java.io.IOException.class, () -> v.resize(MB));
            assertEquals("Shrinking VDIs is not implemented", e.getMessage());
        }
    }

    @Test
    void preallocateCreatesEveryObject() throws Exception {
        int vid = sheep.createVdi("p", 10L * MB);
        try (Volume v = Volume.openWritable(client, "p", false)) {
            v.write(0, new byte[] {1});
            v.preallocate();
            for (int i = 0; i < 3; i++) assertEquals(1, sheep.creates(Oids.dataOid(vid, i)));
            assertArrayEquals(new long[] {3, 0}, v.usage());
            assertEquals(1, v.read(0, 1)[0]);
        }
    }

    @Test
    void readSinkGetsEachObjectInOrderWithHolesAsZeros() throws Exception {
        int vid = sheep.createVdi("sink", 16L * MB);
        try (Volume v = Volume.openWritable(client, "sink", false)) {
            byte[] a = random(MB, 21), b = random(MB, 22);
            v.write(3L * MB, a);            // end of object 0
            v.write(8L * MB, b);            // start of object 2; objects 1 and 3 stay holes
            assertEquals(0, v.dataVid(1));
            sheep.maxDelayMs = 5;           // replies come back out of order: delivery must still be in order
            long off = 3L * MB + 100;
            int len = 12 * MB - 200;        // objects 0..3
            List<int[]> calls = new ArrayList<>();
            byte[] got = new byte[len];
            v.read(off, len, new Volume.ReadSink() {
                @Override public void data(int at, byte[] src, int srcOff, int n) {
                    calls.add(new int[] {at, n, 1});
                    System.arraycopy(src, srcOff, got, at, n);
                }
                @Override public void zeros(int at, int n) { calls.add(new int[] {at, n, 0}); }
            });
            // one call per object, contiguous from 0 to len, holes reported as zeros
            assertEquals(4, calls.size());
            int next = 0;
            for (int[] c : calls) {
                assertEquals(next, c[0], "calls are in order and without gaps");
                next += c[1];
            }
            assertEquals(len, next);
            assertArrayEquals(new int[] {1, 0, 1, 0}, calls.stream().mapToInt(c -> c[2]).toArray());
            byte[] want = new byte[len];
            System.arraycopy(a, 100, want, 0, MB - 100);
            System.arraycopy(b, 0, want, (int) (8L * MB - off), MB);
            assertArrayEquals(want, got);
            assertArrayEquals(want, v.read(off, len), "the array form reads the same");
            assertEquals(vid, v.dataVid(0));
        }
    }

    @Test
    void writeSourceIsAskedOncePerObjectPiece() throws Exception {
        sheep.createVdi("src", 16L * MB);
        try (Volume v = Volume.openWritable(client, "src", false)) {
            byte[] d = random(9 * MB, 23);
            long off = 2L * MB + 7;         // objects 0, 1 and 2
            List<int[]> asked = new ArrayList<>();
            v.write(off, d.length, (at, n) -> {
                synchronized (asked) { asked.add(new int[] {at, n}); }
                return ByteBuffer.wrap(d, at, n);
            });
            assertEquals(3, asked.size());
            assertArrayEquals(new int[] {0, 2 * MB - 7}, asked.get(0));
            assertArrayEquals(new int[] {2 * MB - 7, 4 * MB}, asked.get(1));
            assertArrayEquals(new int[] {6 * MB - 7, 3 * MB + 7}, asked.get(2));
            assertArrayEquals(d, v.read(off, d.length));
        }
    }

    /**
     * A write source lends its buffers for the call only (the NBD front end gives them back to a pool when the call
     * returns), so a write whose thread is interrupted must still wait for every request it started before it
     * returns: else a request could still read a buffer that was given back and refilled by another write.
     */
    @Test
    @org.junit.jupiter.api.Timeout(30)
    void anInterruptedWriteReturnsOnlyWhenNoRequestStillReadsItsBuffers() throws Exception {
        sheep.createVdi("lent", 16L * MB);
        ObjectTransport base = pool.peer("127.0.0.1", sheep.port());
        java.util.concurrent.atomic.AtomicInteger pending = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.ScheduledExecutorService later = Executors.newSingleThreadScheduledExecutor();
        ObjectTransport slow = new ObjectTransport() {
            @Override public java.util.concurrent.CompletableFuture<Reply> submit(io.sheepdog.proto.SdRequest req, byte[] payload) {
                return base.submit(req, payload);
            }
            @Override public java.util.concurrent.CompletableFuture<Reply> submitBuffer(io.sheepdog.proto.SdRequest req, ByteBuffer body) {
                pending.incrementAndGet();
                java.util.concurrent.CompletableFuture<Reply> f = new java.util.concurrent.CompletableFuture<>();
                base.submitBuffer(req, body).whenComplete((r, t) -> later.schedule(() -> {
                    pending.decrementAndGet();
                    if (t != null) f.completeExceptionally(t); else f.complete(r);
                }, 500, java.util.concurrent.TimeUnit.MILLISECONDS));
                return f;
            }
            @Override public void close() { }
        };
        try (Volume v = Volume.openWritable(new SheepClient(slow), "lent", false)) {
            byte[] d = random(8 * MB, 25);
            v.write(0, d); // creates objects 0 and 1 (creations go as arrays)
            Thread.currentThread().interrupt(); // as if the front end's worker were interrupted during the write
            // two objects: two requests in flight at once, sent from the buffers the source lends
            IOException e = assertThrows(IOException.class, () -> v.write(0, d.length, (at, n) -> ByteBuffer.wrap(d, at, n)));
            assertTrue(Thread.interrupted(), "the interrupt is kept for the caller");
            assertEquals(0, pending.get(), "no request still reads a lent buffer when the write returns: " + e);
        } finally {
            later.shutdownNow();
        }
    }

    @Test
    @org.junit.jupiter.api.Timeout(30)
    void aFailingWriteSourceLeavesNoClaimBehind() throws Exception {
        int vid = sheep.createVdi("fail", 16L * MB);
        try (Volume v = Volume.openWritable(client, "fail", false)) {
            byte[] d = random(8 * MB, 24);
            RuntimeException e = assertThrows(IllegalStateException.class, () -> v.write(0, d.length, (at, n) -> {
                if (at > 0) throw new IllegalStateException("source gone");
                return ByteBuffer.wrap(Arrays.copyOfRange(d, at, at + n));
            }));
            assertEquals("source gone", e.getMessage());
            // the first object was created and recorded; the claim on the second was released: writing it works
            assertEquals(vid, v.dataVid(0));
            v.write(0, d);
            assertArrayEquals(d, v.read(0, d.length));
            assertThrows(IllegalStateException.class, () -> v.write(0, 10, (at, n) -> ByteBuffer.allocate(n + 1)),
                    "a source must give exactly the bytes asked for");
        }
    }

    @Test
    void missingVdiIsReported() {
        SheepdogException e = assertThrows(SheepdogException.class, () -> Volume.openWritable(client, "none", false));
        assertEquals(SdResult.NO_VDI, e.result());
    }

    @Test
    void enumeratorListsLiveVdisInVidOrder() throws Exception {
        int a = sheep.createVdi("alpha", 4L * MB);
        int b = sheep.createVdi("beta", 8L * MB);
        int c = sheep.createVdi("gamma", 4L * MB);
        client.delVdi("beta", 0, "");
        List<Inode> all = VdiEnumerator.list(client, true, null);
        List<Integer> vids = all.stream().map(n -> n.vdiId).toList();
        List<Integer> expect = new ArrayList<>(List.of(a, c));
        expect.sort(null);
        assertEquals(expect, vids);
        assertFalse(vids.contains(b));
    }
}
