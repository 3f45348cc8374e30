package io.sheepdog.sheep.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.Oids;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Store keys of erasure-coded strips: their encoding, their file names, and strips in a real store. */
class StoreKeyTest {
    @TempDir Path dir;

    @Test
    void aStripKeyKeepsItsOidAndIndexAndIsNamedAsUpstreamNamesIt() {
        long oid = Oids.dataOid(0x7c2b25, 0xFFFFF);
        long key = StoreKey.strip(oid, 3);
        assertTrue(StoreKey.isStrip(key));
        assertEquals(oid, StoreKey.oid(key));
        assertEquals(3, StoreKey.index(key));
        assertEquals(Oids.vid(oid), Oids.vid(key), "the tree layout files a strip with its VDI");
        assertEquals("007c2b25000fffff_3", StoreKey.fileName(key));
        assertEquals(key, StoreKey.parse("007c2b25000fffff_3"));
        assertEquals(oid, StoreKey.parse("007c2b25000fffff"));
        long vm = Oids.vmstateOid(9, 2);
        assertEquals(vm, StoreKey.oid(StoreKey.strip(vm, 30)));
    }

    @Test
    void onlyDataAndVmstateObjectsHaveStrips() {
        assertFalse(StoreKey.isStrip(Oids.inodeOid(5)));
        assertEquals(-1, StoreKey.index(Oids.dataOid(5, 1)));
        assertThrows(IllegalArgumentException.class, () -> StoreKey.strip(Oids.inodeOid(5), 0));
        assertThrows(IllegalArgumentException.class, () -> StoreKey.strip(Oids.dataOid(5, 1), 31));
        assertThrows(NumberFormatException.class, () -> StoreKey.parse("80000005000000_1"));
        assertThrows(NumberFormatException.class, () -> StoreKey.parse("8000000500000000_1"));
        assertThrows(NumberFormatException.class, () -> StoreKey.parse("0000000500000001_x"));
    }

    @Test
    void stripsLiveBesideWholeObjectsInOneStore() throws Exception {
        try (FileObjectStore s = new FileObjectStore(dir, true)) {
            long oid = Oids.dataOid(5, 1);
            long k0 = StoreKey.strip(oid, 0);
            long k2 = StoreKey.strip(oid, 2);
            byte[] a = "strip zero".getBytes(StandardCharsets.UTF_8);
            assertTrue(s.create(k0, 1024, null, 0, a));
            assertTrue(s.create(k2, 1024, null, 0, "strip two".getBytes(StandardCharsets.UTF_8)));
            assertTrue(s.create(oid, 4096, null, 0, "whole".getBytes(StandardCharsets.UTF_8)));
            assertTrue(Files.exists(dir.resolve("0000000500000001_0")));
            assertEquals(1024, Files.size(dir.resolve("0000000500000001_2")));
            assertEquals(List.of(oid, k0, k2), s.list().stream().sorted((x, y) -> Long.compareUnsigned(x, y)).toList());
            assertArrayEquals(a, s.read(k0, 0, a.length));
            assertFalse(s.exists(StoreKey.strip(oid, 1)));

            s.moveToStale(k2, 7);
            assertTrue(Files.exists(dir.resolve(".stale/0000000500000001_2.7")));
            assertEquals(List.of(new ObjectStore.StaleCopy(k2, 7)), s.listStaleCopies(), "with the epoch it was kept at");
            assertNull(s.readStale(oid, 0, 0, 4), "the whole object's stale copies are not the strip's");
            assertEquals("strip two", new String(s.readStale(k2, 7, 0, 9), StandardCharsets.UTF_8));
            assertTrue(s.restoreStale(k2));
            assertTrue(s.exists(k2));
        }
    }
}
