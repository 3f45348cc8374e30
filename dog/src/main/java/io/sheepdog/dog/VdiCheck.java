package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.StripVersion;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * {@code vdi check}: compares the replicas of the inode and of every allocated object (SHA-1 from GET_HASH on each
 * node the placement names), takes the majority and makes the nodes that are missing the object or hold a
 * different copy fetch it from a node with the majority copy (REPAIR_REPLICA). With {@code -e} it only checks
 * that every node has the objects it should hold (OIDS_EXIST). Erasure-coded data objects are checked strip by strip
 * ({@link #checkStrips}).
 */
final class VdiCheck {
    private VdiCheck() {}

    private static final int WINDOW = 16;

    static int check(Ctx c) throws IOException {
        String name = c.arg(0);
        Vdis.Snap s = Vdis.snapOption(c);
        int vid = Vdis.lookup(c, name, s);
        Inode n = Vdis.read(c, vid, true);
        if (c.has('e')) return exists(c, n);
        return repair(c, n);
    }

    static List<Long> oids(Inode n) {
        List<Long> out = new ArrayList<>();
        out.add(Oids.inodeOid(n.vdiId));
        int count = n.blockSizeShift == 0 ? 0 : Math.min(n.objectCount(), n.dataVdiId.length);
        for (int i = 0; i < count; i++) if (n.dataVdiId[i] != 0) out.add(Oids.dataOid(n.dataVdiId[i], i));
        return out;
    }

    /** Check and repair every object of {@code n}; prints what was fixed and "finish check&repair NAME". */
    static int repair(Ctx c, Inode n) throws IOException {
        List<Long> oids = oids(n);
        ErasureCode ec = n.copyPolicy != 0 ? ErasureCode.of(n.copyPolicy) : null;
        if (ec != null && c.ring.nrZones() < ec.totalStrips()) {
            throw DogExit.failure("ABORT: Not enough active zones for consistency-checking erasure coded VDI");
        }
        int copies = n.nrCopies;
        int stripSize = (int) ((1L << n.blockSizeShift) / (ec == null ? 1 : ec.dataStrips()));
        Progress bar = new Progress(c.io, oids.size(), true);
        boolean trouble = false;
        try (ExecutorService exec = Executors.newVirtualThreadPerTaskExecutor()) {
            ArrayDeque<CompletableFuture<String>> window = new ArrayDeque<>();
            int next = 0, done = 0;
            while (next < oids.size() || !window.isEmpty()) {
                while (next < oids.size() && window.size() < WINDOW) {
                    long oid = oids.get(next++);
                    window.add(CompletableFuture.supplyAsync(() -> {
                        try {
                            return ec != null && ErasureCode.appliesTo(oid) ? checkStrips(c, oid, ec, stripSize)
                                    : checkObject(c, oid, copies);
                        } catch (IOException e) {
                            throw new CompletionException(e);
                        }
                    }, exec));
                }
                String msg = SheepClient.join(window.poll());
                if (!msg.isEmpty()) {
                    c.out.print(msg);
                    // what could not be made whole ("no ...") or repaired ("failed to repair ...") fails the check
                    if (msg.startsWith("no ") || msg.contains("failed to repair")) trouble = true;
                }
                bar.update(++done);
            }
        }
        bar.done();
        c.out.print("finish check&repair " + n.name + "\n");
        return trouble ? ExitCodes.FAILURE : ExitCodes.SUCCESS;
    }

    /** Checks one object; returns the lines to print (empty if all replicas agree). */
    static String checkObject(Ctx c, long oid, int copies) throws IOException {
        List<SdNode> targets = c.ring.targets(oid, copies);
        // objects are checked WINDOW at a time in parallel; the replicas of one object one after the other
        byte[][] digest = new byte[targets.size()][];
        for (int i = 0; i < targets.size(); i++) {
            try {
                digest[i] = c.client(targets.get(i).nid()).getHash(oid, c.epoch);
            } catch (SheepdogException e) {
                digest[i] = null; // NO_OBJ and friends: this node lacks a usable copy
            }
        }
        String vote = majority(digest);
        if (vote == null) {
            boolean any = Arrays.stream(digest).anyMatch(d -> d != null);
            return any ? "no majority of " + Fmt.oid(oid) + "\n" : "no node has " + Fmt.oid(oid) + "\n";
        }
        int source = -1;
        for (int i = 0; i < digest.length; i++) if (digest[i] != null && HexFormat.of().formatHex(digest[i]).equals(vote)) { source = i; break; }
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < digest.length; i++) {
            boolean missing = digest[i] == null;
            if (!missing && HexFormat.of().formatHex(digest[i]).equals(vote)) continue;
            try {
                c.client(targets.get(i).nid()).repairReplica(oid, targets.get(source).nid());
                out.append(missing ? "fixed missing " : "fixed replica ").append(Fmt.oid(oid)).append('\n');
            } catch (SheepdogException e) {
                out.append("failed to repair ").append(Fmt.oid(oid)).append(" on ").append(Addr.of(targets.get(i).nid()))
                        .append(": ").append(e.getMessage()).append('\n');
            }
        }
        return out.toString();
    }

    /**
     * Checks the d+p strips of an erasure-coded object: each position of its placement must hold its strip at the
     * object's version (the newest that d strips show, see {@link StripVersion}), and the strips of that version
     * must be what the data strips encode to. A position that lacks its strip or holds another version (a write
     * that failed part-way) gets the strip rebuilt from d strips of that version. Strips of one version that do not
     * agree, or fewer than d of one version, cannot be made whole: they are named.
     */
    static String checkStrips(Ctx c, long oid, ErasureCode ec, int stripSize) throws IOException {
        List<SdNode> targets = c.ring.targets(oid, ec.totalStrips());
        int n = targets.size(), d = ec.dataStrips();
        StripVersion.State[] states = new StripVersion.State[n];
        byte[][] held = new byte[n][];
        int present = 0;
        for (int j = 0; j < n; j++) {
            byte[] b = readStrip(c, targets.get(j), oid, ec, j, stripSize, StripVersion.ANY);
            if (b == null) continue;
            states[j] = StripVersion.State.decode(b, 0);
            held[j] = Arrays.copyOfRange(b, StripVersion.STATE_BYTES, b.length);
            present++;
        }
        if (present == 0) return "no node has " + Fmt.oid(oid) + "\n";
        Long at = StripVersion.choose(states, d);
        if (at == null) return "no majority of " + Fmt.oid(oid) + " (fewer than " + d + " strips of one version)\n";
        byte[][] strips = new byte[ec.totalStrips()][];
        int have = 0;
        for (int j = 0; j < n; j++) {
            if (states[j] == null || !states[j].shows(at)) continue;
            if (states[j].version() == at && held[j].length == stripSize) {
                strips[j] = held[j];
            } else {
                byte[] b = readStrip(c, targets.get(j), oid, ec, j, stripSize, at);
                if (b == null || b.length != StripVersion.STATE_BYTES + stripSize) continue;
                strips[j] = Arrays.copyOfRange(b, StripVersion.STATE_BYTES, b.length);
            }
            have++;
        }
        if (have < d) return "no majority of " + Fmt.oid(oid) + " (fewer than " + d + " strips of one version)\n";
        byte[][] rebuilt = strips.clone();
        ec.reconstruct(rebuilt);
        if (have > d) {
            // with more than d strips of the version there is something to check the rebuilt ones against
            byte[][] fromData = ec.encode(joined(ec, rebuilt), 0, stripSize * d);
            for (int j = 0; j < n; j++) {
                if (strips[j] != null && !Arrays.equals(strips[j], fromData[j])) {
                    return "no majority of " + Fmt.oid(oid) + " (strip " + j + " does not match the others)\n";
                }
            }
        }
        StringBuilder out = new StringBuilder();
        for (int j = 0; j < n; j++) {
            if (states[j] != null && states[j].version() == at) continue;
            try {
                c.client(targets.get(j).nid()).createStrip(oid, ec.policy(), j, rebuilt[j], at, c.epoch);
                out.append(states[j] == null ? "fixed missing " : "fixed replica ").append(Fmt.oid(oid))
                        .append(", copy index ").append(j).append('\n');
            } catch (SheepdogException e) {
                out.append("failed to repair ").append(Fmt.oid(oid)).append(", copy index ").append(j).append(" on ")
                        .append(Addr.of(targets.get(j).nid())).append(": ").append(e.getMessage()).append('\n');
            }
        }
        return out.toString();
    }

    /** Strip {@code j} on {@code node} at version {@code want}: its state and bytes; null where the node lacks it. */
    private static byte[] readStrip(Ctx c, SdNode node, long oid, ErasureCode ec, int j, int stripSize, long want)
            throws IOException {
        try {
            byte[] b = c.client(node.nid()).readStrip(oid, ec.policy(), j, stripSize, c.epoch, want);
            return b.length >= StripVersion.STATE_BYTES ? b : null;
        } catch (SheepdogException e) {
            return null; // NO_OBJ and friends: this position lacks its strip
        }
    }

    private static byte[] joined(ErasureCode ec, byte[][] strips) {
        byte[] out = new byte[strips[0].length * ec.dataStrips()];
        ec.join(Arrays.copyOf(strips, ec.dataStrips()), out, 0);
        return out;
    }

    /**
     * The digest (hex) held by a strict majority of the replicas that have the object, or null if none have it
     * or they disagree without a majority.
     */
    static String majority(byte[][] digests) {
        Map<String, Integer> count = new LinkedHashMap<>();
        int present = 0;
        for (byte[] d : digests) {
            if (d == null) continue;
            present++;
            count.merge(HexFormat.of().formatHex(d), 1, Integer::sum);
        }
        for (var e : count.entrySet()) if (e.getValue() * 2 > present) return e.getKey();
        return null;
    }

    /** {@code vdi check -e}: asks every node for the objects the placement gives it. */
    static int exists(Ctx c, Inode n) throws IOException {
        Map<SdNode, List<Long>> perNode = new HashMap<>();
        for (long oid : oids(n)) {
            for (SdNode t : c.ring.targets(oid, n.nrCopies)) perNode.computeIfAbsent(t, k -> new ArrayList<>()).add(oid);
        }
        int lost = 0;
        for (SdNode node : c.nodes) {
            List<Long> want = perNode.get(node);
            if (want == null || want.isEmpty()) continue;
            long[] missing;
            try {
                missing = c.client(node.nid()).oidsExist(want.stream().mapToLong(Long::longValue).toArray());
            } catch (SheepdogException e) {
                if (e.result() == SdResult.NO_SUPPORT || e.result() == SdResult.INVALID_PARMS) throw DogExit.failure(e.getMessage());
                throw e;
            }
            for (long m : missing) c.out.print("[" + Addr.of(node.nid()) + "] oid " + Fmt.oid(m) + " is missing.\n");
            lost += missing.length;
        }
        if (lost == 0) {
            c.out.print(n.name + " is fine, no object is missing.\n");
            return ExitCodes.SUCCESS;
        }
        c.out.print(n.name + " lost " + lost + " object(s).\n");
        return ExitCodes.FAILURE;
    }
}
