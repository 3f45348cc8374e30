package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The consistent-hash ring of virtual nodes and the object placement on it, bit-exact with the original
 * (docs/protocol.md §12). Immutable; build one per membership (epoch).
 */
public final class VnodeRing {
    private final List<SdNode> nodes;       // storage nodes, as given
    private final long[] keys;              // vnode hashes, flipped so that signed order is unsigned order
    private final int[] owner;              // index into nodes for each vnode
    private final long[] zoneOf;            // zone per node index
    private final int nrZones;

    private VnodeRing(List<SdNode> nodes, long[] keys, int[] owner, int nrZones) {
        this.nodes = nodes;
        this.keys = keys;
        this.owner = owner;
        this.nrZones = nrZones;
        this.zoneOf = new long[nodes.size()];
        for (int i = 0; i < nodes.size(); i++) zoneOf[i] = nodes.get(i).zone();
    }

    /** Builds the ring from the nodes' own {@code nr_vnodes}; gateways (0 vnodes) are left out. */
    public static VnodeRing build(List<SdNode> members) {
        List<SdNode> storage = new ArrayList<>();
        for (SdNode n : members) if (n.nrVnodes() > 0) storage.add(n);
        storage.sort(null);
        int total = 0;
        for (SdNode n : storage) total += n.nrVnodes();
        long[] raw = new long[total];
        int[] own = new int[total];
        int k = 0;
        byte[] seed = new byte[18];
        for (int i = 0; i < storage.size(); i++) {
            SdNode n = storage.get(i);
            System.arraycopy(n.nid().addr(), 0, seed, 0, 16);
            seed[16] = (byte) n.nid().port();
            seed[17] = (byte) (n.nid().port() >>> 8);
            long h = SdHash.sdHash(seed, 0, 18);
            for (int v = 0; v < n.nrVnodes(); v++) {
                h = SdHash.sdHashNext(h);
                raw[k] = h ^ Long.MIN_VALUE;
                own[k] = i;
                k++;
            }
        }
        // sort (key, owner) pairs by key
        Integer[] order = new Integer[total];
        for (int i = 0; i < total; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Long.compare(raw[a], raw[b]));
        long[] keys = new long[total];
        int[] owner = new int[total];
        for (int i = 0; i < total; i++) { keys[i] = raw[order[i]]; owner[i] = own[order[i]]; }
        Set<Long> zones = new HashSet<>();
        for (SdNode n : storage) zones.add(n.zone());
        return new VnodeRing(List.copyOf(storage), keys, owner, Math.min(zones.size(), Proto.MAX_COPIES));
    }

    /**
     * Auto vnodes strategy (§12.4): every storage node gets rint(128 * space / avg) computed in 32-bit float,
     * where avg is the integer mean of the non-zero spaces; gateways get 0.
     */
    public static List<SdNode> autoVnodes(List<SdNode> members) {
        long sum = 0;
        int cnt = 0;
        for (SdNode n : members) if (n.space() > 0) { sum += n.space(); cnt++; }
        List<SdNode> out = new ArrayList<>(members.size());
        if (cnt == 0) {
            for (SdNode n : members) out.add(n.withVnodes(n.space() > 0 ? Proto.DEFAULT_VNODES : 0));
            return out;
        }
        long avg = sum / cnt;
        for (SdNode n : members) {
            if (n.space() == 0) { out.add(n.withVnodes(0)); continue; }
            float f = (float) n.space() / (float) avg;
            float v = 128.0f * f;
            out.add(n.withVnodes((int) Math.rint(v) & 0xffff));
        }
        return out;
    }

    public List<SdNode> nodes() { return nodes; }
    public int nrZones() { return nrZones; }
    public boolean isEmpty() { return keys.length == 0; }

    /** Effective copy count: min(requested, number of zones). */
    public int effectiveCopies(int copies) { return Math.min(copies, nrZones); }

    /** The nodes holding {@code oid}, replica index order, for {@code copies} (already capped by zones). */
    public List<SdNode> targets(long oid, int copies) {
        int n = Math.min(copies, nrZones);
        List<SdNode> out = new ArrayList<>(n);
        if (n == 0 || keys.length == 0) return out;
        long k = SdHash.sdHashOid(oid) ^ Long.MIN_VALUE;
        int start = Arrays.binarySearch(keys, k);
        if (start < 0) start = -start - 1;
        if (start >= keys.length) start = 0;
        long[] chosenZones = new long[n];
        int chosen = 0;
        int i = start;
        do {
            int node = owner[i];
            long z = zoneOf[node];
            boolean dup = false;
            for (int c = 0; c < chosen; c++) if (chosenZones[c] == z) { dup = true; break; }
            if (!dup) {
                chosenZones[chosen++] = z;
                out.add(nodes.get(node));
                if (chosen == n) break;
            }
            i = (i + 1) % keys.length;
        } while (i != start);
        return out;
    }

    /** True if {@code node} is among the targets of {@code oid}. */
    public boolean isTarget(long oid, int copies, NodeId node) {
        return position(oid, copies, node) >= 0;
    }

    /**
     * The index of {@code node} among the targets of {@code oid} (its replica index, or the strip it keeps of an
     * erasure-coded object); -1 if it is not one of them.
     */
    public int position(long oid, int copies, NodeId node) {
        List<SdNode> targets = targets(oid, copies);
        for (int i = 0; i < targets.size(); i++) if (targets.get(i).nid().equals(node)) return i;
        return -1;
    }

    /** Raw hash of vnode {@code i} in ring order (for tests). */
    public long vnodeHash(int i) { return keys[i] ^ Long.MIN_VALUE; }

    /** The seed hash of a node (hash of its 16 address bytes and 2 port bytes). */
    public static long nodeSeed(NodeId id) {
        ByteBuffer b = ByteBuffer.allocate(18).order(ByteOrder.LITTLE_ENDIAN);
        b.put(id.addr()).putShort((short) id.port());
        return SdHash.sdHash(b.array(), 0, 18);
    }
}
