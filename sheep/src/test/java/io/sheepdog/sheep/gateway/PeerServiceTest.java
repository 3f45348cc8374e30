package io.sheepdog.sheep.gateway;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.node.NodeState;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.Request;
import io.sheepdog.sheep.parts.OneNode;
import io.sheepdog.sheep.store.MultiDiskStore;
import io.sheepdog.sheep.store.ObjectSizes;
import io.sheepdog.sheep.vdi.VdiRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The peer side on its own (no Sheep): epoch checks, and objects whose disk failed or whose file went. */
class PeerServiceTest {
    @TempDir
    Path dir;

    static final long OID = Oids.dataOid(0x42, 7);

    static SdRequest peer(int op, long oid, int epoch, long offset, int len) {
        SdRequest r = new SdRequest().opcode(op).protoVer(Proto.SHEEP_PROTO_VER).epoch(epoch).objOid(oid)
                .objOffset(offset).dataLength(len);
        if (op != Opcodes.READ_PEER) r.flags(SdFlags.CMD_WRITE);
        return r;
    }

    static byte[] bytes(int n, int v) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) v);
        return b;
    }

    static Reply send(PeerService p, SdRequest h, byte[] data) {
        return p.handle(new Request(h, data, ClientInfo.INTERNAL));
    }

    @Test
    void writesAndReadsAtItsEpochAndSendsOlderSendersToTheNewPlacement() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            assertEquals(SdResult.SUCCESS, send(n.peer, peer(Opcodes.CREATE_AND_WRITE_PEER, OID, 1, 512, 4096), bytes(4096, 3)).result());
            Reply r = send(n.peer, peer(Opcodes.READ_PEER, OID, 1, 512, 4096), Request.NO_DATA);
            assertEquals(SdResult.SUCCESS, r.result());
            assertArrayEquals(bytes(4096, 3), r.data());
            n.state.setView(Proto.STATUS_OK, 2, List.of(n.self), List.of(n.self));
            Reply old = send(n.peer, peer(Opcodes.WRITE_PEER, OID, 1, 0, 512), bytes(512, 9));
            assertEquals(SdResult.OLD_NODE_VER, old.result(), "a sender at an older epoch retries on the new placement");
            assertEquals(2, old.header().epoch());
            assertArrayEquals(bytes(512, 0), n.store.read(OID, 0, 512), "nothing written");
        }
    }

    @Test
    void aWriteWhoseDiskFailedWaitsForTheObjectsRecoveryAndIsDoneOnAnotherDisk() throws Exception {
        SdNode self = new SdNode(NodeId.of("127.0.0.1", 7000), Proto.DEFAULT_VNODES, 0, 1L << 30);
        NodeState state = new NodeState(self);
        state.setSettings(io.sheepdog.sheep.node.ClusterSettings.NONE.withCtime(1).withCopies(1));
        state.setView(Proto.STATUS_OK, 1, List.of(self), List.of(self));
        VdiRegistry vdis = new VdiRegistry();
        List<Path> disks = List.of(dir.resolve("d0"), dir.resolve("d1"));
        List<String> recovered = new CopyOnWriteArrayList<>();
        try (MultiDiskStore store = new MultiDiskStore(disks, true)) {
            PeerService peer = new PeerService(store, state, new ObjectSizes(state, vdis));
            byte[] copyElsewhere = bytes(4 << 20, 5); // what another node's copy holds
            // "recovery": brings the object from its other copy onto a disk that works
            peer.setRecoveryHook(key -> {
                for (int attempt = 0; attempt < 2 && !store.exists(key); attempt++) {
                    try {
                        store.create(key, 4 << 20, copyElsewhere, 0, null);
                        recovered.add(Long.toHexString(key));
                    } catch (io.sheepdog.sheep.store.DiskFailedException e) {
                        // its home disk is the failed one: found now, and the next attempt goes to another
                    } catch (java.io.IOException e) {
                        throw new AssertionError(e);
                    }
                }
            });
            // objects on both disks, then the disk of OID goes (unmounted: the empty mount point shows)
            for (int i = 0; i < 16; i++) store.create(Oids.dataOid(0x42, i), 4 << 20, copyElsewhere, 0, null);
            Path home = null;
            for (Path d : disks) if (Files.exists(d.resolve(io.sheepdog.sheep.store.StoreKey.fileName(OID)))) home = d;
            assertNotNull(home);
            Files.move(home, dir.resolve("gone"));
            Files.createDirectories(home);

            Reply w = send(peer, peer(Opcodes.WRITE_PEER, OID, 1, 4096, 512), bytes(512, 8));
            assertEquals(SdResult.SUCCESS, w.result(), "the write waited for the object's recovery instead of failing");
            assertEquals(List.of(Long.toHexString(OID)), recovered);
            assertEquals(1, store.diskFailures());
            assertArrayEquals(bytes(512, 8), store.read(OID, 4096, 512));
            assertArrayEquals(bytes(512, 5), store.read(OID, 0, 512), "the rest is the recovered copy");
            Path left = home.equals(disks.get(0)) ? disks.get(1) : disks.get(0);
            assertTrue(Files.exists(left.resolve(io.sheepdog.sheep.store.StoreKey.fileName(OID))), "on the disk left");
        }
    }

    @Test
    void aWriteToAnObjectWhoseFileWentAsksForItAndWaits() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            List<Long> missing = new CopyOnWriteArrayList<>();
            n.peer.setRecoveryHook(new PeerService.RecoveryHook() {
                @Override public void awaitRecovered(long oid) {
                    try {
                        if (!missing.isEmpty() && !n.store.exists(oid)) n.store.create(oid, 4 << 20, null, 0, bytes(512, 1));
                    } catch (java.io.IOException e) {
                        throw new AssertionError(e);
                    }
                }

                @Override public void missing(long oid) { missing.add(oid); }
            });
            assertEquals(SdResult.SUCCESS, send(n.peer, peer(Opcodes.CREATE_AND_WRITE_PEER, OID, 1, 0, 512), bytes(512, 1)).result());
            Files.delete(dir.resolve("obj").resolve(io.sheepdog.sheep.store.StoreKey.fileName(OID)));
            Reply w = send(n.peer, peer(Opcodes.WRITE_PEER, OID, 1, 512, 512), bytes(512, 2));
            assertEquals(SdResult.SUCCESS, w.result());
            assertEquals(List.of(OID), missing);
            assertArrayEquals(bytes(512, 1), n.store.read(OID, 0, 512));
            assertArrayEquals(bytes(512, 2), n.store.read(OID, 512, 512));
        }
    }
}
