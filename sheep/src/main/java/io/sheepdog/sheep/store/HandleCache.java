package io.sheepdog.sheep.store;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The open files of an object store, by oid, least recently used first, kept to a capacity. Every operation is O(1)
 * (a {@link LinkedHashMap} in access order) except {@link #trim}, which looks at no more entries than it has to
 * close plus a few it may have to skip: a store that reads ten thousand inodes in turn must not sort its cache on
 * every miss.
 *
 * <p>An entry may be closed only when nobody is using it; the owner decides that in {@link Evictor#tryEvict} (the
 * store tries its per-object write lock). Entries it refuses stay, and are tried again by the next trim. Closing is
 * left to the caller, outside this cache's lock.
 */
final class HandleCache<H> {
    /** How many in-use entries a trim may step over before it gives up until the next call. */
    private static final int MAX_SKIPPED = 16;

    /** Decides whether the entry of {@code oid} may be dropped now (nobody is using it). Must not block. */
    interface Evictor<H> {
        boolean tryEvict(long oid, H handle);
    }

    private final int capacity;
    private final LinkedHashMap<Long, H> map = new LinkedHashMap<>(64, 0.75f, true);

    HandleCache(int capacity) {
        if (capacity < 1) throw new IllegalArgumentException("capacity must be >= 1");
        this.capacity = capacity;
    }

    int capacity() { return capacity; }

    /** The entry of {@code oid}, which becomes the most recently used; null if absent. */
    synchronized H get(long oid) { return map.get(oid); }

    /** Whether {@code oid} has an entry (does not count as a use). */
    synchronized boolean contains(long oid) { return map.containsKey(oid); }

    /** Adds {@code h} unless {@code oid} already has an entry, which is then returned (and {@code h} is not kept). */
    synchronized H putIfAbsent(long oid, H h) { return map.putIfAbsent(oid, h); }

    synchronized H remove(long oid) { return map.remove(oid); }

    /** Removes the entry of {@code oid} only if it is {@code h} (another thread may have replaced it already). */
    synchronized boolean remove(long oid, H h) { return map.remove(oid, h); }

    synchronized int size() { return map.size(); }

    /** The oids with an entry, as they are now (a copy: the cache may change while the caller looks at them). */
    synchronized long[] keys() {
        long[] out = new long[map.size()];
        int i = 0;
        for (long k : map.keySet()) out[i++] = k;
        return out;
    }

    /** Whether there are more entries than the capacity (a trim is due). */
    synchronized boolean overCapacity() { return map.size() > capacity; }

    /** Removes every entry and returns them (to be closed). */
    synchronized List<H> clear() {
        List<H> all = new ArrayList<>(map.values());
        map.clear();
        return all;
    }

    /** Drops least recently used entries until at most the capacity remain; returns the dropped ones. */
    List<H> trim(Evictor<H> evictor) { return trimTo(capacity, evictor); }

    /**
     * Drops least recently used entries until at most {@code target} remain, stepping over entries the evictor
     * refuses (at most {@link #MAX_SKIPPED} of them, or all of them when {@code target} is below the capacity);
     * returns the dropped entries, which the caller closes.
     */
    synchronized List<H> trimTo(int target, Evictor<H> evictor) {
        List<H> dropped = new ArrayList<>();
        int skipped = 0;
        int maxSkipped = target < capacity ? Integer.MAX_VALUE : MAX_SKIPPED;
        for (Iterator<Map.Entry<Long, H>> it = map.entrySet().iterator(); map.size() > target && it.hasNext(); ) {
            Map.Entry<Long, H> e = it.next();
            if (evictor.tryEvict(e.getKey(), e.getValue())) {
                it.remove();
                dropped.add(e.getValue());
            } else if (++skipped > maxSkipped) {
                break;
            }
        }
        return dropped;
    }
}
