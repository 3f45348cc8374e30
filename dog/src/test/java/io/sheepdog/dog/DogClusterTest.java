package io.sheepdog.dog;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Oids;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * dog against a three-node cluster of real sheep processes (zones 0, 1, 2; three copies): placement as dog computes
 * it matches where the daemons put the objects, and {@code vdi check} finds and repairs missing and corrupted
 * replicas in the stores.
 */
class DogClusterTest {
    static final int MB = 1 << 20;

    @TempDir
    static Path root;
    static List<RealSheep> nodes = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        Path cluster = Files.createDirectories(root.resolve("cluster"));
        for (int z = 0; z < 3; z++) nodes.add(RealSheep.start(root, cluster, z));
        waitForNodes(3);
        DogRun r = dog("cluster", "format", "-c", "3");
        assertEquals(0, r.code(), r.toString());
        nodes.sort(Comparator.comparingInt(n -> n.port)); // node-list order: same address, ascending port
    }

    @AfterAll
    static void stop() {
        for (RealSheep s : nodes) s.close();
    }

    static DogRun dog(String... args) { return DogRun.run(nodes.get(0).port, args); }

    static void waitForNodes(int n) throws InterruptedException {
        for (int i = 0; i < 300; i++) {
            DogRun r = DogRun.run(nodes.get(0).port, "node", "list", "-r");
            if (r.code() == 0 && r.out().split("\n").length == n) return;
            Thread.sleep(200);
        }
        fail("the cluster did not reach " + n + " nodes: " + DogRun.run(nodes.get(0).port, "node", "list"));
    }

    static Path objectFile(RealSheep s, long oid) { return s.store.resolve("obj").resolve(Oids.fileName(oid)); }

    @Test
    void placementCheckAndRepair() throws Exception {
        DogRun list = dog("node", "list");
        StringBuilder expect = new StringBuilder("  Id   Host:Port         V-Nodes       Zone\n");
        for (int i = 0; i < 3; i++) {
            RealSheep s = nodes.get(i);
            expect.append(Fmt.right(Integer.toString(i), 4)).append("   ").append(Fmt.left("127.0.0.1:" + s.port, 20)).append("\t128")
                    .append(Fmt.right(Integer.toString(zoneOf(s)), 11)).append('\n');
        }
        assertEquals(expect.toString(), list.out());

        assertEquals(0, dog("vdi", "create", "rep", "8M", "-v").code());
        byte[] data = new byte[8 * MB];
        new Random(5).nextBytes(data);
        DogRun w = DogRun.run(nodes.get(1).port, data, "vdi", "write", "rep"); // through another gateway
        assertEquals(0, w.code(), w.toString());

        String loc = dog("vdi", "object", "location", "rep", "-i", "1").out();
        String header = loc.substring(0, loc.indexOf('\n'));
        long oid = Long.parseUnsignedLong(header.substring("Looking for the object ".length(), "Looking for the object ".length() + 16), 16);
        assertEquals(1, Oids.index(oid));
        for (RealSheep s : nodes) {
            assertTrue(loc.contains("127.0.0.1:" + s.port + " has the object\n"), loc);
            assertTrue(Files.exists(objectFile(s, oid)), "object file on node " + s.port);
        }
        assertTrue(loc.endsWith("\nAccording to sheepdog algorithm, the object should be located at:\n"
                + String.join(" ", loc.substring(loc.indexOf("located at:\n") + 12).trim().split(" ")) + "\n"), loc);
        assertEquals(3, loc.substring(loc.indexOf("located at:\n") + 12).trim().split(" ").length);

        // one replica lost: -e reports it, check repairs it
        RealSheep victim = nodes.get(1);
        Files.delete(objectFile(victim, oid));
        DogRun e = dog("vdi", "check", "-e", "rep");
        assertEquals(1, e.code(), e.toString());
        assertEquals("[127.0.0.1:" + victim.port + "] oid " + Fmt.oid(oid) + " is missing.\nrep lost 1 object(s).\n", e.out());
        DogRun fix = dog("vdi", "check", "rep");
        assertEquals(0, fix.code(), fix.toString());
        assertEquals("fixed missing " + Fmt.oid(oid) + "\nfinish check&repair rep\n", fix.out());
        assertArrayEquals(Arrays.copyOfRange(data, 4 * MB, 8 * MB), Files.readAllBytes(objectFile(victim, oid)));
        assertEquals("rep is fine, no object is missing.\n", dog("vdi", "check", "-e", "rep").out());

        // one replica corrupted: the majority wins
        RealSheep bad = nodes.get(2);
        byte[] spoiled = Files.readAllBytes(objectFile(bad, oid));
        spoiled[12345] ^= 0x5a;
        Files.write(objectFile(bad, oid), spoiled);
        DogRun fix2 = dog("vdi", "check", "rep");
        assertEquals("fixed replica " + Fmt.oid(oid) + "\nfinish check&repair rep\n", fix2.out(), fix2.toString());
        assertArrayEquals(Arrays.copyOfRange(data, 4 * MB, 8 * MB), Files.readAllBytes(objectFile(bad, oid)));
        assertEquals("finish check&repair rep\n", dog("vdi", "check", "rep").out());

        String info = dog("cluster", "info").out();
        assertTrue(info.contains(" [127.0.0.1:" + nodes.get(0).port + ":128, 127.0.0.1:" + nodes.get(1).port + ":128, 127.0.0.1:"
                + nodes.get(2).port + ":128]\n"), info);
        assertArrayEquals(data, DogRun.run(nodes.get(2).port, "vdi", "read", "rep").stdout());

        // node kill by index in node-list order: that daemon exits and the others see it leave
        DogRun bogus = dog("node", "kill", "7");
        assertEquals(64, bogus.code());
        assertTrue(bogus.err().startsWith("Invalid node id '7'\n"), bogus.err());
        assertEquals(0, dog("node", "kill", "2").code());
        RealSheep killed = nodes.get(2);
        for (int i = 0; i < 150 && killed.isAlive(); i++) Thread.sleep(200);
        assertFalse(killed.isAlive(), "node 2 exited after KILL_NODE");
        waitForNodes(2);
        assertArrayEquals(data, dog("vdi", "read", "rep").stdout(), "the data is still readable from two copies");
    }

    private static int zoneOf(RealSheep s) {
        String dir = s.store.getFileName().toString(); // storeN was started with -z N
        return Integer.parseInt(dir.substring("store".length()));
    }
}
