package io.sheepdog.dog;

import io.sheepdog.proto.NodeId;

/** Node addresses as dog prints them: {@code 127.0.0.1:7000}, IPv6 in inet_ntop's compressed form. */
final class Addr {
    private Addr() {}

    static String of(NodeId id) { return host(id.addr()) + ":" + id.port(); }

    /** Dotted IPv4 for 12 zero bytes + 4 address bytes, else RFC 5952 IPv6 text. */
    static String host(byte[] a) {
        boolean v4 = true;
        for (int i = 0; i < 12; i++) if (a[i] != 0) { v4 = false; break; }
        if (v4 && a[12] != 0) return (a[12] & 0xff) + "." + (a[13] & 0xff) + "." + (a[14] & 0xff) + "." + (a[15] & 0xff);
        int[] g = new int[8];
        for (int i = 0; i < 8; i++) g[i] = ((a[2 * i] & 0xff) << 8) | (a[2 * i + 1] & 0xff);
        int bestStart = -1, bestLen = 0;
        for (int i = 0; i < 8; ) {
            if (g[i] != 0) { i++; continue; }
            int j = i;
            while (j < 8 && g[j] == 0) j++;
            if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
            i = j;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                b.append("::");
                i += bestLen - 1;
                continue;
            }
            if (b.length() > 0 && b.charAt(b.length() - 1) != ':') b.append(':');
            b.append(Integer.toHexString(g[i]));
        }
        return b.toString();
    }

    /** {@code IPv4 ip:127.0.0.1 port:7000}, the original's node_to_str. */
    static String nodeString(NodeId id) {
        return (id.isIpv4() ? "IPv4" : "IPv6") + " ip:" + host(id.addr()) + " port:" + id.port();
    }
}
