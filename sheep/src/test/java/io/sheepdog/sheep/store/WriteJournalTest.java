package io.sheepdog.sheep.store;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The store's write journal, with the files on disk as a crash leaves them: object files that lost every write the
 * journal holds (as when the page cache was not written back), torn records, objects removed and made again, large
 * writes after small ones, windows that wrapped, and concurrent writers sharing syncs.
 */
class WriteJournalTest {
    private static final int OBJ = 4 << 20;
    private static final long JOURNAL = 2L << 20;
    private static final long X = 0x00ab000000000001L;

    @TempDir
    Path dir;

    private FileObjectStore open() throws IOException {
        return new FileObjectStore(dir.resolve("obj"), true, 64, JOURNAL);
    }

    private Path objectFile(long oid) { return dir.resolve("obj").resolve(StoreKey.fileName(oid)); }

    private Path journalFile() { return dir.resolve("obj/.journal/records"); }

    /** The object file as if none of the writes made since it was created had reached the disk. */
    private void loseCachedWrites(long oid) throws IOException {
        try (FileChannel ch = FileChannel.open(objectFile(oid), StandardOpenOption.WRITE)) {
            ByteBuffer zeros = ByteBuffer.allocate(OBJ);
            while (zeros.hasRemaining()) ch.write(zeros, zeros.position());
        }
    }

    private static byte[] random(Random r, int n) {
        byte[] b = new byte[n];
        r.nextBytes(b);
        return b;
    }

    @Test
    void replayWritesBackWhatTheObjectFilesLost() throws Exception {
        byte[] expected = new byte[OBJ];
        Random r = new Random(1);
        FileObjectStore s = open();
        assertTrue(s.journaled());
        assertTrue(s.create(X, OBJ, null, 0, new byte[0]));
        for (int i = 0; i < 200; i++) {
            int len = 512 * (1 + r.nextInt(16));
            int off = r.nextInt(OBJ - len);
            byte[] d = random(r, len);
            s.write(X, off, d);
            System.arraycopy(d, 0, expected, off, len);
        }
        assertArrayEquals(expected, s.read(X, 0, OBJ), "read back before the crash");
        s.abandon();
        loseCachedWrites(X);
        try (FileObjectStore again = open()) {
            assertArrayEquals(expected, again.read(X, 0, OBJ), "every acknowledged write is back after replay");
        }
        // a clean close checkpoints: the object file holds everything and the journal nothing more to replay
        loseCachedWrites(X);
        try (FileObjectStore third = open()) {
            assertArrayEquals(new byte[OBJ], third.read(X, 0, OBJ), "records of a closed window are not replayed");
        }
    }

    @Test
    void aReplayCutShortIsCompletedByTheNext() throws Exception {
        FileObjectStore s = open();
        assertTrue(s.create(X, OBJ, null, 0, new byte[0]));
        Random r = new Random(2);
        byte[] expected = new byte[OBJ];
        for (int i = 0; i < 50; i++) {
            int off = r.nextInt(OBJ / 4096) * 4096;
            byte[] d = random(r, 4096);
            s.write(X, off, d);
            System.arraycopy(d, 0, expected, off, 4096);
        }
        s.abandon();
        byte[] records = Files.readAllBytes(journalFile());
        loseCachedWrites(X);
        // a first start replays and is killed before its new window is in the header: as if it had applied any part
        // of the records, the object file holds some of them and the journal all of them
        try (FileObjectStore first = open()) {
            assertArrayEquals(expected, first.read(X, 0, OBJ));
            first.abandon();
        }
        Files.write(journalFile(), records);
        try (FileChannel ch = FileChannel.open(objectFile(X), StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(OBJ / 2), 0);     // the first half of the object back to zeros
        }
        try (FileObjectStore second = open()) {
            assertArrayEquals(expected, second.read(X, 0, OBJ), "the second replay completes the first");
        }
    }

    @Test
    void aTornRecordEndsReplayAndWhatFollowsItIsNotApplied() throws Exception {
        FileObjectStore s = open();
        assertTrue(s.create(X, OBJ, null, 0, new byte[0]));
        byte[] a = filled(4096, 'a'), b = filled(4096, 'b'), c = filled(4096, 'c');
        s.write(X, 0, a);
        s.write(X, 8192, b);
        s.write(X, 16384, c);
        s.abandon();
        loseCachedWrites(X);
        // the second record's data torn (its checksum no longer holds)
        long second = WriteJournal.FILE_HEADER + (WriteJournal.RECORD_HEADER + 4096) + WriteJournal.RECORD_HEADER + 100;
        try (FileChannel ch = FileChannel.open(journalFile(), StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {'x'}), second);
        }
        try (FileObjectStore again = open()) {
            assertArrayEquals(a, again.read(X, 0, 4096));
            assertArrayEquals(new byte[4096], again.read(X, 8192, 4096), "the torn record is not applied");
            assertArrayEquals(new byte[4096], again.read(X, 16384, 4096), "nor anything after it");
        }
    }

    @Test
    void recordsOfARemovedObjectNeverReachItsSuccessor() throws Exception {
        FileObjectStore s = open();
        assertTrue(s.create(X, OBJ, null, 0, new byte[0]));
        s.write(X, 0, filled(4096, 'o'));
        assertTrue(s.remove(X));
        assertTrue(s.create(X, OBJ, null, 0, filled(100, 'n')));
        s.abandon();
        try (FileObjectStore again = open()) {
            byte[] got = again.read(X, 0, 4096);
            assertArrayEquals(filled(100, 'n'), Arrays.copyOf(got, 100));
            assertArrayEquals(new byte[3996], Arrays.copyOfRange(got, 100, 4096), "the old object's write stays gone");
        }
    }

    @Test
    void aLargeWriteAfterSmallOnesIsNotUndoneByReplay() throws Exception {
        FileObjectStore s = open();
        assertTrue(s.create(X, OBJ, null, 0, new byte[0]));
        s.write(X, 0, filled(4096, 's'));
        byte[] large = filled(FileObjectStore.JOURNAL_MAX_WRITE + 4096, 'L');
        s.write(X, 0, large);
        s.write(X, 4096, filled(512, 't'));          // and a small one after it again
        s.abandon();
        try (FileObjectStore again = open()) {
            byte[] want = large.clone();
            System.arraycopy(filled(512, 't'), 0, want, 4096, 512);
            assertArrayEquals(want, again.read(X, 0, large.length));
        }
    }

    @Test
    void windowsWrapAndConcurrentWritersShareSyncs() throws Exception {
        long[] oids = new long[16];
        byte[][] expected = new byte[oids.length][OBJ];
        FileObjectStore s = open();
        for (int i = 0; i < oids.length; i++) {
            oids[i] = X + i;
            assertTrue(s.create(oids[i], OBJ, null, 0, new byte[0]));
        }
        // 8 writers, 8 MiB of 4 KiB writes through a 2 MiB journal: several checkpoints on the way
        ExecutorService pool = Executors.newFixedThreadPool(8);
        List<Future<?>> fs = new ArrayList<>();
        for (int w = 0; w < 8; w++) {
            int writer = w;
            fs.add(pool.submit(() -> {
                Random r = new Random(writer);
                for (int i = 0; i < 256; i++) {
                    int o = writer * 2 + (i & 1);             // each object has one writer: its content is known
                    int off = r.nextInt(OBJ / 4096) * 4096;
                    byte[] d = random(r, 4096);
                    s.write(oids[o], off, d);
                    synchronized (expected[o]) { System.arraycopy(d, 0, expected[o], off, 4096); }
                }
                return null;
            }));
        }
        for (Future<?> f : fs) f.get();
        pool.shutdown();
        s.abandon();
        try (FileObjectStore again = open()) {
            for (int i = 0; i < oids.length; i++) assertArrayEquals(expected[i], again.read(oids[i], 0, OBJ), "object " + i);
        }
    }

    @Test
    void withoutSyncOrWithSizeZeroThereIsNoJournal() throws Exception {
        try (FileObjectStore s = new FileObjectStore(dir.resolve("a"), false, 64, JOURNAL)) {
            assertFalse(s.journaled());
        }
        try (FileObjectStore s = new FileObjectStore(dir.resolve("b"), true, 64, 0)) {
            assertFalse(s.journaled());
        }
        assertFalse(Files.exists(dir.resolve("a/.journal/records")));
    }

    @Test
    void aFileSystemTooSmallForTheJournalLeavesTheStoreWithoutOne() throws Exception {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "mounting a tmpfs needs root");
        Path small = Files.createDirectories(dir.resolve("small"));
        Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small.toString())
                .redirectErrorStream(true).start();
        Assumptions.assumeTrue(mount.waitFor() == 0, "tmpfs cannot be mounted here");
        try {
            try (FileObjectStore s = new FileObjectStore(small.resolve("obj"), true, 64, 8L << 20)) {
                assertFalse(s.journaled(), "8 MiB do not fit in 2 MiB: no journal");
                assertFalse(Files.exists(small.resolve("obj/.journal/records")), "and no half-grown file left");
                assertTrue(s.create(X, 4096, null, 0, filled(10, 'k')));
                s.write(X, 0, filled(5, 'w'));
                assertArrayEquals(filled(5, 'w'), s.read(X, 0, 5), "the store works, its writes synced in place");
            }
        } finally {
            new ProcessBuilder("umount", small.toString()).start().waitFor();
        }
    }

    @Test
    void wipeForgetsEveryRecord() throws Exception {
        FileObjectStore s = open();
        assertTrue(s.create(X, OBJ, null, 0, new byte[0]));
        s.write(X, 0, filled(4096, 'w'));
        s.wipe();
        assertTrue(s.create(X, OBJ, null, 0, new byte[0]));
        s.abandon();
        try (FileObjectStore again = open()) {
            assertArrayEquals(new byte[4096], again.read(X, 0, 4096), "a write to the wiped store does not come back");
        }
    }

    /** {@code n} bytes of value {@code v} (FileObjectStoreTest uses it too). */
    static byte[] filled(int n, int v) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) v);
        return b;
    }
}
