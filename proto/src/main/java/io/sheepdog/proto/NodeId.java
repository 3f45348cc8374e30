package io.sheepdog.proto;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * {@code struct node_id} (40 bytes): address (IPv4 as 12 zero bytes + 4 address bytes), port, I/O address
 * and port. Ordering is memcmp of the address then the port, as the original's node_cmp.
 */
public record NodeId(byte[] addr, int port, byte[] ioAddr, int ioPort) implements Comparable<NodeId> {
    public static final int SIZE = 40;

    public NodeId {
        if (addr.length != 16 || ioAddr.length != 16) throw new IllegalArgumentException("addresses are 16 bytes");
    }

    public NodeId(byte[] addr, int port) { this(addr, port, new byte[16], 0); }

    /** Parses {@code 127.0.0.1} or an IPv6 literal into the 16-byte wire form. */
    public static byte[] addrBytes(String host) {
        try {
            byte[] raw = InetAddress.getByName(host).getAddress();
            byte[] a = new byte[16];
            if (raw.length == 4) System.arraycopy(raw, 0, a, 12, 4);
            else System.arraycopy(raw, 0, a, 0, 16);
            return a;
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("Invalid ip address " + host, e);
        }
    }

    public static NodeId of(String host, int port) { return new NodeId(addrBytes(host), port); }

    public boolean isIpv4() {
        for (int i = 0; i < 12; i++) if (addr[i] != 0) return false;
        return addr[12] != 0;
    }

    /** Printable address: dotted IPv4 when bytes 0..11 are zero, else IPv6. */
    public String host() { return hostOf(addr); }

    public static String hostOf(byte[] a) {
        boolean v4 = true;
        for (int i = 0; i < 12; i++) if (a[i] != 0) { v4 = false; break; }
        try {
            if (v4 && a[12] != 0) return InetAddress.getByAddress(Arrays.copyOfRange(a, 12, 16)).getHostAddress();
            return InetAddress.getByAddress(a).getHostAddress();
        } catch (UnknownHostException e) {
            throw new AssertionError(e);
        }
    }

    /** {@code 127.0.0.1:7000}, as dog prints it. */
    public String toAddrPort() { return host() + ":" + port; }

    /** {@code IPv4 ip:127.0.0.1 port:7000}, as the original's node_to_str prints it. */
    public String toNodeString() { return (isIpv4() ? "IPv4" : "IPv6") + " ip:" + host() + " port:" + port; }

    /** Default zone: the last 4 address bytes read as a little-endian u32 (127.0.0.1 gives 16777343). */
    public long defaultZone() {
        return ByteBuffer.wrap(addr, 12, 4).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffffffffL;
    }

    public void encode(ByteBuffer b) {
        b.put(addr).putShort((short) port).put(ioAddr).putShort((short) ioPort).putInt(0);
    }

    public static NodeId decode(ByteBuffer b) {
        byte[] a = new byte[16];
        b.get(a);
        int port = b.getShort() & 0xffff;
        byte[] io = new byte[16];
        b.get(io);
        int ioPort = b.getShort() & 0xffff;
        b.getInt();
        return new NodeId(a, port, io, ioPort);
    }

    @Override public int compareTo(NodeId o) {
        int c = Arrays.compareUnsigned(addr, o.addr);
        return c != 0 ? c : Integer.compare(port, o.port);
    }

    @Override public boolean equals(Object o) {
        return o instanceof NodeId n && Arrays.equals(addr, n.addr) && port == n.port;
    }

    @Override public int hashCode() { return Arrays.hashCode(addr) * 31 + port; }

    @Override public String toString() { return toAddrPort(); }
}
