package io.sheepdog.sheep.store;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Oids;
import io.sheepdog.proto.StripVersion;
import io.sheepdog.proto.StripVersion.State;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Versioned strips on a real file store: a strip shows exactly one version whatever point a write was cut at (the
 * cuts are made by writing the strip file as a process killed mid-write would leave it), refuses writes based on
 * another version, and shows the version before its last write on request.
 */
class StripStoreTest {
    static final long SIZE = 8192;
    static final long KEY = StoreKey.strip(Oids.dataOid(7, 3), 1);

    @TempDir
    Path dir;
    FileObjectStore files;
    StripStore strips;

    @BeforeEach
    void open() throws IOException {
        files = new FileObjectStore(dir, true);
        strips = new StripStore(files);
    }

    static byte[] fill(int len, int b) {
        byte[] x = new byte[len];
        Arrays.fill(x, (byte) b);
        return x;
    }

    /** A fresh store over the same files: nothing remembered from the writes (as after a restart). */
    StripStore reopened() throws IOException {
        files.close();
        files = new FileObjectStore(dir, true);
        return new StripStore(files);
    }

    @Test
    void writesMoveTheVersionAndKeepThePreviousOneShowable() throws IOException {
        long v1 = StripVersion.first();
        assertTrue(strips.create(KEY, SIZE, v1, null, 0, fill(1024, 1)));
        assertEquals(new State(v1, 0), strips.state(KEY, SIZE));
        long v2 = StripVersion.next(v1);
        assertEquals(new State(v2, v1), strips.write(KEY, SIZE, v1, v2, 512, fill(1024, 2)));

        for (StripStore s : new StripStore[] {strips, reopened()}) {
            assertEquals(new State(v2, v1), s.state(KEY, SIZE));
            byte[] now = s.read(KEY, SIZE, v2, 0, 2048).data();
            byte[] before = s.read(KEY, SIZE, v1, 0, 2048).data();
            assertArrayEquals(concat(fill(512, 1), fill(1024, 2), fill(512, 0)), now);
            assertArrayEquals(concat(fill(1024, 1), fill(1024, 0)), before);
            assertNull(s.read(KEY, SIZE, StripVersion.next(v2), 0, 16).data(), "a version it never had");
            assertArrayEquals(now, s.read(KEY, SIZE, StripVersion.ANY, 0, 2048).data());
        }
        // the file: the strip's bytes exactly, then the trailer
        byte[] file = Files.readAllBytes(dir.resolve(StoreKey.fileName(KEY)));
        assertArrayEquals(concat(fill(512, 1), fill(1024, 2), fill(512, 0)), Arrays.copyOf(file, 2048));
        assertEquals("SDSTRIPV", new String(file, (int) SIZE, 8, java.nio.charset.StandardCharsets.US_ASCII));
    }

    @Test
    void aWriteBasedOnAnotherVersionIsRefusedAndChangesNothing() throws IOException {
        long v1 = StripVersion.first();
        strips.create(KEY, SIZE, v1, null, 0, fill(512, 1));
        long v2 = StripVersion.next(v1);
        strips.write(KEY, SIZE, v1, v2, 0, fill(512, 2));
        StripStore.VersionConflict e = assertThrows(StripStore.VersionConflict.class,
                () -> strips.write(KEY, SIZE, v1, StripVersion.next(v1), 0, fill(512, 9)));
        assertEquals(new State(v2, v1), e.state());
        assertArrayEquals(fill(512, 2), strips.read(KEY, SIZE, StripVersion.ANY, 0, 512).data());
        // a retry of the write that got there is a no-op
        assertEquals(new State(v2, v1), strips.write(KEY, SIZE, v1, v2, 0, fill(512, 2)));
        // a forced write (base ANY) goes on top of whatever is there
        long v3 = StripVersion.next(v2);
        assertEquals(new State(v3, v2), strips.write(KEY, SIZE, StripVersion.ANY, v3, 0, fill(512, 3)));
        assertThrows(NoSuchObjectException.class, () -> strips.write(StoreKey.strip(Oids.dataOid(7, 4), 0), SIZE, v1, v2, 0, fill(8, 1)));
    }

    @Test
    void aWriteCutShortShowsTheOldVersionAndIsRepairedBeforeTheNextWrite() throws IOException {
        long v1 = StripVersion.first();
        strips.create(KEY, SIZE, v1, null, 0, fill(4096, 1));
        long v2 = StripVersion.next(v1);
        strips.write(KEY, SIZE, v1, v2, 1024, fill(2048, 2));
        // as a kill during the strip's own write leaves it: only the first part of the new bytes landed; the old
        // bytes behind it
        files.write(KEY, 2048, fill(1024, 1));
        StripStore s = reopened();
        assertEquals(new State(v1, 0), s.state(KEY, SIZE), "the new bytes are not all there: the old version");
        assertArrayEquals(fill(4096, 1), s.read(KEY, SIZE, v1, 0, 4096).data());
        // and the file itself was put back
        assertArrayEquals(fill(4096, 1), Arrays.copyOf(Files.readAllBytes(dir.resolve(StoreKey.fileName(KEY))), 4096));
        long v3 = StripVersion.next(v1);
        s.write(KEY, SIZE, v1, v3, 0, fill(512, 3));
        assertArrayEquals(concat(fill(512, 3), fill(3584, 1)), s.read(KEY, SIZE, StripVersion.ANY, 0, 4096).data());
        assertEquals(new State(v3, v1), s.state(KEY, SIZE));
    }

    @Test
    void aHeaderWhoseUndoNeverLandedMeansTheWriteNeverBegan() throws IOException {
        long v1 = StripVersion.first();
        strips.create(KEY, SIZE, v1, null, 0, fill(4096, 1));
        long v2 = StripVersion.next(v1);
        strips.write(KEY, SIZE, v1, v2, 0, fill(1024, 2));
        // a power cut during the first sync: the header made it, the undo slot and the new bytes did not
        files.write(KEY, 0, fill(1024, 1));
        int slot = ByteBuffer.wrap(files.read(KEY, SIZE + 40, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt();
        files.write(KEY, SIZE + StripStore.HEADER + slot * SIZE, fill(1024, 0x55));
        StripStore s = reopened();
        assertEquals(new State(v1, 0), s.state(KEY, SIZE));
        assertArrayEquals(fill(4096, 1), s.read(KEY, SIZE, StripVersion.ANY, 0, 4096).data());
    }

    @Test
    void staleCopiesShowTheirVersions() throws IOException {
        long v1 = StripVersion.first();
        strips.create(KEY, SIZE, v1, null, 0, fill(512, 1));
        long v2 = StripVersion.next(v1);
        strips.write(KEY, SIZE, v1, v2, 0, fill(512, 2));
        files.moveToStale(KEY, 5);
        assertThrows(NoSuchObjectException.class, () -> strips.state(KEY, SIZE));
        StripStore.Versioned st = strips.readStale(KEY, 5, SIZE, v1, 0, 512);
        assertEquals(new State(v2, v1), st.state());
        assertArrayEquals(fill(512, 1), st.data());
        assertArrayEquals(fill(512, 2), strips.readStale(KEY, 0, SIZE, StripVersion.ANY, 0, 512).data());
        assertNull(strips.readStale(StoreKey.strip(Oids.dataOid(7, 4), 0), 0, SIZE, StripVersion.ANY, 0, 512));
    }

    @Test
    void accessBeyondTheStripIsRefused() throws IOException {
        strips.create(KEY, SIZE, StripVersion.first(), null, 0, fill(8, 1));
        assertThrows(IllegalArgumentException.class, () -> strips.write(KEY, SIZE, StripVersion.ANY, StripVersion.ANY, SIZE - 4, fill(8, 1)));
    }

    @Test
    void chooseTakesTheNewestVersionEnoughStripsShow() {
        long v1 = StripVersion.first(), v2 = StripVersion.next(v1), v2b = StripVersion.next(v1);
        // 2:1, a write to v2 reached one strip: v1 (shown by all three) wins
        assertEquals(v1, StripVersion.choose(new State[] {new State(v2, v1), new State(v1, 0), new State(v1, 0)}, 2));
        // it reached two: v2
        assertEquals(v2, StripVersion.choose(new State[] {new State(v2, v1), new State(v2, v1), new State(v1, 0)}, 2));
        // two writes of one sequence number: the one more strips show
        assertEquals(v2b, StripVersion.choose(new State[] {new State(v2, v1), new State(v2b, v1), new State(v2b, v1)}, 2));
        // nothing d strips show
        assertNull(StripVersion.choose(new State[] {new State(v2, v1), null, null}, 2));
        // copies of one index count once
        assertNull(StripVersion.choose(new int[] {0, 0}, new State[] {new State(v1, 0), new State(v1, 0)}, 2));
    }

    @Test
    void chooseBeforeTakesTheNewestOlderVersionEnoughStripsShow() {
        long v1 = StripVersion.first(), v2 = StripVersion.next(v1), v3 = StripVersion.next(v2), v3b = StripVersion.next(v2);
        int[] idx = {0, 1, 2};
        // a write to v3 reached strips 1 and 2: v3 is chosen, v2 is what all three still show
        State[] st = {new State(v2, v1), new State(v3, v2), new State(v3, v2)};
        assertEquals(v3, StripVersion.choose(idx, st, 2));
        assertEquals(v2, StripVersion.chooseBefore(idx, st, 2, v3));
        // a sibling of the same sequence number is not older
        State[] sib = {new State(v3b, v2), new State(v3, v2), new State(v3, v2)};
        assertEquals(v2, StripVersion.chooseBefore(idx, sib, 2, v3));
        // strips rebuilt at v3 alone: nothing older has two strips
        assertNull(StripVersion.chooseBefore(idx, new State[] {new State(v2, v1), new State(v3, 0), new State(v3, 0)}, 2, v3));
    }

    @Test
    void aStripCreatedWithUndoShowsBothVersionsAfterARestart() throws IOException {
        long v1 = StripVersion.first(), v2 = StripVersion.next(v1);
        byte[] before = fill((int) SIZE, 3), after = fill((int) SIZE, 4);
        after[0] = 9;
        assertTrue(strips.createWithUndo(KEY, SIZE, v1, before, v2, after));
        assertFalse(strips.createWithUndo(KEY, SIZE, v1, before, v2, fill((int) SIZE, 5)), "an existing strip is left as it is");
        for (StripStore s : new StripStore[] {strips, reopened()}) {
            assertEquals(new State(v2, v1), s.state(KEY, SIZE));
            assertArrayEquals(after, s.read(KEY, SIZE, v2, 0, (int) SIZE).data());
            assertArrayEquals(before, s.read(KEY, SIZE, v1, 0, (int) SIZE).data());
        }
        // and a write based on the version it holds goes on from there (through the store open now)
        strips = new StripStore(files);
        long v3 = StripVersion.next(v2);
        assertEquals(new State(v3, v2), strips.write(KEY, SIZE, v2, v3, 0, fill(512, 6)));
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) n += p.length;
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
