package io.sheepdog.sheep.access;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdNode;
import java.net.InetAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Address lists and the decisions made from them (the IT checks the same with real sockets). */
class AccessPolicyTest {

    @Test
    void addressListsMatchAddressesAndNetworks() throws Exception {
        AddressAllowList l = AddressAllowList.parse("127.0.0.1, 10.1.0.0/16,fd00::/8");
        assertTrue(l.allows(InetAddress.getByName("127.0.0.1")));
        assertFalse(l.allows(InetAddress.getByName("127.0.0.2")));
        assertTrue(l.allows(InetAddress.getByName("10.1.255.7")));
        assertFalse(l.allows(InetAddress.getByName("10.2.0.1")));
        assertTrue(l.allows(InetAddress.getByName("fd12::1")));
        assertFalse(l.allows(InetAddress.getByName("fe80::1")));
        // an IPv4 client on an IPv6 socket, and the 16-byte wire form the daemon keeps
        assertTrue(l.allows(InetAddress.getByAddress(new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (byte) 0xff, (byte) 0xff, 10, 1, 2, 3})));
        assertTrue(l.allows(AddressAllowList.inetOf(NodeId.addrBytes("10.1.2.3"))));
        assertTrue(AddressAllowList.parse(null).allowsAll());
        assertTrue(AddressAllowList.parse("all").allows(InetAddress.getByName("192.0.2.1")));
        for (String bad : new String[] {"host.example", "10.0.0.0/33", "1.2.3.4/x", ",", "::1/129"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AddressAllowList.parse(bad), bad);
            assertTrue(e.getMessage().startsWith("Invalid address"), e.getMessage());
        }
    }

    @Test
    void onlyAdminsChangeTheClusterAndOnlyMembersSpeakAsSheep() {
        SdNode member = new SdNode(NodeId.of("10.0.0.5", 7000), 128, 1, 0);
        AccessOptions opts = new AccessOptions(null, false, AddressAllowList.parse("10.0.0.0/8"),
                AddressAllowList.parse("10.9.9.9"));
        AccessPolicy p = new AccessPolicy(opts, () -> List.of(member));
        byte[] client = NodeId.addrBytes("10.0.0.7"), admin = NodeId.addrBytes("10.9.9.9"), member5 = NodeId.addrBytes("10.0.0.5");
        assertTrue(p.letsIn(client));
        assertFalse(p.letsIn(NodeId.addrBytes("192.0.2.1")));
        assertNull(p.refusal(Opcodes.READ_OBJ, client));
        assertNull(p.refusal(Opcodes.NEW_VDI, client));
        for (int op : new int[] {Opcodes.MAKE_FS, Opcodes.SHUTDOWN, Opcodes.KILL_NODE, Opcodes.DEL_VDI, Opcodes.REWEIGHT}) {
            assertNotNull(p.refusal(op, client), Opcodes.name(op));
            assertNull(p.refusal(op, admin), Opcodes.name(op));
            assertNotNull(p.refusal(op, member5), Opcodes.name(op) + " from a member's host: dog there is a client too");
        }
        assertNotNull(p.refusal(Opcodes.WRITE_PEER, admin), "an admin is not a sheep");
        assertNull(p.refusal(Opcodes.WRITE_PEER, member5));
        // open options: everything, as the original
        AccessPolicy open = new AccessPolicy(AccessOptions.OPEN, List::of);
        assertNull(open.refusal(Opcodes.MAKE_FS, client));
        assertNull(open.refusal(Opcodes.WRITE_PEER, client));
        assertTrue(open.letsIn(NodeId.addrBytes("192.0.2.1")));
    }

    @Test
    void aPkcs1KeyIsWrappedAsPkcs8() throws Exception {
        var g = java.security.KeyPairGenerator.getInstance("RSA");
        g.initialize(1024);
        var kp = g.generateKeyPair();
        byte[] pkcs8 = kp.getPrivate().getEncoded();
        // PKCS#8 PrivateKeyInfo: the PKCS#1 key is the OCTET STRING after version and algorithm (26 bytes of header
        // for keys of this size); wrapping it again must give the same encoding
        byte[] pkcs1 = java.util.Arrays.copyOfRange(pkcs8, 26, pkcs8.length);
        assertEquals(0x04, pkcs8[22], "the key's OCTET STRING");
        assertArrayEquals(pkcs8, TlsCredentials.rsaToPkcs8(pkcs1));
    }
}
