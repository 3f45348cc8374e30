package io.sheepdog.dog;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Inode;
import java.util.List;
import java.util.TimeZone;
import org.junit.jupiter.api.Test;

class FmtTest {
    static final long MB = 1 << 20;

    @Test
    void humanSizesFollowStrnumber() {
        assertEquals("0.0 MB", Fmt.human(0));
        assertEquals("0.0 MB", Fmt.human(4095));
        assertEquals("4.0 MB", Fmt.human(4 * MB));
        assertEquals("12 MB", Fmt.human(12 * MB));
        assertEquals("100 MB", Fmt.human(100 * MB));
        assertEquals("4.0 GB", Fmt.human(4L << 30));
        assertEquals("1.0 TB", Fmt.human(1L << 40));
        assertEquals("16 PB", Fmt.human(16L << 50));
        assertEquals("1023 MB", Fmt.human(1023 * MB));
        // printf rounds the exact binary value half-to-even: 12.5 → 12, 2.25 → 2.2, 2.75 → 2.8
        assertEquals("12 MB", Fmt.human(12 * MB + MB / 2));
        assertEquals("13 MB", Fmt.human(12 * MB + MB / 2 + 1));
        assertEquals("2.2 MB", Fmt.human(2 * MB + MB / 4));
        assertEquals("2.8 MB", Fmt.human(2 * MB + 3 * MB / 4));
        assertEquals("4096", Fmt.size(4096, true));
        assertEquals("18446744073709551615", Fmt.size(-1, true));
    }

    @Test
    void fixedMatchesPrintf() {
        assertEquals("0.000", Fmt.fixed(0, 3));
        assertEquals("1.235", Fmt.fixed(1.2345678, 3));
        assertEquals("0", Fmt.fixed(0.5, 0));
        assertEquals("2", Fmt.fixed(1.5, 0));
        assertEquals("100.0", Fmt.fixed(100.0, 1));
    }

    @Test
    void sizesParseLikeDog() {
        assertEquals(256L << 30, Sizes.parse("256G"));
        assertEquals((long) (1.5 * (1 << 20)), Sizes.parse("1.5M"));
        assertEquals(4096, Sizes.parse("4096"));
        assertEquals(4096, Sizes.parse("4k"));
        assertEquals(12, Sizes.parse("12b"));
        assertEquals(1L << 50, Sizes.parse("1P"));
        assertEquals(1L << 40, Sizes.parse("1t"));
        assertEquals(-1, Sizes.parse("12X"));
        assertEquals(-1, Sizes.parse("12MB"));
        assertEquals(-1, Sizes.parse(""));
        assertEquals(-1, Sizes.parse("G"));
        assertEquals(-1, Sizes.parse("-1"));
        assertEquals(-1, Sizes.parse("100000P"));
    }

    @Test
    void datesInLocalTime() {
        TimeZone old = TimeZone.getDefault();
        try {
            TimeZone.setDefault(TimeZone.getTimeZone("UTC"));
            long t = 1514764800L; // 2018-01-01 00:00:00 UTC, a Monday
            assertEquals("2018-01-01 00:00", Fmt.shortDate(t));
            assertEquals("2018-01-01 00:00:00", Fmt.isoDate(t));
            assertEquals("Mon Jan  1 00:00:00 2018", Fmt.ctime(t));
            assertEquals("Thu Jan 11 10:00:01 2018", Fmt.ctime(t + 10 * 86400 + 36001));
        } finally {
            TimeZone.setDefault(old);
        }
    }

    @Test
    void redundancyAndRawNames() {
        assertEquals("3", Fmt.copies(3, 0));
        assertEquals("4:2", Fmt.copies(6, 0x22));
        assertEquals("16:7", Fmt.copies(23, 0x87));
        assertEquals(new Redundancy(6, 0x22), Redundancy.parse("4:2"));
        assertEquals(new Redundancy(3, 0), Redundancy.parse("3"));
        DogExit e = assertThrows(DogExit.class, () -> Redundancy.parse("16:16"));
        assertEquals(1, e.code);
        assertTrue(e.line.startsWith("Invalid parameter 16:16\nTo create replicated vdi, set -c x\n"));
        assertThrows(DogExit.class, () -> Redundancy.parse("3:1"));
        assertThrows(DogExit.class, () -> Redundancy.parse("32"));
        assertThrows(DogExit.class, () -> Redundancy.parse("0"));
        assertEquals("a\\ b\\\\c\\\td", Fmt.escapeRaw("a b\\c\td"));
    }

    @Test
    void ipv6AddressesAreCompressed() {
        byte[] a = new byte[16];
        a[15] = 1;
        assertEquals("::1", Addr.host(a));
        byte[] v4 = new byte[16];
        v4[12] = 127; v4[15] = 1;
        assertEquals("127.0.0.1", Addr.host(v4));
        byte[] b = new byte[16];
        b[0] = (byte) 0xfe; b[1] = (byte) 0x80; b[15] = 5;
        assertEquals("fe80::5", Addr.host(b));
    }

    private static Inode inode(String name, int vid, int parent, boolean snapshot, long time) {
        Inode n = new Inode();
        n.name = name;
        n.vdiId = vid;
        n.parentVdiId = parent;
        n.createTime = time << 32;
        n.snapCtime = snapshot ? 1 : 0;
        n.vdiSize = 4 << 20;
        return n;
    }

    @Test
    void treeOfAChain() {
        TimeZone old = TimeZone.getDefault();
        try {
            TimeZone.setDefault(TimeZone.getTimeZone("UTC"));
            long t = 1514800800L; // 2018-01-01 10:00
            String tree = VdiCmds.drawTree(List.of(inode("test", 1, 0, true, t), inode("test", 2, 1, true, t + 60),
                    inode("test", 3, 2, false, t + 120)), false);
            assertEquals("test---[2018-01-01 10:00]---[2018-01-01 10:01]---(you are here)\n", tree);
        } finally {
            TimeZone.setDefault(old);
        }
    }

    @Test
    void treeWithBranchesMatchesTheOriginalLayout() {
        TimeZone old = TimeZone.getDefault();
        try {
            TimeZone.setDefault(TimeZone.getTimeZone("UTC"));
            long t = 1514800800L;
            // test 041 after four restores: 1 -> {2 -> {3 -> working, 7}, 4 -> 5, 6}
            List<Inode> l = List.of(inode("test", 1, 0, true, t), inode("test", 2, 1, true, t), inode("test", 3, 2, true, t),
                    inode("test", 4, 1, true, t), inode("test", 5, 4, true, t), inode("test", 6, 1, true, t),
                    inode("test", 7, 2, true, t), inode("test", 8, 3, false, t));
            String d = "[2018-01-01 10:00]";
            String expect = "test---" + d + "-+-" + d + "-+-" + d + "---(you are here)\n"
                    + "                          |                    `-" + d + "\n"
                    + "                          |-" + d + "---" + d + "\n"
                    + "                          `-" + d + "\n";
            assertEquals(expect, VdiCmds.drawTree(l, false));
            // a clone (other name) starts its own tree
            String two = VdiCmds.drawTree(List.of(inode("base", 1, 0, true, t), inode("base", 2, 1, false, t),
                    inode("clone", 3, 1, false, t)), false);
            assertEquals("base---" + d + "---(you are here)\nclone---(you are here)\n", two);
        } finally {
            TimeZone.setDefault(old);
        }
    }
}
