package io.sheepdog.sheep.store;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Oids;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Objects over several disks: placement by the disk ring, plug and unplug moving objects (checked on disk, file by
 * file), and a disk that fails taken out with its objects reported, never a wrong or missing answer passed as right.
 */
class MultiDiskStoreTest {
    static final long SIZE = 64 << 10;

    @TempDir
    Path dir;

    private List<Path> disks(int n) {
        List<Path> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(dir.resolve("d" + i));
        return out;
    }

    private static long oid(int i) { return Oids.dataOid(0x7c2b25, i); }

    private static byte[] content(int i) {
        byte[] b = new byte[512];
        Arrays.fill(b, (byte) (i * 7 + 1));
        b[0] = (byte) i;
        b[1] = (byte) (i >> 8);
        return b;
    }

    /** How many object files each disk directory holds (what the original's tests count). */
    private static Map<Path, Integer> filesPerDisk(List<Path> disks) throws IOException {
        Map<Path, Integer> out = new HashMap<>();
        for (Path d : disks) {
            try (var s = Files.list(d)) {
                out.put(d, (int) s.filter(p -> p.getFileName().toString().matches("[0-9a-f]{16}")).count());
            }
        }
        return out;
    }

    @Test
    void objectsSpreadOverTheDisksAndEachIsOnItsHomeDisk() throws IOException {
        List<Path> d = disks(3);
        try (MultiDiskStore s = new MultiDiskStore(d, false)) {
            for (int i = 0; i < 300; i++) assertTrue(s.create(oid(i), SIZE, null, 0, content(i)));
            Map<Path, Integer> files = filesPerDisk(d);
            assertEquals(300, files.values().stream().mapToInt(Integer::intValue).sum());
            // equal disks: each gets a fair share (expected 100; the hash is not perfectly even)
            for (Path p : d) assertTrue(files.get(p) > 50, "disk " + p + " holds " + files);
            DiskRing ring = new DiskRing(d.stream().map(Path::toString).toList(), d.stream().map(p -> s.space() / 3).toList());
            for (int i = 0; i < 300; i++) {
                assertTrue(Files.exists(d.get(ring.diskOf(oid(i))).resolve(StoreKey.fileName(oid(i)))), "object " + i + " on its home disk");
                assertArrayEquals(content(i), s.read(oid(i), 0, 512));
            }
            assertFalse(s.create(oid(5), SIZE, null, 0, content(9)), "a second create changes nothing");
            assertArrayEquals(content(5), s.read(oid(5), 0, 512));
        }
    }

    @Test
    void removingADiskFromTheRingMovesOnlyItsObjects() {
        List<String> three = List.of("/a", "/b", "/c");
        List<Long> sizes = List.of(1L << 30, 1L << 30, 1L << 30);
        DiskRing all = new DiskRing(three, sizes);
        DiskRing two = new DiskRing(List.of("/a", "/c"), List.of(1L << 30, 1L << 30));
        int moved = 0;
        for (int i = 0; i < 2000; i++) {
            int before = all.diskOf(oid(i));
            int after = two.diskOf(oid(i));
            String was = three.get(before), now = after == 0 ? "/a" : "/c";
            if (!was.equals("/b")) assertEquals(was, now, "object " + i + " stays where it was");
            else moved++;
        }
        assertTrue(moved > 400 && moved < 950, "about a third moved: " + moved);
        assertEquals(64 * 3, all.virtualDisks(), "one virtual disk per 16 MiB");
    }

    /**
     * A plug while the moves of the previous one are under way stops them and starts anew; the stop must not cut a
     * move short in its file I/O (an interrupt there closes the channel, the disk's probe then fails in the same
     * thread, and a healthy disk would be taken out with its objects).
     */
    @Test
    void plugsOneAfterAnotherStopTheMovesUnderWayWithoutTakingAnyDiskOut() throws Exception {
        List<Path> d = disks(4);
        int objects = 120;
        int size = 256 << 10;
        try (MultiDiskStore s = new MultiDiskStore(d.subList(0, 1), true)) {
            for (int i = 0; i < objects; i++) {
                byte[] b = new byte[size];
                Arrays.fill(b, (byte) (i * 7 + 1));
                b[0] = (byte) i;
                assertTrue(s.create(oid(i), size, null, 0, b));
            }
            s.plug(List.of(d.get(1)));
            Thread.sleep(5); // the first run is moving objects now
            s.plug(List.of(d.get(2)));
            Thread.sleep(5);
            s.plug(List.of(d.get(3)));
            s.awaitRebalanced();
            assertEquals(d, s.paths(), "every disk still in");
            Map<Path, Integer> files = filesPerDisk(d);
            assertEquals(objects, files.values().stream().mapToInt(Integer::intValue).sum(), "moved, not copied: " + files);
            for (int i = 0; i < objects; i++) {
                byte[] b = s.read(oid(i), 0, size);
                assertEquals((byte) i, b[0], "object " + i);
                assertEquals((byte) (i * 7 + 1), b[size - 1], "object " + i);
            }
        }
    }

    /**
     * A request whose thread was interrupted fails in its file I/O (ClosedByInterruptException); the probe that
     * follows an I/O error must not then fail too, in the same thread, and take a healthy disk out.
     */
    @Test
    void anInterruptedRequestTakesNoDiskOut() throws Exception {
        List<Path> d = disks(2);
        try (MultiDiskStore s = new MultiDiskStore(d, true)) {
            for (int i = 0; i < 20; i++) assertTrue(s.create(oid(i), SIZE, null, 0, content(i)));
            List<Throwable> failures = new CopyOnWriteArrayList<>();
            List<Boolean> stillInterrupted = new CopyOnWriteArrayList<>();
            Thread t = new Thread(() -> {
                for (int i = 0; i < 20; i++) {
                    Thread.currentThread().interrupt();
                    try {
                        s.write(oid(i), 0, content(i + 1));
                    } catch (IOException e) {
                        failures.add(e);
                    }
                    stillInterrupted.add(Thread.interrupted());
                }
            });
            t.start();
            t.join();
            assertEquals(d, s.paths(), "both disks still in; the interrupted writes failed with " + failures);
            assertFalse(stillInterrupted.contains(false), "the interrupt is kept for the caller");
            for (int i = 0; i < 20; i++) {
                byte[] b = s.read(oid(i), 0, 512);
                assertTrue(Arrays.equals(content(i), b) || Arrays.equals(content(i + 1), b), "object " + i);
            }
        }
    }

    @Test
    void plugMovesTheNewDisksShareToItAndUnplugMovesItsObjectsOff() throws Exception {
        List<Path> d = disks(3);
        try (MultiDiskStore s = new MultiDiskStore(d.subList(0, 2), true)) {
            for (int i = 0; i < 200; i++) assertTrue(s.create(oid(i), SIZE, null, 0, content(i)));
            Files.createDirectories(d.get(2));
            Files.writeString(d.get(2).resolve("0000000000000abc"), "left over: plug purges it");
            s.plug(List.of(d.get(2)));
            s.awaitRebalanced();
            Map<Path, Integer> files = filesPerDisk(d);
            assertEquals(200, files.values().stream().mapToInt(Integer::intValue).sum(), "moved, not copied: " + files);
            assertTrue(files.get(d.get(2)) > 30, "the new disk took its share: " + files);
            for (int i = 0; i < 200; i++) assertArrayEquals(content(i), s.read(oid(i), 0, 512));
            assertEquals(3, s.info().size());

            s.unplug(List.of(d.get(0)));
            files = filesPerDisk(d);
            assertEquals(0, files.get(d.get(0)), "nothing left on the unplugged disk: " + files);
            assertEquals(200, files.get(d.get(1)) + files.get(d.get(2)));
            for (int i = 0; i < 200; i++) {
                assertArrayEquals(content(i), s.read(oid(i), 0, 512));
                s.write(oid(i), 512, content(i + 1));
                assertArrayEquals(content(i + 1), s.read(oid(i), 512, 512));
            }
            assertEquals(List.of(d.get(1), d.get(2)), s.paths());
            IOException last = assertThrows(IOException.class, () -> s.unplug(List.of(d.get(1), d.get(2))));
            assertTrue(last.getMessage().contains("every disk"), last.getMessage());
            assertThrows(IOException.class, () -> s.plug(List.of(d.get(1))), "plugged already");
        }
    }

    @Test
    void aDiskWhoseDirectoryIsReplacedIsTakenOutAndItsObjectsReportedLost() throws Exception {
        List<Path> d = disks(3);
        List<String> failed = new CopyOnWriteArrayList<>();
        try (MultiDiskStore s = new MultiDiskStore(d, true)) {
            s.setListener((disk, why, left) -> failed.add(disk + " " + left));
            for (int i = 0; i < 90; i++) assertTrue(s.create(oid(i), SIZE, null, 0, content(i)));
            // the disk goes (an unmount leaves the mount point showing): objects there must not be read as absent
            Files.move(d.get(1), dir.resolve("gone"));
            Files.createDirectories(d.get(1));
            int lost = 0, absent = 0;
            for (int i = 0; i < 90; i++) {
                try {
                    assertArrayEquals(content(i), s.read(oid(i), 0, 512));
                } catch (DiskFailedException e) {
                    // the first to find it
                    assertEquals(d.get(1), e.disk());
                    lost++;
                } catch (NoSuchObjectException e) {
                    // after: absent, and the count of failures says why (requests wait for recovery and look again)
                    absent++;
                }
            }
            assertEquals(1, lost, "the request that found the failure is told");
            assertTrue(absent > 10, "the failed disk's objects are absent: " + absent);
            assertEquals(1, s.diskFailures());
            assertEquals(List.of(d.get(1) + " 2"), failed, "told once");
            assertEquals(List.of(d.get(0), d.get(2)), s.paths());
            // its objects can be brought back (recovery does this) onto the disks left
            for (int i = 0; i < 90; i++) if (!s.exists(oid(i))) assertTrue(s.create(oid(i), SIZE, null, 0, content(i)));
            for (int i = 0; i < 90; i++) assertArrayEquals(content(i), s.read(oid(i), 0, 512));
            s.probe();
            // the last disks go: the store failed
            Files.move(d.get(0), dir.resolve("gone0"));
            Files.move(d.get(2), dir.resolve("gone2"));
            assertThrows(IOException.class, s::probe);
            assertEquals(3, failed.size());
            assertTrue(failed.get(2).endsWith(" 0"), failed.toString());
        }
    }

    @Test
    void staleCopiesAreFoundOnAnyDiskTheRequestedEpochFirst() throws Exception {
        List<Path> d = disks(2);
        try (MultiDiskStore s = new MultiDiskStore(d, false)) {
            long key = oid(1);
            s.create(key, SIZE, null, 0, content(1));
            s.moveToStale(key, 3);
            s.create(key, SIZE, null, 0, content(2));
            s.moveToStale(key, 5);
            assertArrayEquals(content(1), s.readStale(key, 3, 0, 512));
            assertArrayEquals(content(2), s.readStale(key, 0, 0, 512), "the newest");
            assertArrayEquals(content(2), s.readStale(key, 4, 0, 512), "none at 4: the newest");
            assertEquals(2, s.listStaleCopies().size());
            assertTrue(s.restoreStale(key));
            assertArrayEquals(content(2), s.read(key, 0, 512));
        }
    }

    @Test
    void filesRemovedUnderAnOpenObjectAreNoticedByTheProbe() throws Exception {
        List<Path> d = disks(2);
        List<String> told = new CopyOnWriteArrayList<>();
        try (MultiDiskStore s = new MultiDiskStore(d, true)) {
            s.setVanishedListener(() -> told.add("vanished"));
            for (int i = 0; i < 20; i++) {
                assertTrue(s.create(oid(i), SIZE, null, 0, content(i)));
                assertArrayEquals(content(i), s.read(oid(i), 0, 512)); // its file is open now
            }
            // rm -rf of a disk's contents (a mount point stays): writes to the open files would go nowhere
            try (var files = Files.list(d.get(0))) {
                for (Path p : files.toList()) if (!Files.isDirectory(p)) Files.delete(p);
            }
            s.probe();
            assertEquals(List.of("vanished"), told);
            int absent = 0;
            for (int i = 0; i < 20; i++) {
                if (!s.exists(oid(i))) {
                    absent++;
                    int k = i;
                    assertThrows(NoSuchObjectException.class, () -> s.read(oid(k), 0, 512));
                }
            }
            assertTrue(absent > 0, "the removed objects read as absent");
            assertEquals(0, s.diskFailures(), "the disk itself works: it stays");
            s.probe();
            assertEquals(1, told.size(), "told once");
        }
    }
}
