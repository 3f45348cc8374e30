package io.sheepdog.sheep.store;

import static org.junit.jupiter.api.Assertions.*;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class HandleCacheTest {

    @Test
    void trimDropsTheLeastRecentlyUsed() {
        HandleCache<String> c = new HandleCache<>(3);
        for (long k = 1; k <= 3; k++) assertNull(c.putIfAbsent(k, "h" + k));
        assertEquals("h1", c.get(1)); // 1 is now the most recently used: 2 is the eldest
        assertNull(c.putIfAbsent(4, "h4"));
        assertTrue(c.overCapacity());
        assertEquals(List.of("h2"), c.trim((k, h) -> true));
        assertFalse(c.overCapacity());
        assertNull(c.get(2));
        assertEquals("h1", c.get(1));
        assertEquals("h3", c.get(3));
        assertEquals("h4", c.get(4));
    }

    @Test
    void containsIsNotAUse() {
        HandleCache<String> c = new HandleCache<>(2);
        c.putIfAbsent(1, "a");
        c.putIfAbsent(2, "b");
        assertTrue(c.contains(1));
        c.putIfAbsent(3, "c");
        assertEquals(List.of("a"), c.trim((k, h) -> true), "contains() must not make 1 recently used");
    }

    @Test
    void putIfAbsentKeepsTheFirstEntry() {
        HandleCache<String> c = new HandleCache<>(2);
        assertNull(c.putIfAbsent(7, "first"));
        assertEquals("first", c.putIfAbsent(7, "second"));
        assertEquals("first", c.get(7));
        assertEquals(1, c.size());
    }

    @Test
    void entriesInUseAreSkippedAndTriedAgainLater() {
        HandleCache<String> c = new HandleCache<>(2);
        for (long k = 1; k <= 4; k++) c.putIfAbsent(k, "h" + k);
        Set<Long> busy = new HashSet<>(Set.of(1L));
        assertEquals(List.of("h2", "h3"), c.trim((k, h) -> !busy.contains(k)));
        assertEquals("h1", c.get(1));
        assertEquals(2, c.size());
        // 1 was used again above, so the eldest is now 4; once nothing is busy a new entry pushes 4 out
        busy.clear();
        c.putIfAbsent(5, "h5");
        assertEquals(List.of("h4"), c.trim((k, h) -> true));
    }

    @Test
    void trimGivesUpAfterAFewBusyEntriesButTrimToDoesNot() {
        HandleCache<String> c = new HandleCache<>(4);
        for (long k = 1; k <= 40; k++) c.putIfAbsent(k, "h" + k);
        // the 30 eldest are busy: an ordinary trim steps over a bounded number of them and gives up
        assertTrue(c.trim((k, h) -> k > 30).isEmpty());
        assertEquals(40, c.size());
        // trimTo below the capacity (out of descriptors) looks at every entry
        List<String> dropped = c.trimTo(2, (k, h) -> k > 30);
        assertEquals(10, dropped.size());
        assertEquals(30, c.size());
    }

    @Test
    void clearReturnsEverything() {
        HandleCache<String> c = new HandleCache<>(8);
        c.putIfAbsent(1, "a");
        c.putIfAbsent(2, "b");
        assertEquals(Set.of("a", "b"), new HashSet<>(c.clear()));
        assertEquals(0, c.size());
        assertNull(c.remove(1));
    }

    @Test
    void capacityMustBePositive() {
        assertThrows(IllegalArgumentException.class, () -> new HandleCache<String>(0));
    }
}
