package io.sheepdog.sheep.access;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Client addresses a sheep lets in: a comma-separated list of addresses and networks ({@code 127.0.0.1},
 * {@code 10.0.0.0/8}, {@code ::1}, {@code fd00::/8}); {@code all} (or no list) lets everybody in. Only literal
 * addresses: a name would be looked up, and a lookup is not a check.
 */
public final class AddressAllowList {
    /** Everybody: what a sheep does when no list is given (as the original). */
    public static final AddressAllowList ALL = new AddressAllowList(List.of(), "all");

    private record Network(byte[] address, int prefix) {
        boolean contains(byte[] a) {
            if (a.length != address.length) return false;
            int full = prefix / 8, rest = prefix % 8;
            for (int i = 0; i < full; i++) if (a[i] != address[i]) return false;
            if (rest == 0) return true;
            int mask = (0xff << (8 - rest)) & 0xff;
            return (a[full] & mask) == (address[full] & mask);
        }
    }

    private final List<Network> networks;
    private final String spec;

    private AddressAllowList(List<Network> networks, String spec) {
        this.networks = networks;
        this.spec = spec;
    }

    /** Parses {@code spec}; an IllegalArgumentException names the part that is not an address or network. */
    public static AddressAllowList parse(String spec) {
        if (spec == null || spec.isBlank() || spec.trim().equals("all")) return ALL;
        List<Network> out = new ArrayList<>();
        for (String part : spec.split(",")) {
            String p = part.trim();
            if (p.isEmpty()) continue;
            String addr = p;
            int prefix = -1;
            int slash = p.indexOf('/');
            if (slash >= 0) {
                addr = p.substring(0, slash);
                try {
                    prefix = Integer.parseInt(p.substring(slash + 1));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("Invalid address or network '" + p + "'");
                }
            }
            if (!addr.matches("[0-9a-fA-F:.]+")) throw new IllegalArgumentException("Invalid address or network '" + p + "'");
            byte[] a;
            try {
                a = InetAddress.getByName(addr).getAddress(); // a literal: no lookup
            } catch (UnknownHostException e) {
                throw new IllegalArgumentException("Invalid address or network '" + p + "'");
            }
            if (prefix < 0) prefix = a.length * 8;
            if (prefix > a.length * 8) throw new IllegalArgumentException("Invalid address or network '" + p + "'");
            out.add(new Network(a, prefix));
        }
        if (out.isEmpty()) throw new IllegalArgumentException("Invalid address list '" + spec + "'");
        return new AddressAllowList(List.copyOf(out), spec);
    }

    public boolean allowsAll() { return networks.isEmpty(); }

    public boolean allows(InetAddress a) {
        if (networks.isEmpty()) return true;
        if (a == null) return false;
        byte[] b = a.getAddress();
        // an IPv4 client on an IPv6 socket comes as ::ffff:a.b.c.d
        if (b.length == 16 && isMappedV4(b)) b = Arrays.copyOfRange(b, 12, 16);
        for (Network n : networks) if (n.contains(b)) return true;
        return false;
    }

    /** Whether the remote end {@code remote} (a socket address; anything else, e.g. a Unix socket, is local) is let in. */
    public boolean allows(SocketAddress remote) {
        if (networks.isEmpty() || !(remote instanceof InetSocketAddress in)) return true;
        return allows(in.getAddress());
    }

    /** The address of a 16-byte wire form (IPv4 in the last four bytes after twelve zeros, as NodeId keeps it). */
    public static InetAddress inetOf(byte[] wire) {
        try {
            boolean v4 = true;
            for (int i = 0; i < 12; i++) v4 &= wire[i] == 0;
            return InetAddress.getByAddress(v4 ? Arrays.copyOfRange(wire, 12, 16) : wire);
        } catch (UnknownHostException e) {
            return null;
        }
    }

    private static boolean isMappedV4(byte[] b) {
        for (int i = 0; i < 10; i++) if (b[i] != 0) return false;
        return b[10] == (byte) 0xff && b[11] == (byte) 0xff;
    }

    @Override
    public String toString() { return spec; }
}
