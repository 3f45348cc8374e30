package io.sheepdog.dog;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.client.ConnectionPool;
import io.sheepdog.client.SheepClient;
import io.sheepdog.client.Volume;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * dog against a real sheep daemon process: output formats, exit codes and data integrity of the commands an
 * operator's scripts use. One single-node cluster (formatted with locking, -l) serves all tests of this class;
 * every test uses its own VDI names.
 */
class DogEndToEndTest {
    static final int MB = 1 << 20;
    static final String DATE = "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d";

    @TempDir
    static Path root;
    static RealSheep sheep;

    @BeforeAll
    static void startSheep() throws Exception {
        sheep = RealSheep.start(root, Files.createDirectories(root.resolve("cluster")), 0);
        DogRun r = dog("cluster", "format", "-c", "1", "-l");
        assertEquals(0, r.code(), r.toString());
        assertEquals("using backend plain store\n", r.out());
    }

    @AfterAll
    static void stopSheep() {
        if (sheep != null) {
            if (!sheep.isAlive()) System.err.println("sheep died during the tests; log:\n" + sheep.logTail());
            sheep.close();
        }
    }

    static DogRun dog(String... args) { return DogRun.run(sheep.port, args); }

    static DogRun dogIn(byte[] in, String... args) { return DogRun.run(sheep.port, in, args); }

    static DogRun ok(String... args) {
        DogRun r = dog(args);
        assertEquals(0, r.code(), () -> String.join(" ", args) + " -> " + r);
        return r;
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static String md5(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(b));
    }

    @Test
    void clusterAndNodeOutput() {
        String addr = "127.0.0.1:" + sheep.port;
        assertEquals("  Id   Host:Port         V-Nodes       Zone\n   0   " + Fmt.left(addr, 20) + "\t128          0\n",
                ok("node", "list").out());
        assertEquals("0 " + addr + " 128 0\n", ok("node", "list", "-r").out());

        String[] info = ok("cluster", "info").out().split("\n", -1);
        assertEquals("Cluster status: running, auto-recovery enabled", info[0]);
        assertEquals("", info[1]);
        assertTrue(info[2].matches("Cluster created at \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\d{4}"), info[2]);
        assertEquals("", info[3]);
        assertEquals("Epoch Time           Version [Host:Port:V-Nodes,,,]", info[4]);
        assertTrue(info[5].matches(DATE + ":\\d\\d      1 \\[" + addr + ":128\\]"), info[5]);

        String verbose = ok("cluster", "info", "-v").out();
        assertTrue(verbose.startsWith("Cluster status: running, auto-recovery enabled\nCluster store: plain with 1 redundancy policy\n"
                + "Cluster vnodes strategy: auto\nCluster vnode mode: node\n"), verbose);

        String[] ni = ok("node", "info").out().split("\n", -1);
        assertEquals("Id\tSize\tUsed\tAvail\tUse%", ni[0]);
        assertTrue(ni[1].matches(" 0\t\\d+(\\.\\d)? [MGT]B\t\\d+(\\.\\d)? [MGT]B\t\\d+(\\.\\d)? [MGT]B\t +\\d+%"), ni[1]);
        assertTrue(ni[2].startsWith("Total\t"), ni[2]);
        assertTrue(ni[4].startsWith("Total virtual image size\t"), ni[4]);

        // "no recovery running" is exactly the two header lines (the functional tests count them)
        assertEquals("Nodes In Recovery:\n  Id   Host:Port         V-Nodes       Zone       Progress\n", ok("node", "recovery").out());

        for (String opt : new String[] {"-R", "-F"}) {
            DogRun refused = dog("cluster", "format", opt, "-c", "1");
            assertEquals(1, refused.code(), refused.toString());
            assertTrue(refused.err().endsWith("is not supported yet\n"), refused.err());
            assertEquals("", refused.out(), "refused before anything is printed or sent");
        }

        assertEquals("Cluster recovery: disable\n", ok("cluster", "recover", "disable").out());
        assertTrue(ok("cluster", "info").out().startsWith("Cluster status: running, auto-recovery disabled\n"));
        assertEquals("Cluster recovery: enable\n", ok("cluster", "recover", "enable").out());
    }

    @Test
    void writeAndReadBackThroughStdinAndStdout() throws Exception {
        DogRun c = ok("vdi", "create", "data", "64M", "-v");
        assertTrue(c.out().matches("VDI ID of newly created VDI: [0-9a-f]+\n"), c.out());
        byte[] d = random(40 * MB + 123, 42);
        ok_in(d, "vdi", "write", "data", "3000");
        assertArrayEquals(d, ok("vdi", "read", "data", "3000", Integer.toString(d.length)).stdout());
        byte[] all = ok("vdi", "read", "data").stdout();
        assertEquals(64 * MB, all.length);
        assertArrayEquals(new byte[3000], Arrays.copyOf(all, 3000));
        assertArrayEquals(new byte[64 * MB - 3000 - d.length], Arrays.copyOfRange(all, 3000 + d.length, all.length));

        String row = ok("vdi", "list", "data").out().split("\n")[1];
        // 40 MiB + 123 bytes written at offset 3000 end in object 10: objects 0..10 are allocated, 44 MB used
        assertTrue(row.matches("  data         0   64 MB   44 MB  0\\.0 MB " + DATE + "  +[0-9a-f]+      1                22"), row);
        String map = ok("vdi", "object", "map", "data").out();
        assertEquals(12, map.split("\n").length, map); // header + 11 objects

        // 1 MiB objects: 40 chunks go through a window of 16, so every chunk buffer is reused at least twice and
        // a reused buffer holds a longer chunk's bytes past the end of a shorter one (the unaligned first and last)
        ok("vdi", "create", "small-objects", "48M", "-z", "20");
        byte[] many = random(40 * MB + 777, 7);
        ok_in(many, "vdi", "write", "small-objects", "4097");
        assertArrayEquals(many, ok("vdi", "read", "small-objects", "4097", Integer.toString(many.length)).stdout());
        byte[] whole = ok("vdi", "read", "small-objects").stdout();
        assertEquals(48 * MB, whole.length);
        assertArrayEquals(many, Arrays.copyOfRange(whole, 4097, 4097 + many.length));
        assertArrayEquals(new byte[48 * MB - 4097 - many.length], Arrays.copyOfRange(whole, 4097 + many.length, whole.length));

        DogRun beyond = dog("vdi", "write", "data", "65M");
        assertEquals(1, beyond.code());
        assertEquals("Write offset is beyond the end of the VDI\n", beyond.err());
    }

    @Test
    void listReadsTablesLargerThanItsFirstRead() throws Exception {
        // 8 GiB is 2048 objects; the first read of each inode holds 882 data_vdi_id entries, the rest of this
        // table comes with a second request
        DogRun c = ok("vdi", "create", "wide", "8G", "-v");
        int vid = Integer.parseInt(c.out().trim().substring(c.out().lastIndexOf(' ') + 1), 16);
        long[] written = {0, 881, 882, 2047};
        for (long idx : written) ok_in(random(4096, idx), "vdi", "write", "wide", Long.toString(idx * 4 * MB));

        String row = ok("vdi", "list", "wide").out().split("\n")[1];
        assertTrue(row.matches("  wide         0  8\\.0 GB   16 MB  0\\.0 MB " + DATE + "  +[0-9a-f]+      1                22"), row);
        for (long idx : written) {
            String oid = Long.toHexString(io.sheepdog.proto.Oids.dataOid(vid, idx));
            assertEquals(2, ok("vdi", "list", "-o", oid).out().split("\n").length, "object " + idx + " is found");
        }
        String unwritten = Long.toHexString(io.sheepdog.proto.Oids.dataOid(vid, 1000));
        assertEquals(1, ok("vdi", "list", "-o", unwritten).out().split("\n").length, "only the header");
    }

    private static void ok_in(byte[] in, String... args) {
        DogRun r = dogIn(in, args);
        assertEquals(0, r.code(), () -> String.join(" ", args) + " -> " + r);
    }

    @Test
    void snapshotRollbackAndTree() throws Exception {
        ok("vdi", "create", "rb", "4G");
        byte[] p1 = new byte[512];
        Arrays.fill(p1, (byte) 1);
        byte[] p2 = new byte[512];
        Arrays.fill(p2, (byte) 2);
        ok_in(p1, "vdi", "write", "rb", "0", "512");
        ok("vdi", "snapshot", "rb", "-s", "snap1");
        ok_in(p2, "vdi", "write", "rb", "0", "512");

        DogRun rb = dogIn("yes\n".getBytes(), "vdi", "rollback", "rb", "-s", "snap1");
        assertEquals(0, rb.code(), rb.toString());
        assertEquals("This operation discards any changes made since the previous\nsnapshot was taken.  Continue? [yes/no]: ", rb.out());
        assertArrayEquals(p1, ok("vdi", "read", "rb", "0", "512").stdout());
        assertTrue(treeOf(ok("vdi", "tree").out(), "rb").matches("rb---\\[" + DATE + "\\]---\\(you are here\\)\n"));

        // a "no" leaves everything as it was
        ok_in(p2, "vdi", "write", "rb", "0", "512");
        DogRun no = dogIn("no\n".getBytes(), "vdi", "rollback", "rb", "-s", "snap1");
        assertEquals(1, no.code());
        assertArrayEquals(p2, ok("vdi", "read", "rb", "0", "512").stdout());

        ok("vdi", "snapshot", "rb", "-s", "snap2");
        ok_in(p1, "vdi", "write", "rb", "0", "512");
        ok("vdi", "rollback", "-f", "rb", "-s", "snap1");
        String rbTree = treeOf(ok("vdi", "tree").out(), "rb");
        assertTrue(rbTree.matches("rb---\\[" + DATE + "\\]-\\+-\\[" + DATE + "\\]\n {24}`-\\(you are here\\)\n"), rbTree);

        List<String> rows = new ArrayList<>();
        for (String l : ok("vdi", "list", "rb").out().split("\n")) if (l.contains(" rb ")) rows.add(l);
        assertEquals(3, rows.size(), rows.toString());
        assertTrue(rows.get(0).matches("s rb           1  4\\.0 GB  4\\.0 MB  0\\.0 MB " + DATE + " +[0-9a-f]+      1         snap1  22"), rows.get(0));
        assertTrue(rows.get(1).startsWith("s rb           2  4.0 GB  4.0 MB  0.0 MB "), rows.get(1));
        assertTrue(rows.get(2).startsWith("  rb           0  4.0 GB  0.0 MB  4.0 MB "), rows.get(2));

        DogRun zero = dogIn("yes\n".getBytes(), "vdi", "rollback", "rb", "-s", "0");
        assertEquals(1, zero.code());
        assertEquals("The snapshot id must be larger than zero\n", zero.err());
        DogRun five = dogIn("yes\n".getBytes(), "vdi", "rollback", "rb", "-s", "5");
        assertEquals(1, five.code());
        assertEquals("Failed to open VDI rb (snapshot id: 5 snapshot tag: ): Failed to find requested tag\n", five.err());
        assertArrayEquals(p1, ok("vdi", "read", "rb", "-s", "snap1", "0", "512").stdout());
        assertArrayEquals(p2, ok("vdi", "read", "rb", "-s", "2", "0", "512").stdout());
    }

    @Test
    void backupAndRestoreLikeTest041() throws Exception {
        ok("vdi", "create", "bk", "12M");
        ok_in("0\n".getBytes(), "vdi", "write", "bk", "0", "512");
        ok("vdi", "snapshot", "bk", "-s", "snap1");
        ok_in("1\n".getBytes(), "vdi", "write", "bk", Integer.toString(4 * MB), "512");
        ok("vdi", "snapshot", "bk", "-s", "snap2");
        ok_in("2\n".getBytes(), "vdi", "write", "bk", "0", "512");
        ok("vdi", "snapshot", "bk", "-s", "snap3");
        String[] sums = new String[4];
        for (int i = 1; i <= 3; i++) sums[i] = md5(ok("vdi", "read", "bk", "-s", "snap" + i).stdout());

        byte[] b12 = ok("vdi", "backup", "bk", "-F", "snap1", "-s", "snap2").stdout();
        byte[] b23 = ok("vdi", "backup", "bk", "-F", "snap2", "-s", "snap3").stdout();

        // a truncated backup or something else entirely is refused and changes nothing
        String before = ok("vdi", "list", "-r", "bk").out();
        DogRun cut = dogIn(Arrays.copyOf(b12, b12.length - 20), "vdi", "restore", "bk", "-s", "snap1");
        assertEquals(1, cut.code());
        assertEquals("The VDI backup is truncated\n", cut.err());
        DogRun junk = dogIn("#!/bin/sh\necho hello\n".getBytes(), "vdi", "restore", "bk", "-s", "snap1");
        assertEquals(1, junk.code());
        assertEquals("The input is not a VDI backup\n", junk.err());
        assertEquals(before, ok("vdi", "list", "-r", "bk").out());

        ok_in(b12, "vdi", "restore", "bk", "-s", "snap1");
        List<String> rows = new ArrayList<>();
        for (String l : ok("vdi", "list", "bk").out().split("\n")) if (l.contains(" bk ")) rows.add(l);
        assertEquals(5, rows.size(), rows.toString());
        assertTrue(rows.get(3).startsWith("s bk           4   12 MB  4.0 MB  4.0 MB "), rows.get(3));
        assertTrue(rows.get(4).startsWith("  bk           0   12 MB  0.0 MB  8.0 MB "), rows.get(4));
        String bkTree = treeOf(ok("vdi", "tree").out(), "bk");
        assertTrue(bkTree.matches("bk---\\[" + DATE + "\\]-\\+-\\[" + DATE + "\\]---\\[" + DATE + "\\]---\\(you are here\\)\n"
                + " {24}`-\\[" + DATE + "\\]\n"), bkTree);
        assertEquals(sums[2], md5(ok("vdi", "read", "bk", "-s", "4").stdout()), "snap1 + (snap1→snap2) = snap2");

        ok_in(b23, "vdi", "restore", "bk", "-s", "4");
        assertEquals(sums[3], md5(ok("vdi", "read", "bk", "-s", "5").stdout()), "snap2 + (snap2→snap3) = snap3");
        assertEquals(sums[3], md5(ok("vdi", "read", "bk").stdout()), "the working VDI is based on snap3 again");
    }

    @Test
    void cloneDeleteAndMessages() throws Exception {
        ok("vdi", "create", "src", "8M");
        byte[] d = random(8 * MB, 7);
        ok_in(d, "vdi", "write", "src");
        ok("vdi", "snapshot", "src", "-s", "base");
        DogRun noSnap = dog("vdi", "clone", "src", "c1");
        assertEquals(64, noSnap.code());
        assertTrue(noSnap.err().startsWith("Only snapshot VDIs can be cloned\nPlease specify the '-s' option\n"), noSnap.err());

        assertTrue(ok("vdi", "clone", "-s", "base", "src", "c1", "-v").out().matches("VDI ID of newly created clone: [0-9a-f]+\n"));
        ok("vdi", "clone", "-s", "base", "-n", "src", "c2");
        assertArrayEquals(d, ok("vdi", "read", "c1").stdout());
        assertArrayEquals(d, ok("vdi", "read", "c2").stdout());
        String c1 = rowOf(ok("vdi", "list").out(), "c1");
        String c2 = rowOf(ok("vdi", "list").out(), "c2");
        assertTrue(c1.startsWith("c c1           0  8.0 MB  0.0 MB  8.0 MB "), c1);
        assertTrue(c2.startsWith("  c2           0  8.0 MB  8.0 MB  0.0 MB "), c2);
        assertTrue(ok("vdi", "tree").out().contains("c1---(you are here)\n"));

        // writes to the clone do not show in the source
        ok_in(new byte[] {5, 5}, "vdi", "write", "c1", "0");
        assertArrayEquals(Arrays.copyOf(d, 2), ok("vdi", "read", "src", "0", "2").stdout());

        ok("vdi", "delete", "c2");
        DogRun again = dog("vdi", "delete", "c2");
        assertEquals(1, again.code());
        assertEquals("Failed to open VDI c2 (snapshot id: 0 snapshot tag: ): No VDI found\n", again.err());
        ok("vdi", "delete", "src", "-s", "base");
        DogRun gone = dog("vdi", "delete", "src", "-s", "base");
        assertEquals(1, gone.code());
        assertEquals("Failed to open VDI src (snapshot id: 0 snapshot tag: base): Failed to find requested tag\n", gone.err());
        assertArrayEquals(d, ok("vdi", "read", "src").stdout(), "the working VDI still reads the data it shared");
    }

    /** The lines of {@code vdi tree} output that draw the tree of {@code name}. */
    static String treeOf(String tree, String name) {
        StringBuilder b = new StringBuilder();
        boolean in = false;
        for (String l : tree.split("\n")) {
            if (l.startsWith(name + "---")) in = true;
            else if (!l.startsWith(" ")) in = false;
            if (in) b.append(l).append('\n');
        }
        return b.toString();
    }

    static String rowOf(String list, String name) {
        for (String l : list.split("\n")) if (l.length() > 2 && l.substring(2).startsWith(name + " ")) return l;
        return "";
    }

    @Test
    void attributes() {
        ok("vdi", "create", "attr", "4M");
        ok("vdi", "setattr", "attr", "owner", "alice");
        assertEquals("alice", ok("vdi", "getattr", "attr", "owner").out());
        ok_in("from stdin".getBytes(), "vdi", "setattr", "attr", "note");
        assertEquals("from stdin", ok("vdi", "getattr", "attr", "note").out());
        DogRun excl = dog("vdi", "setattr", "-x", "attr", "owner", "bob");
        assertEquals(3, excl.code());
        assertEquals("The attribute 'owner' already exists\n", excl.err());
        ok("vdi", "setattr", "attr", "owner", "bob");
        assertEquals("bob", ok("vdi", "getattr", "attr", "owner").out());
        ok("vdi", "setattr", "-d", "attr", "owner");
        DogRun missing = dog("vdi", "getattr", "attr", "owner");
        assertEquals(5, missing.code());
        assertEquals("Attribute 'owner' not found\n", missing.err());
        DogRun noVdi = dog("vdi", "getattr", "nosuchvdi", "owner");
        assertEquals(5, noVdi.code(), noVdi.toString());
    }

    /** {@code node stat -r}: the Client line's numbers, in the order of the header (Active, Total, Write, Read, ...). */
    private static long[] clientStat() {
        String[] lines = ok("node", "stat", "-r").out().split("\n");
        assertEquals(2, lines.length, String.join("\n", lines));
        assertTrue(lines[0].startsWith("Client\t") && lines[1].startsWith("Peer\t"), String.join("\n", lines));
        String[] f = lines[0].split("\t");
        assertEquals(9, f.length, lines[0]);
        long[] v = new long[8];
        for (int i = 0; i < 8; i++) v[i] = Long.parseLong(f[i + 1]);
        return v;
    }

    @Test
    void nodeStatVerboseShowsWhereWritesSpendTheirTime() {
        ok("vdi", "create", "stages", "8M");
        ok_in(random(4 * MB, 11), "vdi", "write", "stages", "0");
        String[] lines = ok("node", "stat", "-v").out().split("\n");
        assertEquals(8, lines.length, String.join("\n", lines));
        assertEquals("Stage\tCount\tMean (us)", lines[3]);
        String[] write = lines[4].split("\t"), peer = lines[5].split("\t"), local = lines[6].split("\t");
        assertEquals("Client write", write[0]);
        assertTrue(Long.parseLong(write[1]) >= 1, lines[4]);
        assertTrue(Double.parseDouble(write[2]) > 0, lines[4]);
        assertEquals("Peer write", peer[0]);
        assertEquals("0", peer[1], "one node: no other gateway sends it copies");
        assertEquals("-", peer[2]);
        assertEquals("  local copy", local[0]);
        assertTrue(Long.parseLong(local[1]) >= 1, lines[6]);
        assertTrue(Double.parseDouble(local[2]) > 0, lines[6]);
        assertEquals("  remote copies\t0\t-", lines[7], "one copy: nothing sent to other nodes");
        assertEquals(3, ok("node", "stat").out().split("\n").length, "without -v: sd_stat alone, as the original");
    }

    @Test
    void nodeStatCountsWritesUnderWriteAndReadsUnderRead() {
        final int write = 2, read = 3, rx = 6, tx = 7;
        String header = ok("node", "stat").out().split("\n")[0];
        assertEquals("Request\tActive\tTotal\tWrite\tRead\tRemove\tFlush\tAll WR\tAll RD", header);
        ok("vdi", "create", "stat", "16M");
        long[] before = clientStat();
        ok_in(random(8 * MB, 9), "vdi", "write", "stat", "0");
        long[] written = clientStat();
        assertTrue(written[write] - before[write] >= 2, "two data objects written: " + Arrays.toString(written));
        assertTrue(written[rx] - before[rx] >= 8 * MB, "8 MiB received: " + Arrays.toString(written));
        ok("vdi", "read", "stat", "0", "8M");
        long[] read8 = clientStat();
        assertEquals(written[write], read8[write], "reading writes nothing");
        assertTrue(read8[read] - written[read] >= 2, "two data objects read: " + Arrays.toString(read8));
        assertTrue(read8[tx] - written[tx] >= 8 * MB, "8 MiB sent: " + Arrays.toString(read8));
        assertEquals(0, read8[0], "nothing in flight");
    }

    @Test
    void checkResizeObjectLocation() {
        ok("vdi", "create", "chk", "12M");
        ok_in(random(6 * MB, 3), "vdi", "write", "chk");
        assertEquals("finish check&repair chk\n", ok("vdi", "check", "chk").out());
        assertEquals("chk is fine, no object is missing.\n", ok("vdi", "check", "-e", "chk").out());
        String loc = ok("vdi", "object", "location", "chk", "-i", "1").out();
        assertTrue(loc.matches("Looking for the object 00[0-9a-f]{6}00000001 \\(vid 0x[0-9a-f]+ idx 1, 1 copies\\) with 1 nodes\n\n"
                + "127\\.0\\.0\\.1:" + sheep.port + " has the object\n\nAccording to sheepdog algorithm, the object should be located at:\n"
                + "127\\.0\\.0\\.1:" + sheep.port + "\n"), loc);
        DogRun unalloc = dog("vdi", "object", "location", "chk", "-i", "2");
        assertEquals(1, unalloc.code());
        assertTrue(unalloc.err().matches("The inode object 0x[0-9a-f]+ idx 2 is not allocated\n"), unalloc.err());

        DogRun shrink = dog("vdi", "resize", "chk", "4M");
        assertEquals(64, shrink.code());
        assertTrue(shrink.err().startsWith("Shrinking VDIs is not implemented\n"));
        ok("vdi", "resize", "chk", "100M");
        assertTrue(rowOf(ok("vdi", "list").out(), "chk").startsWith("  chk          0  100 MB  8.0 MB  0.0 MB "));
        assertArrayEquals(new byte[88 * MB], ok("vdi", "read", "chk", "12M").stdout());
    }

    @Test
    void vmListAndLocks() throws Exception {
        ok("vdi", "create", "vm1", "10M");
        ok("vdi", "create", "vm2", "20M");
        try (ConnectionPool pool = new ConnectionPool(1, 5000);
             Volume v = Volume.openWritable(new SheepClient(pool.peer("127.0.0.1", sheep.port)), "vm2", true)) {
            v.write(0, new byte[4096]);
            String out = ok("vm", "list").out();
            assertTrue(out.startsWith("Name            |Vdi size |Allocated| Shared  | Status\n"
                    + "----------------+---------+---------+---------+------------\n"), out);
            assertTrue(out.contains("\nvm1             |    10 MB|   0.0 MB|   0.0 MB| not running\n"), out);
            assertTrue(out.matches("(?s).*\nvm2             \\|    20 MB\\|   4\\.0 MB\\|   0\\.0 MB\\| running on [0-9.:a-f]+:\\d+\n.*"), out);
            String locks = ok("vdi", "lock", "list").out();
            assertTrue(locks.startsWith("  Name         Id  VDI id  Tag            Owner node(s)\n"), locks);
            assertTrue(locks.matches("(?s).*\n  vm2 +0 +[0-9a-f]+ +IPv4 ip:127\\.0\\.0\\.1 port:\\d+\n.*"), locks);
            // another client (another connection) is refused while the lock is held
            try (ConnectionPool other = new ConnectionPool(1, 5000)) {
                var e = assertThrows(io.sheepdog.client.SheepdogException.class,
                        () -> Volume.openWritable(new SheepClient(other.peer("127.0.0.1", sheep.port)), "vm2", true));
                assertEquals("VDI is already locked", e.getMessage());
            }
        }
        assertTrue(ok("vm", "list").out().contains("\nvm2             |    20 MB|   4.0 MB|   0.0 MB| not running\n"));
        DogRun notLocked = dog("vdi", "lock", "unlock", "vm1");
        assertEquals(1, notLocked.code());
        assertEquals("VDI vm1 is not locked\n", notLocked.err());
    }

    /** dog as its own process: exit codes, flushed stdout, one line on stderr, no stack traces. */
    @Test
    void asAProcess() throws Exception {
        ok("vdi", "create", "proc", "6M");
        byte[] d = random(5 * MB, 9);
        ok_in(d, "vdi", "write", "proc");
        Proc list = runDog(null, "node", "list", "-p", Integer.toString(sheep.port));
        assertEquals(0, list.code, list.err);
        assertEquals(ok("node", "list").out(), new String(list.out));
        Proc read = runDog(null, "vdi", "read", "proc", "0", "5M", "-p", Integer.toString(sheep.port));
        assertEquals(0, read.code, read.err);
        assertArrayEquals(d, read.out);
        Proc write = runDog(random(MB, 10), "vdi", "write", "proc", "1M", "-p", Integer.toString(sheep.port));
        assertEquals(0, write.code, write.err);
        assertArrayEquals(random(MB, 10), ok("vdi", "read", "proc", "1M", "1M").stdout());

        int dead = RealSheep.freePort();
        Proc refused = runDog(null, "vdi", "list", "-p", Integer.toString(dead));
        assertEquals(2, refused.code);
        assertEquals("failed to connect to 127.0.0.1:" + dead + ": Connection refused\n", refused.err);
        Proc usage = runDog(null, "vdi", "create", "-p", Integer.toString(sheep.port), "x");
        assertEquals(64, usage.code);
        assertTrue(usage.err.startsWith("Please specify the VDI size\n"), usage.err);
        assertTrue(new String(usage.out).startsWith("Usage: dog vdi create "));
    }

    record Proc(int code, byte[] out, String err) { }

    static Proc runDog(byte[] stdin, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp",
                System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), "io.sheepdog.dog.DogMain"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).start();
        try {
            Thread feeder = Thread.ofVirtual().start(() -> {
                try (var in = p.getOutputStream()) {
                    if (stdin != null) in.write(stdin);
                } catch (IOException ignored) {
                    // dog stopped reading
                }
            });
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            Thread errReader = Thread.ofVirtual().start(() -> {
                try (InputStream e = p.getErrorStream()) {
                    e.transferTo(err);
                } catch (IOException ignored) {
                    // process gone
                }
            });
            byte[] out = p.getInputStream().readAllBytes();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "dog did not finish");
            feeder.join();
            errReader.join();
            return new Proc(p.exitValue(), out, err.toString());
        } finally {
            p.destroyForcibly();
        }
    }
}
