package io.sheepdog.sheep;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.proto.VnodeRing;
import io.sheepdog.sheep.cluster.InJvmClusterBus;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Several sheep in one JVM on an in-JVM ordered bus: replication, placement, epochs and recovery of the core. */
class ReplicationTest {
    @TempDir Path dir;
    final InJvmClusterBus bus = new InJvmClusterBus();
    final List<Sheep> nodes = new ArrayList<>();
    final List<InJvmClusterBus.Driver> drivers = new ArrayList<>();

    Sheep startNode(int i) throws Exception {
        int port = SheepCoreTest.freePort();
        InJvmClusterBus.Driver d = bus.newDriver();
        Sheep s = new Sheep(SheepOptions.builder(dir.resolve("s" + i)).port(port).zone(i).bindAddr("127.0.0.1")
                .cluster("injvm").foreground(true).noSync(true).build(), d);
        s.start();
        nodes.add(s);
        drivers.add(d);
        return s;
    }

    @AfterEach void stop() {
        for (Sheep s : nodes) s.close();
    }

    /** Formats the cluster with {@code copies} copies (through {@code c}) and creates a 1 GiB VDI; its VID. */
    static int formatAndCreateVdi(SheepConnection c, int copies, String name) throws Exception {
        SdRequest f = SdRequest.of(Opcodes.MAKE_FS).clusterCopies(copies).clusterCtime(5L << 32)
                .clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES).flags(SdFlags.CMD_WRITE).dataLength(6);
        assertEquals(SdResult.SUCCESS, c.call(f, "plain\0".getBytes()).result());
        Reply v = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1L << 30).flags(SdFlags.CMD_WRITE).dataLength(256), Strings.fixed(name, 256));
        assertEquals(SdResult.SUCCESS, v.result());
        return v.header().vdiVid();
    }

    static void waitFor(java.util.function.BooleanSupplier c, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 15000;
        while (!c.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(20);
        }
    }

    @Test void threeCopiesOnThreeZonesSurviveAKillAndRecover() throws Exception {
        for (int i = 0; i < 3; i++) startNode(i);
        waitFor(() -> nodes.get(0).state().view().members().size() == 3, "3 members");
        try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(1).options().port())) {
            SdRequest f = SdRequest.of(Opcodes.MAKE_FS).clusterCopies(3).clusterCtime(7L << 32).clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES).flags(SdFlags.CMD_WRITE).dataLength(6);
            assertEquals(SdResult.SUCCESS, c.call(f, "plain\0".getBytes()).result());
            Reply v = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1L << 30).flags(SdFlags.CMD_WRITE).dataLength(256), Strings.fixed("Alice", 256));
            assertEquals(SdResult.SUCCESS, v.result());
            int vid = v.header().vdiVid();
            byte[][] data = new byte[8][];
            Random rnd = new Random(7);
            for (int i = 0; i < 8; i++) {
                data[i] = new byte[65536];
                rnd.nextBytes(data[i]);
                Reply w = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(vid, i)).flags(SdFlags.CMD_WRITE)
                        .dataLength(data[i].length), data[i]);
                assertEquals(SdResult.SUCCESS, w.result());
            }
            // every node holds every object (3 copies, 3 zones)
            for (int n = 0; n < 3; n++) {
                for (int i = 0; i < 8; i++) {
                    assertTrue(Files.exists(dir.resolve("s" + n + "/obj/" + Oids.fileName(Oids.dataOid(vid, i)))), "node " + n + " obj " + i);
                }
            }
            int epochBefore = nodes.get(1).state().epoch();
            // node 0 crashes; the others move to a new epoch and keep serving
            drivers.get(0).crash();
            nodes.get(0).close();
            waitFor(() -> nodes.get(1).state().epoch() == epochBefore + 1, "epoch after leave");
            for (int i = 0; i < 8; i++) {
                Reply r = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(vid, i)).dataLength(65536));
                assertEquals(SdResult.SUCCESS, r.result());
                assertArrayEquals(data[i], r.data());
            }
            // a new node joins and gets its copies by recovery
            Sheep n3 = startNode(3);
            waitFor(() -> nodes.get(1).state().epoch() == epochBefore + 2, "epoch after join");
            waitFor(() -> {
                for (int i = 0; i < 8; i++) {
                    if (!Files.exists(dir.resolve("s3/obj/" + Oids.fileName(Oids.dataOid(vid, i))))) return false;
                }
                return true;
            }, "recovery to the new node");
            for (int i = 0; i < 8; i++) {
                byte[] got = n3.store().read(Oids.dataOid(vid, i), 0, 65536);
                assertArrayEquals(data[i], got);
            }
        }
    }

    @Test void placementFollowsTheRingWithTwoCopies() throws Exception {
        for (int i = 0; i < 4; i++) startNode(i);
        waitFor(() -> nodes.get(0).state().view().members().size() == 4, "4 members");
        try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(2).options().port())) {
            SdRequest f = SdRequest.of(Opcodes.MAKE_FS).clusterCopies(2).clusterCtime(9L << 32).clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES).flags(SdFlags.CMD_WRITE).dataLength(6);
            assertEquals(SdResult.SUCCESS, c.call(f, "plain\0".getBytes()).result());
            int vid = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1L << 30).flags(SdFlags.CMD_WRITE).dataLength(256),
                    Strings.fixed("b", 256)).header().vdiVid();
            VnodeRing ring = nodes.get(0).state().view().ring();
            for (int i = 0; i < 16; i++) {
                long oid = Oids.dataOid(vid, i);
                assertEquals(SdResult.SUCCESS, c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(oid).flags(SdFlags.CMD_WRITE).dataLength(512), new byte[512]).result());
                List<SdNode> t = ring.targets(oid, 2);
                for (int n = 0; n < 4; n++) {
                    boolean expected = false;
                    for (SdNode x : t) expected |= x.nid().port() == nodes.get(n).options().port();
                    assertEquals(expected, Files.exists(dir.resolve("s" + n + "/obj/" + Oids.fileName(oid))), "node " + n + " idx " + i);
                }
            }
        }
    }

    /**
     * Copies that differ (what a gateway that died in the middle of a write leaves on its unacknowledged blocks) read
     * the same through every node, every time: the first copy in placement order, not the local one or a random one.
     */
    @Test void differingCopiesReadTheSameThroughEveryNode() throws Exception {
        for (int i = 0; i < 3; i++) startNode(i);
        waitFor(() -> nodes.get(0).state().view().members().size() == 3, "3 members");
        int vid;
        try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(0).options().port())) {
            vid = formatAndCreateVdi(c, 3, "d");
            for (int i = 0; i < 6; i++) {
                assertEquals(SdResult.SUCCESS, c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(vid, i))
                        .flags(SdFlags.CMD_WRITE).dataLength(4096), new byte[4096]).result());
            }
        }
        VnodeRing ring = nodes.get(0).state().view().ring();
        for (int i = 0; i < 6; i++) {
            long oid = Oids.dataOid(vid, i);
            // each node's copy made different under the store, as a write that reached some copies leaves them
            for (int n = 0; n < 3; n++) {
                byte[] mine = new byte[4096];
                java.util.Arrays.fill(mine, (byte) (n + 1));
                try (var ch = java.nio.channels.FileChannel.open(dir.resolve("s" + n + "/obj/" + Oids.fileName(oid)),
                        java.nio.file.StandardOpenOption.WRITE)) {
                    ch.write(java.nio.ByteBuffer.wrap(mine), 0);
                }
            }
            int first = ring.targets(oid, 3).getFirst().nid().port();
            int firstNode = -1;
            for (int n = 0; n < 3; n++) if (nodes.get(n).options().port() == first) firstNode = n;
            for (int n = 0; n < 3; n++) {
                try (SheepConnection c = SheepConnection.open("127.0.0.1", nodes.get(n).options().port())) {
                    for (int k = 0; k < 3; k++) {
                        Reply r = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(oid).dataLength(4096));
                        assertEquals(SdResult.SUCCESS, r.result());
                        assertEquals(firstNode + 1, r.data()[0], "object " + i + " read through node " + n + ": the first copy's bytes");
                    }
                }
            }
        }
    }
}
