package io.sheepdog.dog;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.client.ModelSheep;
import io.sheepdog.client.SheepClient;
import io.sheepdog.proto.NodeId;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * dog's command line, output and exit codes against the in-memory protocol model (the end-to-end tests against a
 * real sheep are in DogEndToEndTest).
 */
class DogModelTest {
    static final int MB = 1 << 20;
    ModelSheep sheep;
    int port;

    @BeforeEach
    void setUp() throws Exception {
        sheep = new ModelSheep();
        port = sheep.port();
    }

    @AfterEach
    void tearDown() throws Exception {
        sheep.close();
    }

    DogRun dog(String... args) { return DogRun.run(port, args); }

    DogRun dogIn(byte[] in, String... args) { return DogRun.run(port, in, args); }

    @Test
    void helpAndUsageErrors() {
        DogRun r = dog();
        assertEquals(0, r.code());
        assertTrue(r.out().startsWith("Sheepdog administrator utility (version "), r.out());
        assertTrue(r.out().contains("\n  vdi create              create an image\n"), r.out());
        assertTrue(r.out().contains("\n  vm list                 list VDIs in use and the clients using them\n"));

        r = dog("frob");
        assertEquals(64, r.code());
        assertEquals("Invalid command 'frob'\nTry 'dog --help' for more information.\n", r.err());

        r = dog("vdi", "frob");
        assertEquals(64, r.code());
        assertTrue(r.err().startsWith("Invalid command 'vdi frob'\nAvailable vdi commands:\n  vdi check\n  vdi create\n"), r.err());

        r = dog("vdi", "create", "-h");
        assertEquals(0, r.code());
        assertTrue(r.out().startsWith("Usage: dog vdi create [-P] [-y] [-c copies] [-a address] [-p port] [-h] [-r] [-v] "
                + "[-z block_size_shift] [-T] <vdiname> <size>\nOptions:\n  -P, --prealloc          "), r.out());

        r = dog("vdi", "object", "--help");
        assertTrue(r.out().startsWith("Usage: dog vdi object {location|map|dump-inode} [-i index] [-s snapshot] [-a address] "
                + "[-p port] [-h] [-T] <vdiname>\nAvailable subcommands:\n  location                show object location information\n"), r.out());

        r = dog("node", "list", "-x");
        assertEquals(64, r.code());
        assertEquals("dog: invalid option -- 'x'\nTry 'dog --help' for more information.\n", r.err());

        r = dog("node", "list", "--bogus");
        assertEquals(64, r.code());
        assertEquals("dog: unrecognized option '--bogus'\nTry 'dog --help' for more information.\n", r.err());

        r = dog("node", "list", "-p");
        assertEquals(64, r.code());
        assertEquals("dog: option requires an argument -- 'p'\nTry 'dog --help' for more information.\n", r.err());

        r = dog("node", "list", "-p", "70000");
        assertEquals(64, r.code());
        assertEquals("Invalid port number '70000'\n", r.err());

        r = dog("node", "list", "-a", "no.such.host.invalid");
        assertEquals(1, r.code());
        assertEquals("Invalid ip address no.such.host.invalid\n", r.err());
    }

    @Test
    void connectionRefusedIsOneLineAndExit2() throws Exception {
        int dead;
        try (ServerSocket s = new ServerSocket(0)) { dead = s.getLocalPort(); }
        DogRun r = DogRun.run(dead, "node", "list");
        assertEquals(2, r.code());
        assertEquals("failed to connect to 127.0.0.1:" + dead + ": Connection refused\n", r.err());
        assertEquals("", r.out());
        r = DogRun.runEnv(Map.of(), new byte[0], "vdi", "list", "-p", Integer.toString(dead), "-a", "127.0.0.1");
        assertEquals(2, r.code());
    }

    @Test
    void formatListAndInfo() {
        DogRun r = dog("cluster", "format", "-c", "1");
        assertEquals(0, r.code(), r.toString());
        assertEquals("using backend plain store\n", r.out());

        r = dog("cluster", "format", "-b", "nosuch", "-f");
        assertEquals(2, r.code());
        assertEquals("Format failed: Targeted backend store is not found\n", r.err());
        assertEquals("using backend nosuch store\nAvailable stores:\n---------------------------------------\ntree plain \n", r.out());

        r = dog("node", "list");
        assertEquals(0, r.code());
        assertEquals("  Id   Host:Port         V-Nodes       Zone\n"
                + "   0   " + Fmt.left("127.0.0.1:" + port, 20) + "\t128          0\n", r.out());
        r = dog("node", "list", "-r");
        assertEquals("0 127.0.0.1:" + port + " 128 0\n", r.out());

        r = dog("cluster", "info");
        assertEquals(0, r.code(), r.toString());
        String[] lines = r.out().split("\n", -1);
        assertEquals("Cluster status: running, auto-recovery enabled", lines[0]);
        assertEquals("", lines[1]);
        assertTrue(lines[2].startsWith("Cluster created at "), lines[2]);
        assertEquals("", lines[3]);
        assertEquals("Epoch Time           Version [Host:Port:V-Nodes,,,]", lines[4]);
        assertTrue(lines[5].matches("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d      1 \\[127.0.0.1:" + port + ":128\\]"), lines[5]);

        r = dog("cluster", "info", "-v", "-r");
        assertTrue(r.out().startsWith("running, auto-recovery enabled\nplain with 1 redundancy policy\nauto\nnode\n"), r.out());

        r = dog("node", "info");
        assertEquals(0, r.code(), r.toString());
        assertEquals("Id\tSize\tUsed\tAvail\tUse%\n 0\t100 GB\t40 GB\t60 GB\t 40%\nTotal\t100 GB\t40 GB\t60 GB\t 40%\n\n"
                + "Total virtual image size\t0.0 MB\n", r.out());
    }

    @Test
    void vdiLifecycle() throws Exception {
        assertEquals(0, dog("cluster", "format", "-c", "1").code());
        DogRun r = dog("vdi", "create", "test", "12M", "-v");
        assertEquals(0, r.code(), r.toString());
        assertEquals("VDI ID of newly created VDI: 7c2b25\n", r.out());

        r = dog("vdi", "create", "test", "12M");
        assertEquals(1, r.code());
        assertEquals("Failed to create VDI test: VDI exists already\n", r.err());

        r = dog("vdi", "create", "x", "12Q");
        assertEquals(64, r.code());
        assertTrue(r.err().startsWith("Invalid size '12Q'\n"), r.err());
        assertTrue(r.out().startsWith("Usage: dog vdi create"), "usage follows a usage error");

        byte[] data = new byte[5 * MB + 100];
        new Random(1).nextBytes(data);
        r = dogIn(data, "vdi", "write", "test", "1000");
        assertEquals(0, r.code(), r.toString());
        r = dog("vdi", "read", "test", "1000", Integer.toString(data.length));
        assertEquals(0, r.code(), r.err());
        assertArrayEquals(data, r.stdout());
        r = dog("vdi", "read", "test");
        assertEquals(12 * MB, r.stdout().length);
        assertArrayEquals(new byte[1000], Arrays.copyOf(r.stdout(), 1000));

        // short stdin: exactly the bytes given are written, nothing after them changes
        r = dogIn("hello".getBytes(), "vdi", "write", "test", "0", "512");
        assertEquals(0, r.code());
        byte[] head = dog("vdi", "read", "test", "0", "1010").stdout();
        assertEquals("hello", new String(head, 0, 5));
        assertArrayEquals(new byte[995], Arrays.copyOfRange(head, 5, 1000));
        assertArrayEquals(Arrays.copyOf(data, 10), Arrays.copyOfRange(head, 1000, 1010));

        r = dog("vdi", "read", "test", "13M");
        assertEquals(1, r.code());
        assertEquals("Read offset is beyond the end of the VDI\n", r.err());

        r = dog("vdi", "snapshot", "-s", "snap1", "test");
        assertEquals(0, r.code(), r.toString());
        r = dog("vdi", "snapshot", "-s", "snap1", "test");
        assertEquals(1, r.code());
        assertEquals("Failed to create snapshot for test, maybe snapshot id (0) or tag (snap1) is existed\n", r.err());

        r = dog("vdi", "list");
        assertEquals(0, r.code(), r.toString());
        String[] l = r.out().split("\n");
        assertEquals("  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift", l[0]);
        assertTrue(l[1].matches("s test         1   12 MB  8\\.0 MB  0\\.0 MB \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d   7c2b25      1         snap1  22"), l[1]);
        assertTrue(l[2].matches("  test         0   12 MB  0\\.0 MB  8\\.0 MB \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d   7c2b26      1                22"), l[2]);
        r = dog("vdi", "list", "-r");
        assertTrue(r.out().matches("s test 1 12582912 8388608 0 \\d+ 7c2b25 1 snap1 22\n= test 0 12582912 0 8388608 \\d+ 7c2b26 1  22\n"), r.out());

        r = dog("vdi", "tree");
        assertTrue(r.out().matches("test---\\[\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\]---\\(you are here\\)\n"), r.out());

        // reading the snapshot gives the old data after the working VDI changed
        assertEquals(0, dogIn(new byte[] {9, 9, 9}, "vdi", "write", "test", "0").code());
        assertEquals("hel", new String(dog("vdi", "read", "-s", "snap1", "test", "0", "3").stdout()));
        assertArrayEquals(new byte[] {9, 9, 9}, dog("vdi", "read", "test", "0", "3").stdout());

        r = dog("vdi", "read", "-s", "nope", "test");
        assertEquals(1, r.code());
        assertEquals("Failed to open VDI test (snapshot id: 0 snapshot tag: nope): Failed to find requested tag\n", r.err());
        r = dog("vdi", "read", "-s", "0", "test");
        assertEquals(1, r.code());
        assertEquals("The snapshot id must be larger than zero\n", r.err());

        r = dog("vdi", "resize", "test", "1M");
        assertEquals(64, r.code());
        assertTrue(r.err().startsWith("Shrinking VDIs is not implemented\n"));
        assertEquals(0, dog("vdi", "resize", "test", "20M").code());
        assertTrue(dog("vdi", "list", "test").out().contains("   20 MB "));

        r = dog("vdi", "object", "map", "test");
        assertEquals("Index       VID\n00000000   7c2b26\n00000001   7c2b25\n", r.out());

        r = dog("vdi", "delete", "test");
        assertEquals(0, r.code(), r.toString());
        r = dog("vdi", "delete", "test");
        assertEquals(1, r.code());
        assertEquals("Failed to open VDI test (snapshot id: 0 snapshot tag: ): No VDI found\n", r.err());
    }

    @Test
    void vmListShowsWhoHoldsAVdi() throws Exception {
        assertEquals(0, dog("cluster", "format", "-c", "1").code());
        assertEquals(0, dog("vdi", "create", "alpha", "1G").code());
        assertEquals(0, dog("vdi", "create", "beta", "100M").code());
        assertEquals(0, dogIn(new byte[4096], "vdi", "write", "beta", "0").code());
        sheep.vmList.add(new SheepClient.VmEntry("beta", NodeId.addrBytes("10.0.0.7"), 53211));
        DogRun r = dog("vm", "list");
        assertEquals(0, r.code(), r.toString());
        assertEquals("Name            |Vdi size |Allocated| Shared  | Status\n"
                + "----------------+---------+---------+---------+------------\n"
                + "beta            |   100 MB|   4.0 MB|   0.0 MB| running on 10.0.0.7:53211\n"
                + "alpha           |   1.0 GB|   0.0 MB|   0.0 MB| not running\n", r.out()); // VID order: beta hashes lower
    }

    @Test
    void backupAndRestoreStreams() throws Exception {
        assertEquals(0, dog("cluster", "format", "-c", "1").code());
        assertEquals(0, dog("vdi", "create", "test", "12M").code());
        assertEquals(0, dogIn("0\n".getBytes(), "vdi", "write", "test", "0", "512").code());
        assertEquals(0, dog("vdi", "snapshot", "test", "-s", "snap1").code());
        assertEquals(0, dogIn("1\n".getBytes(), "vdi", "write", "test", "4194304", "512").code());
        assertEquals(0, dog("vdi", "snapshot", "test", "-s", "snap2").code());
        byte[] snap2 = dog("vdi", "read", "test", "-s", "snap2").stdout();

        DogRun b = dog("vdi", "backup", "test", "-F", "snap1", "-s", "snap2");
        assertEquals(0, b.code(), b.toString());
        ByteBuffer s = ByteBuffer.wrap(b.stdout()).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, s.getInt(0));
        assertEquals(0x11921192, s.getInt(4));
        assertEquals(1, s.getInt(8), "object 1 differs");
        assertEquals(0, s.getInt(12));
        assertEquals(512, s.getInt(16), "trimmed to the one differing sector");
        assertEquals(8 + 16 + 512 + 16, b.stdout().length);
        assertEquals(-1, s.getInt(8 + 16 + 512));

        // garbage and truncated input change nothing
        String before = dog("vdi", "list", "-r").out();
        DogRun bad = dogIn("not a backup at all".getBytes(), "vdi", "restore", "-s", "snap1", "test");
        assertEquals(1, bad.code());
        assertEquals("The input is not a VDI backup\n", bad.err());
        DogRun cut = dogIn(Arrays.copyOf(b.stdout(), 100), "vdi", "restore", "-s", "snap1", "test");
        assertEquals(1, cut.code());
        assertEquals("The VDI backup is truncated\n", cut.err());
        assertEquals(before, dog("vdi", "list", "-r").out());

        DogRun ok = dogIn(b.stdout(), "vdi", "restore", "-s", "snap1", "test");
        assertEquals(0, ok.code(), ok.toString());
        // the restored state became snapshot 3 with snap2's content
        assertArrayEquals(snap2, dog("vdi", "read", "test", "-s", "3").stdout());
        String list = dog("vdi", "list").out();
        assertEquals(5, list.split("\n").length, list);
    }

    @Test
    void promptsTimingPreallocAndReduceIdentical() throws Exception {
        assertEquals(0, dog("cluster", "format", "-c", "1").code());
        DogRun t = dog("node", "list", "-T");
        assertTrue(t.out().matches("(?s).*\n\nElapsed time: \\d+\\.\\d{3} seconds\n"), t.out());

        DogRun p = dog("vdi", "create", "pre", "10M", "-P");
        assertEquals(0, p.code(), p.toString());
        assertTrue(dog("vdi", "list", "pre").out().contains("   10 MB   12 MB  0.0 MB "), "all three objects allocated");

        // -R: no snapshot while the working VDI owns no objects of its own
        assertEquals(0, dog("vdi", "create", "r", "8M").code());
        assertEquals(0, dog("vdi", "snapshot", "-R", "r").code());
        assertEquals(2, dog("vdi", "list").out().split("\n").length - 1, "no snapshot was taken");
        assertEquals(0, dogIn(new byte[] {1}, "vdi", "write", "r", "0").code());
        DogRun snap = dog("vdi", "snapshot", "-R", "-v", "r");
        assertEquals(0, snap.code());
        assertTrue(snap.out().matches("new VID of original VDI: [0-9a-f]+, VDI ID of newly created snapshot: [0-9a-f]+\n"), snap.out());
        DogRun num = dog("vdi", "snapshot", "-s", "12", "r");
        assertEquals(64, num.code());
        assertTrue(num.err().startsWith("Please specify a non-integer value for a snapshot tag name\n"));

        // formatting a cluster that holds VDIs asks first; anything but "yes" (end of input too) stops with status 1
        DogRun eof = dogIn(new byte[0], "cluster", "format", "-c", "1");
        assertEquals(1, eof.code(), eof.toString());
        assertTrue(eof.err().contains("No answer: nothing was done"), eof.err());
        DogRun no = dogIn("no\n".getBytes(), "cluster", "format", "-c", "1");
        assertEquals(1, no.code());
        assertTrue(no.err().contains("Not confirmed: nothing was done"), no.err());
        assertTrue(no.out().endsWith("(/_)_|_  Are you sure you want to continue? [yes/no]: "), no.out());
        assertTrue(no.out().contains("  /  |   Caution! The cluster is not empty.\n"));
        assertFalse(no.out().contains("using backend"), "not formatted");
        assertEquals(4, dog("vdi", "list").out().split("\n").length, "the VDIs are still there");
        DogRun yes = dogIn("yes\n".getBytes(), "cluster", "format", "-c", "1");
        assertEquals(0, yes.code());
        assertTrue(yes.out().endsWith("[yes/no]: using backend plain store\n"), yes.out());
        assertEquals(1, dog("vdi", "list").out().split("\n").length, "an empty cluster after the format");
    }

    @Test
    void snapshotTagsMustFitTheirField() {
        assertEquals(0, dog("cluster", "format", "-c", "1").code());
        assertEquals(0, dog("vdi", "create", "t", "4M").code());
        // 255 bytes and a NUL fill the 256-byte tag field; one more byte would have been cut off silently
        String longest = "a".repeat(255);
        DogRun r = dog("vdi", "snapshot", "-s", longest, "t");
        assertEquals(0, r.code(), r.toString());
        assertTrue(dog("vdi", "list", "-r", "t").out().contains(" " + longest + " "));
        for (String[] args : new String[][] {{"vdi", "snapshot", "-s", "b".repeat(256), "t"}, {"vdi", "read", "-s", "c".repeat(300), "t"},
                {"vdi", "backup", "-F", "d".repeat(256), "-s", "1", "t"}}) {
            String before = dog("vdi", "list", "-r").out();
            r = dog(args);
            assertEquals(64, r.code(), r.toString());
            assertEquals("Snapshot tag is too long (at most 255 bytes)\n", r.err());
            assertEquals(before, dog("vdi", "list", "-r").out());
        }
    }
}
