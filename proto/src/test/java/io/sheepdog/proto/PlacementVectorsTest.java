package io.sheepdog.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The spec's placement test vectors (docs/protocol.md §11.7), checked against the original's test 027/028 output. */
class PlacementVectorsTest {
    private static SdNode node(int port, int zone) {
        return new SdNode(NodeId.of("127.0.0.1", port), 128, zone, 1L << 30);
    }

    private static List<Integer> ports(List<SdNode> nodes) {
        List<Integer> p = new ArrayList<>();
        for (SdNode n : nodes) p.add(n.nid().port());
        return p;
    }

    @Test void hashOfOid() {
        assertEquals(0x8b4b18c243befa1aL, SdHash.sdHashOid(0x807c2b2500000000L));
    }

    @Test void nodeSeedAndVnodes() {
        NodeId id = NodeId.of("127.0.0.1", 7000);
        long seed = VnodeRing.nodeSeed(id);
        assertEquals(0x9cb3d6dd0a4c0f9fL, seed);
        long h1 = SdHash.sdHashNext(seed);
        assertEquals(0x3af2cba6e538cdf3L, h1);
        assertEquals(0xfd38432fd111924bL, SdHash.sdHashNext(h1));
        assertEquals(0x2ad2bef8f506e35dL, SdHash.sdHashNext(SdHash.sdHashNext(h1)));
    }

    @Test void twoNodeRing() {
        VnodeRing r = VnodeRing.build(List.of(node(7000, 0), node(7001, 1)));
        assertEquals(List.of(7001, 7000), ports(r.targets(0x807c2b2500000000L, 2)));
        assertEquals(List.of(7001, 7000), ports(r.targets(Oids.dataOid(0x7c2b25, 0), 2)));
        assertEquals(List.of(7000, 7001), ports(r.targets(Oids.dataOid(0x7c2b25, 1), 2)));
        assertEquals(List.of(7000, 7001), ports(r.targets(Oids.dataOid(0x7c2b25, 2), 2)));
        assertEquals(List.of(7001, 7000), ports(r.targets(Oids.dataOid(0x7c2b25, 3), 2)));
    }

    @Test void fourNodeRingAndRemoval() {
        List<SdNode> four = List.of(node(7000, 0), node(7001, 1), node(7002, 2), node(7003, 3));
        assertEquals(List.of(7001, 7000), ports(VnodeRing.build(four).targets(0x80fd32fc00000000L, 2)));
        List<SdNode> three = List.of(node(7000, 0), node(7002, 2), node(7003, 3));
        assertEquals(List.of(7000, 7002), ports(VnodeRing.build(three).targets(0x80fd32fc00000000L, 2)));
    }

    @Test void vidHashes() {
        assertEquals(0x7c2b25, SdHash.vdiHash("test"));
        assertEquals(0xfd34af, SdHash.vdiHash("test0"));
        assertEquals(0xfd32fc, SdHash.vdiHash("test1"));
        assertEquals(0, SdHash.vdiHash("01909709"));
        assertEquals(0xffffff, SdHash.vdiHash("05421217"));
    }

    @Test void attrId() {
        assertEquals(0x972882c4, VdiAttr.attrId("test", "", 0, "key"));
    }

    @Test void defaultZone() {
        assertEquals(16777343L, NodeId.of("127.0.0.1", 7000).defaultZone());
    }
}
