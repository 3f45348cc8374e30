package io.sheepdog.it;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.VnodeRing;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongFunction;

/**
 * The object files in the nodes' store directories ({@code obj/%016x}), checked against the placement the cluster
 * should have (the vnode ring of the current members, {@link VnodeRing#targets}) and against the content a test
 * expects. Looks at the files directly, so it sees what a node really has on disk, not what its gateway answers.
 */
final class StoredObjects {
    private StoredObjects() {}

    static Path file(SheepNode n, long oid) {
        return n.storeDir().resolve("obj").resolve(Oids.fileName(oid));
    }

    /** The vnode ring of the members as {@code via} reports them (GET_NODE_LIST carries the vnode counts). */
    static VnodeRing ring(MiniCluster c, SheepNode via) {
        List<SdNode> members = c.nodeList(via);
        if (members.isEmpty()) throw new AssertionError(via + " reports no members");
        return VnodeRing.build(members);
    }

    /** The harness node of a member. */
    static SheepNode nodeOf(MiniCluster c, SdNode member) {
        for (SheepNode n : c.nodes()) if (n.port() == member.nid().port()) return n;
        throw new AssertionError("no node of this cluster listens on " + member.nid());
    }

    /** The inode of {@code vdi} with its data_vdi_id table, read through {@code via}. */
    static Inode inode(MiniCluster c, SheepNode via, String vdi) {
        try (SheepConnection conn = c.connect(via)) {
            SheepClient cl = new SheepClient(conn);
            return cl.readInode(cl.getVdiInfo(vdi, 0, "").vid());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the inode of " + vdi + " through " + via, e);
        }
    }

    /**
     * Checks the inode and every allocated data object of {@code n} (a VDI without snapshots): each node the ring
     * names for it holds the file, with the same bytes as the other copies and, for data objects, the bytes
     * {@code expected} gives for its index; no other member holds it. Returns the problems found (empty if none).
     */
    static List<String> check(MiniCluster c, SheepNode via, Inode n, LongFunction<byte[]> expected) {
        VnodeRing ring = ring(c, via);
        List<String> problems = new ArrayList<>();
        List<Long> oids = new ArrayList<>();
        oids.add(Oids.inodeOid(n.vdiId));
        for (int i = 0; i < n.objectCount(); i++) {
            if (n.dataVdiId[i] != 0) oids.add(Oids.dataOid(n.dataVdiId[i], i));
        }
        for (long oid : oids) {
            List<SdNode> targets = ring.targets(oid, n.nrCopies);
            byte[] want = Oids.isData(oid) ? expected.apply(Oids.index(oid)) : null;
            byte[] first = null;
            for (SdNode t : targets) {
                SheepNode node = nodeOf(c, t);
                Path f = file(node, oid);
                if (!Files.exists(f)) {
                    problems.add(Oids.fileName(oid) + " missing on " + node);
                    continue;
                }
                byte[] have = read(f, want != null ? want.length : -1);
                if (want != null && !Arrays.equals(have, want)) {
                    problems.add(Oids.fileName(oid) + " on " + node + " differs from what was acknowledged");
                }
                if (first == null) first = have;
                else if (!Arrays.equals(first, have)) problems.add(Oids.fileName(oid) + " on " + node + " differs from its other copies");
            }
            for (SdNode m : ring.nodes()) {
                if (targets.contains(m)) continue;
                SheepNode node = nodeOf(c, m);
                if (Files.exists(file(node, oid))) problems.add(Oids.fileName(oid) + " is on " + node + ", which the placement does not name");
            }
        }
        return problems;
    }

    /** The file's bytes, zero-extended (or cut) to {@code len} when {@code len >= 0}. */
    static byte[] read(Path f, int len) {
        try {
            byte[] b = Files.readAllBytes(f);
            return len >= 0 && b.length != len ? Arrays.copyOf(b, len) : b;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
