package io.sheepdog.sheep.store;

import static io.sheepdog.sheep.store.WriteJournalTest.filled;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The plain store's handle cache: bounded, and never serving a file that was removed, replaced or moved away. */
class FileObjectStoreTest {
    static final long SIZE = 4096;

    @TempDir
    Path dir;

    static byte[] text(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static String read(FileObjectStore s, long oid, int len) throws IOException {
        return new String(s.read(oid, 0, len), StandardCharsets.UTF_8);
    }

    /** Descriptors of this process that point into {@code d} (Linux: /proc/self/fd). */
    static long openFilesUnder(Path d) throws IOException {
        Path real = d.toRealPath();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).startsWith(real);
                } catch (IOException e) {
                    return false; // closed meanwhile (the listing's own descriptor)
                }
            }).count();
        }
    }

    @Test
    void readsSeeWritesThroughEvictions() throws Exception {
        try (FileObjectStore s = new FileObjectStore(dir.resolve("obj"), false, 4)) {
            for (long oid = 1; oid <= 20; oid++) assertTrue(s.create(oid, SIZE, null, 0, text("v1-" + oid)));
            for (int round = 2; round <= 3; round++) {
                for (long oid = 1; oid <= 20; oid++) s.write(oid, 0, text("v" + round + "-" + oid));
                for (long oid = 1; oid <= 20; oid++) {
                    String want = "v" + round + "-" + oid;
                    assertEquals(want, read(s, oid, want.length()));
                }
            }
            assertTrue(openFilesUnder(dir) <= 4, "at most the capacity stays open");
            assertTrue(s.exists(7));
            assertFalse(s.exists(99));
            assertThrows(NoSuchObjectException.class, () -> s.read(99, 0, 1));
            assertThrows(NoSuchObjectException.class, () -> s.write(99, 0, new byte[1]));
        }
        assertEquals(0, openFilesUnder(dir), "close() closes every cached file");
    }

    /**
     * A thread interrupted in its I/O on a cached object file closes that file's channel for every user; later
     * requests on the object must open it anew, not fail with an I/O error for ever.
     */
    @Test
    void anInterruptedReaderDoesNotBreakTheObjectForOthers() throws Exception {
        try (FileObjectStore s = new FileObjectStore(dir.resolve("obj"), true, 16)) {
            s.create(5, SIZE, null, 0, text("first"));
            assertEquals("first", read(s, 5, 5)); // the handle is cached now
            Thread t = new Thread(() -> {
                Thread.currentThread().interrupt();
                try {
                    s.read(5, 0, 5);
                } catch (IOException expected) {
                    // ClosedByInterruptException: this thread's own request fails
                }
            });
            t.start();
            t.join();
            assertEquals("first", read(s, 5, 5));
            s.write(5, 0, text("again"));
            assertEquals("again", read(s, 5, 5));
            assertEquals(1, openFilesUnder(dir));
        }
    }

    @Test
    void removedObjectIsNotReadThroughAnOldHandle() throws Exception {
        try (FileObjectStore s = new FileObjectStore(dir.resolve("obj"), false, 16)) {
            s.create(5, SIZE, null, 0, text("old"));
            assertEquals("old", read(s, 5, 3)); // the handle is cached now
            assertTrue(s.remove(5));
            assertFalse(s.exists(5));
            assertThrows(NoSuchObjectException.class, () -> s.read(5, 0, 3));
            s.create(5, SIZE, null, 0, text("new"));
            assertEquals("new", read(s, 5, 3));
            assertEquals(1, openFilesUnder(dir));
        }
    }

    @Test
    void objectMovedToStaleIsNotReadThroughAnOldHandle() throws Exception {
        try (FileObjectStore s = new FileObjectStore(dir.resolve("obj"), false, 16)) {
            s.create(9, SIZE, null, 0, text("old"));
            assertEquals("old", read(s, 9, 3));
            s.moveToStale(9, 3);
            assertThrows(NoSuchObjectException.class, () -> s.read(9, 0, 3));
            assertEquals("old", new String(s.readStale(9, 3, 0, 3), StandardCharsets.UTF_8));
            s.create(9, SIZE, null, 0, text("new"));
            assertEquals("new", read(s, 9, 3));
            s.wipe();
            assertEquals(0, openFilesUnder(dir), "wipe closes the cached files");
            assertFalse(s.exists(9));
        }
    }

    @Test
    void concurrentReadersAndWritersOverASmallCache() throws Exception {
        int objects = 64, threads = 8, rounds = 300;
        // without the write journal: its descriptors (one per object written in a window) are not the cache's
        try (FileObjectStore s = new FileObjectStore(dir.resolve("obj"), true, 8, 0)) {
            for (long oid = 0; oid < objects; oid++) s.create(oid, SIZE, null, 0, new byte[8]);
            ExecutorService ex = Executors.newFixedThreadPool(threads);
            try {
                List<Future<?>> fs = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int me = t;
                    fs.add(ex.submit(() -> {
                        // each thread owns the byte at offset `me` of every object, so the final state is known
                        for (int r = 1; r <= rounds; r++) {
                            long oid = (r * 7L + me * 13L) % objects;
                            s.write(oid, me, new byte[] {(byte) r});
                            byte b = s.read(oid, me, 1)[0];
                            if (b != (byte) r) throw new AssertionError("thread " + me + " read " + b + " after writing " + r);
                        }
                        return null;
                    }));
                }
                for (Future<?> f : fs) f.get();
            } finally {
                ex.shutdownNow();
            }
            for (int me = 0; me < threads; me++) {
                byte[] last = new byte[objects];
                for (int r = 1; r <= rounds; r++) last[(int) ((r * 7L + me * 13L) % objects)] = (byte) r;
                for (long oid = 0; oid < objects; oid++) assertEquals(last[(int) oid], s.read(oid, me, 1)[0], "object " + oid + " byte " + me);
            }
            // a trim that finds every eldest entry busy leaves the cache over capacity for a moment, never by much
            assertTrue(openFilesUnder(dir) <= 8 + threads, "open files: " + openFilesUnder(dir));
        }
    }

    @Test
    void defaultCapacityFollowsTheDescriptorLimit() throws Exception {
        long limit = FileObjectStore.openFilesLimit();
        String line = Files.readAllLines(Path.of("/proc/self/limits")).stream().filter(l -> l.startsWith("Max open files"))
                .findFirst().orElseThrow();
        assertEquals(line.split("\\s+")[3], Long.toString(limit), line);
        assertEquals(Math.max(64, Math.min(32_768, limit / 4 * 3)), FileObjectStore.defaultOpenFiles());
    }

    @Test
    void treeLayoutKeepsMetadataInMetaAndDataByTheLowByteOfTheVid() throws Exception {
        long inode = io.sheepdog.proto.Oids.inodeOid(0x7c2b25), data = io.sheepdog.proto.Oids.dataOid(0x7c2b25, 3);
        long attr = io.sheepdog.proto.Oids.attrOid(0x7c2b25, 0x972882c4), vmstate = io.sheepdog.proto.Oids.vmstateOid(0x7c2b25, 1);
        long ledger = io.sheepdog.proto.Oids.ledgerOid(data);
        Path obj = dir.resolve("obj");
        try (FileObjectStore s = new FileObjectStore(obj, true)) {
            s.useLayout(FileObjectStore.Layout.TREE);
            assertTrue(Files.isDirectory(obj.resolve("meta")) && Files.isDirectory(obj.resolve("00")) && Files.isDirectory(obj.resolve("ff")));
            for (long oid : new long[] {inode, data, attr, vmstate, ledger}) assertTrue(s.create(oid, SIZE, null, 0, text("o" + oid)));
            assertTrue(Files.exists(obj.resolve("meta/807c2b2500000000")));
            assertTrue(Files.exists(obj.resolve("meta/207c2b25972882c4")));
            assertTrue(Files.exists(obj.resolve("meta/407c2b2500000001")));
            assertTrue(Files.exists(obj.resolve("25/007c2b2500000003")));
            assertTrue(Files.exists(obj.resolve("25/087c2b2500000003")));
            try (Stream<Path> top = Files.list(obj)) {
                assertTrue(top.allMatch(Files::isDirectory), "no object file directly under obj/");
            }
            assertEquals(java.util.Set.of(inode, data, attr, vmstate, ledger), new java.util.HashSet<>(s.list()));
            s.write(data, 1, text("X"));
            assertEquals("oX", read(s, data, 2));
            assertTrue(s.usedBytes() >= 5 * SIZE);
            s.moveToStale(data, 4);
            assertFalse(s.exists(data));
            assertEquals("oX", new String(s.readStale(data, 4, 0, 2), StandardCharsets.UTF_8));
            assertTrue(s.remove(inode));
            assertFalse(Files.exists(obj.resolve("meta/807c2b2500000000")));

            IOException held = assertThrows(IOException.class, () -> s.useLayout(FileObjectStore.Layout.PLAIN));
            assertTrue(held.getMessage().contains("3 objects in the tree layout"), held.getMessage());
            s.wipe();
            assertEquals(List.of(), s.list());
            s.useLayout(FileObjectStore.Layout.PLAIN);
            assertTrue(s.create(data, SIZE, null, 0, text("plain")));
            assertTrue(Files.exists(obj.resolve("007c2b2500000003")));
        }
        assertEquals(FileObjectStore.Layout.TREE, FileObjectStore.Layout.ofDriver("tree"));
        assertEquals(FileObjectStore.Layout.PLAIN, FileObjectStore.Layout.ofDriver(""));
        assertNull(FileObjectStore.Layout.ofDriver("dummy"));
    }

    @Test
    void unfinishedObjectsAreDroppedUnderEitherLayout() throws Exception {
        Path obj = dir.resolve("obj");
        Files.createDirectories(obj.resolve("25"));
        Files.writeString(obj.resolve("25/007c2b2500000003.tmp"), "half");
        Files.writeString(obj.resolve("007c2b2500000004.tmp"), "half");
        try (FileObjectStore s = new FileObjectStore(obj, false)) {
            assertFalse(Files.exists(obj.resolve("25/007c2b2500000003.tmp")));
            assertFalse(Files.exists(obj.resolve("007c2b2500000004.tmp")));
        }
    }

    // ---- direct writes ----

    @Test
    void wholeBlockDurableWritesGoPastThePageCacheAndEverythingReadsBack() throws Exception {
        long oid = 0x00aa00000000001L;
        int obj = 4 << 20;
        try (FileObjectStore s = new FileObjectStore(dir.resolve("obj"), true, 16, 0)) {
            Assumptions.assumeTrue(s.directWrites(), "this file system takes no O_DIRECT");
            assertTrue(s.create(oid, obj, null, 0, new byte[0]));
            s.write(oid, 4096, filled(4096, 1));            // whole block: direct
            s.write(oid, 8192, filled(8192, 2));            // two whole blocks: direct
            s.write(oid, 100, filled(50, 3));               // inside a block: through the page cache
            s.write(oid, 20480, filled(4096, 4), false);    // not durable (-n's kind): through the page cache
            s.write(oid, 6000, filled(10, 5));              // into a block written directly before
            s.write(oid, 512 << 10, filled(1 << 20, 6));    // larger than a small buffer: direct, one pwrite
            assertEquals(3, s.directWritesDone());
            byte[] want = new byte[obj];
            java.util.Arrays.fill(want, 4096, 8192, (byte) 1);
            java.util.Arrays.fill(want, 8192, 16384, (byte) 2);
            java.util.Arrays.fill(want, 100, 150, (byte) 3);
            java.util.Arrays.fill(want, 20480, 24576, (byte) 4);
            java.util.Arrays.fill(want, 6000, 6010, (byte) 5);
            java.util.Arrays.fill(want, 512 << 10, (512 << 10) + (1 << 20), (byte) 6);
            assertBytes(s, oid, want);
            s.write(oid, 0, filled(obj, 9), false);         // the whole object, not durable: through the page cache
            s.write(oid, 1 << 20, filled((1 << 20) + 4096, 8)); // then direct over it
            assertEquals(4, s.directWritesDone());
            java.util.Arrays.fill(want, (byte) 9);
            java.util.Arrays.fill(want, 1 << 20, (2 << 20) + 4096, (byte) 8);
            assertBytes(s, oid, want);
        }
    }

    /**
     * An aligned buffer (the I/O port's, for a replica's write) goes to the disk as it is; any other buffer, or a write
     * that is not of whole blocks, is copied and written as an array is. The buffer's position is left alone.
     */
    @Test
    void anAlignedBufferIsWrittenAsItIsAndAnyOtherIsCopied() throws Exception {
        long oid = 0x00cc00000000001L;
        int obj = 4 << 20;
        try (FileObjectStore s = new FileObjectStore(dir.resolve("obj"), true, 16, 0)) {
            Assumptions.assumeTrue(s.directWrites(), "this file system takes no O_DIRECT");
            assertTrue(s.create(oid, obj, null, 0, new byte[0]));
            byte[] want = new byte[obj];
            ByteBuffer small = AlignedBuffers.take(8192);
            ByteBuffer large = AlignedBuffers.take(obj);
            try {
                small.put(filled(8192, 1)).flip();
                s.write(oid, 4096, small, true);                          // direct, from the buffer
                assertEquals(0, small.position());
                assertEquals(1, s.directWritesDone());
                java.util.Arrays.fill(want, 4096, 12288, (byte) 1);
                large.put(filled(obj, 2)).flip();
                s.write(oid, 0, large, true);                             // the whole object, from a large buffer
                assertEquals(2, s.directWritesDone());
                java.util.Arrays.fill(want, (byte) 2);
                s.write(oid, 8192, ByteBuffer.wrap(filled(4096, 3)), true); // a heap buffer: copied, then direct
                assertEquals(3, s.directWritesDone());
                java.util.Arrays.fill(want, 8192, 12288, (byte) 3);
                small.clear().put(filled(100, 4)).flip();
                s.write(oid, 5000, small, true);                          // not whole blocks: through the page cache
                assertEquals(3, s.directWritesDone());
                java.util.Arrays.fill(want, 5000, 5100, (byte) 4);
                assertBytes(s, oid, want);
            } finally {
                AlignedBuffers.release(small);
                AlignedBuffers.release(large);
            }
        }
    }

    /** {@code want} read through the store and straight from the object's file. */
    private void assertBytes(FileObjectStore s, long oid, byte[] want) throws IOException {
        assertArrayEquals(want, s.read(oid, 0, want.length), "read through the store");
        try (Stream<Path> files = Files.walk(dir.resolve("obj"))) {
            Path f = files.filter(p -> p.getFileName().toString().equals(StoreKey.fileName(oid))).findFirst().orElseThrow();
            assertArrayEquals(want, Files.readAllBytes(f), "the bytes in the file");
        }
    }

    /**
     * Direct writes (through pooled aligned buffers) and buffered writes into the same pages, from many threads:
     * every page must end with its owner's last round outside the few bytes the other thread writes, never an
     * older round (a page cache copy written back over a direct write, or a pooled buffer shared by two writes, would
     * leave one). Every thread owns one page and writes it whole with its round number; another thread writes 16
     * bytes in its middle.
     */
    @Test
    void directAndBufferedWritesToOnePageNeverLeaveAnOlderCopy() throws Exception {
        long oid = 0x00bb00000000001L;
        int pages = 8, rounds = 300;
        try (FileObjectStore s = new FileObjectStore(dir.resolve("obj"), true, 16, 0)) {
            Assumptions.assumeTrue(s.directWrites(), "this file system takes no O_DIRECT");
            assertTrue(s.create(oid, pages * 4096L, null, 0, new byte[0]));
            ExecutorService pool = Executors.newFixedThreadPool(2 * pages);
            try {
                List<Future<?>> all = new ArrayList<>();
                for (int p = 0; p < pages; p++) {
                    int page = p;
                    all.add(pool.submit(() -> {
                        for (int r = 1; r <= rounds; r++) s.write(oid, page * 4096L, filled(4096, r));
                        return null;
                    }));
                    all.add(pool.submit(() -> {
                        for (int r = 1; r <= rounds; r++) s.write(oid, page * 4096L + 2000, filled(16, 0xEE));
                        return null;
                    }));
                }
                for (Future<?> f : all) f.get();
            } finally {
                pool.shutdownNow();
            }
            assertTrue(s.directWritesDone() >= (long) pages * rounds);
            byte[] got = s.read(oid, 0, pages * 4096);
            int last = (byte) rounds & 0xff;
            for (int p = 0; p < pages; p++) {
                for (int i = 0; i < 4096; i++) {
                    int v = got[p * 4096 + i] & 0xff;
                    if (i >= 2000 && i < 2016) {
                        assertTrue(v == 0xEE || v == last, "page " + p + " byte " + i + ": " + v);
                    } else {
                        assertEquals(last, v, "page " + p + " byte " + i + " holds an older round");
                    }
                }
            }
        }
    }

    /** A direct write the kernel or the JDK refuses (alignment, EINVAL) turns direct writes off instead of failing. */
    @Test
    void aRefusedDirectWriteTurnsThemOffAndChangesNothing() throws Exception {
        Path f = Files.write(dir.resolve("file"), filled(8192, 9));
        DirectWrites d = new DirectWrites(true, dir);
        Assumptions.assumeTrue(d.enabled(), "this file system takes no O_DIRECT");
        try (java.nio.channels.FileChannel ch = d.open(f)) {
            Assumptions.assumeTrue(ch != null, "this file system takes no O_DIRECT");
            assertTrue(d.write(ch, filled(4096, 1), 0));
            assertFalse(d.write(ch, filled(4096, 2), 1), "not at a block boundary: refused");
            assertFalse(d.enabled(), "and off from now on");
            assertFalse(d.fits(0, 4096));
            assertNull(d.open(f));
        }
        byte[] want = filled(8192, 9);
        java.util.Arrays.fill(want, 0, 4096, (byte) 1);
        assertArrayEquals(want, Files.readAllBytes(f), "the refused write changed nothing");
        assertEquals(1, d.done());
    }
}
