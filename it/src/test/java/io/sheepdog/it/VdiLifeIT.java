package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.client.ConnectionPool;
import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.client.Volume;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The life of a VM's disk on a three-node cluster (copies = 2), driven through the real bin/dog: snapshots, clones,
 * copy-on-write, rollback, incremental backup and restore, locks, deletions in every order with the space
 * accounting of {@code vdi list} and the object files on disk, attributes across a restart of every node, bad input,
 * and the progress bar on a terminal. The client library is used where a test needs what dog cannot do (raw object
 * writes into a snapshot, a writer that holds a lock, a connection that drops) or to read whole images quickly.
 */
@ExtendWith(MiniClusterExtension.class)
class VdiLifeIT {
    private static final int MiB = 1 << 20;
    private static final int OBJ = 4 * MiB;
    private static final int COPIES = 2;

    // ------------------------------------------------------------------ a VM's life

    @Test
    void snapshotCloneCopyOnWriteRollbackBackupRestoreLocksAndBadInput() throws Exception {
        Tools.require("script");
        try (MiniCluster c = MiniCluster.builder().name("vdilife").nodes(3).copies(COPIES).nbd(false).build().start();
             ConnectionPool pool = new ConnectionPool(2, 5000)) {
            SheepClient client = new SheepClient(pool.peer("127.0.0.1", c.node(1).port()));
            ok(c, "vdi", "create", "vm", "32M");

            // 1. a pattern over objects 0..4, written by dog on a terminal: the progress bar is drawn there
            byte[] p1 = random(20 * MiB, 1);
            Path p1File = c.dir().resolve("p1");
            Files.write(p1File, p1);
            String bar = underTerminal(c, dog(c, 0, "vdi", "write", "vm", "0", "20M") + " < " + p1File + " > /dev/null");
            assertProgressBar(bar, "20 MB");
            byte[] s1Image = Arrays.copyOf(p1, 32 * MiB);
            byte[] vmImage = s1Image.clone();

            // 2. snapshot, then write more: objects 2 and 3 are overwritten (copy-on-write), object 7 is new
            ok(c, "vdi", "snapshot", "-s", "s1", "vm");
            byte[] p2 = random(8 * MiB, 2);
            long[][][] statBefore = nodeStats(c);
            long[][][] stagesBefore = writeStages(c);
            CommandResult plain = write(c, 1, "vm", 8 * MiB, p2);
            assertEquals("", plain.stderr(), "no progress bar when stderr is not a terminal");
            assertWritesCountedOnceAtTheGatewayAndPerCopyAtThePeers(statBefore, nodeStats(c), 1, 8 * MiB);
            assertWriteStagesSplitAtTheGateway(stagesBefore, writeStages(c), 1);
            byte[] p2b = random(4096, 3);
            write(c, 2, "vm", 30 * MiB, p2b);
            put(vmImage, 8 * MiB, p2);
            put(vmImage, 30 * MiB, p2b);

            // 3. a clone of the snapshot sees the snapshot's bytes, the VDI its own
            ok(c, "vdi", "clone", "-s", "s1", "vm", "cl");
            assertArrayEquals(s1Image, read(c, 1, "cl"), "the clone reads the snapshot's bytes");
            assertArrayEquals(vmImage, read(c, 2, "vm"), "the VDI reads its own writes");
            assertArrayEquals(s1Image, read(c, 0, "vm", "-s", "s1"), "the snapshot is unchanged");

            Map<String, Row> rows = listRows(c);
            Row s1 = rows.get("vm@1"), vm = rows.get("vm@0"), cl = rows.get("cl@0");
            assertEquals('s', s1.type());
            assertEquals('c', cl.type());
            assertEquals('=', vm.type());
            assertEquals(new Usage(5L * OBJ, 0), s1.usage(), "the snapshot owns objects 0..4");
            assertEquals(new Usage(3L * OBJ, 3L * OBJ), vm.usage(), "vm owns 2, 3, 7 and shares 0, 1, 4");
            assertEquals(new Usage(0, 5L * OBJ), cl.usage(), "the clone shares everything");
            String human = c.dog("vdi", "list").assertOk().stdout();
            assertTrue(human.contains("\ns vm           1   32 MB   20 MB  0.0 MB "), human);
            assertTrue(human.contains("\n  vm           0   32 MB   12 MB   12 MB "), human);
            assertTrue(human.contains("\nc cl           0   32 MB  0.0 MB   20 MB "), human);

            // 4. writes to the clone never show in the VDI or the snapshot, and the other way round
            byte[] p3 = random(MiB, 4);
            write(c, 0, "cl", 0, p3);
            byte[] clImage = s1Image.clone();
            put(clImage, 0, p3);
            byte[] p4 = random(MiB, 5);
            write(c, 1, "vm", 16 * MiB, p4);
            put(vmImage, 16 * MiB, p4);
            assertArrayEquals(clImage, read(c, 2, "cl"));
            assertArrayEquals(vmImage, read(c, 0, "vm"));
            assertArrayEquals(s1Image, read(c, 1, "vm", "-s", "s1"));
            // each made its own copy of the object it wrote; the snapshot's originals are all still there
            Map<Long, Integer> objs = dataObjects(c);
            for (int i = 0; i <= 4; i++) assertEquals(COPIES, replicas(objs, s1.vid(), i), "snapshot object " + i);
            for (int i : new int[] {2, 3, 4, 7}) assertEquals(COPIES, replicas(objs, vm.vid(), i), "vm object " + i);
            assertEquals(COPIES, replicas(objs, cl.vid(), 0), "clone object 0");
            assertEquals(10, objs.size(), "no other data objects: " + objs);
            // check walks the objects the clone reads, its own and the snapshot's: all there, every copy the same
            assertEquals("cl is fine, no object is missing.\n", c.dogAt(c.node(2), null, "vdi", "check", "-e", "cl").assertOk().stdout());
            assertEquals("finish check&repair cl\n", c.dogAt(c.node(1), null, "vdi", "check", "cl").assertOk().stdout());

            // 5. a snapshot is read-only: writing into its objects (existing or new) is refused with READONLY
            byte[] junk = random(4096, 6);
            SheepdogException ro = assertThrows(SheepdogException.class,
                    () -> client.writeObj(Oids.dataOid(s1.vid(), 0), 0, junk));
            assertEquals(SdResult.READONLY, ro.result());
            ro = assertThrows(SheepdogException.class,
                    () -> client.createAndWriteObj(Oids.dataOid(s1.vid(), 6), 0, 0, junk, COPIES, 0));
            assertEquals(SdResult.READONLY, ro.result());
            assertArrayEquals(s1Image, read(c, 2, "vm", "-s", "s1"));
            assertFalse(dataObjects(c).containsKey(Oids.dataOid(s1.vid(), 6)));

            // 6. incremental backup of s1 -> s2, restored onto a copy of s1: identical bytes to s2
            ok(c, "vdi", "snapshot", "-s", "s2", "vm");
            Path backup = c.dir().resolve("s1-s2.backup");
            bar = underTerminal(c, dog(c, 1, "vdi", "backup", "-F", "s1", "-s", "s2", "vm") + " > " + backup);
            assertProgressBar(bar, "8/8");
            long size = Files.size(backup);
            // only what changed: objects 2, 3 and 4 partly or wholly, and the 4 KiB in object 7 (plus headers)
            assertTrue(size >= p2.length + p4.length + p2b.length && size < p2.length + p4.length + p2b.length + 4096,
                    "backup holds only the difference: " + size + " bytes");
            ok(c, "vdi", "clone", "-n", "-s", "s1", "vm", "copy");
            ok(c, "vdi", "snapshot", "-s", "base", "copy");
            bar = underTerminal(c, dog(c, 2, "vdi", "restore", "-s", "base", "copy") + " < " + backup + " > /dev/null");
            assertProgressBar(bar, "4/4");
            assertArrayEquals(vmImage, read(c, 0, "copy", "-s", "2"), "s1 + backup(s1 -> s2) = s2");
            assertArrayEquals(vmImage, read(c, 1, "vm", "-s", "s2"));

            // 7. rollback to s1 restores the snapshot's bytes; s2 stays as it was; what the discarded state wrote
            // after s2 is freed
            write(c, 0, "vm", 20 * MiB, random(MiB, 7));
            int discarded = listRows(c).get("vm@0").vid();
            assertEquals(COPIES, replicas(dataObjects(c), discarded, 5));
            ok(c, "vdi", "rollback", "-f", "-s", "s1", "vm");
            assertFalse(dataObjects(c).containsKey(Oids.dataOid(discarded, 5)), "the discarded state's object is freed");
            assertArrayEquals(s1Image, read(c, 2, "vm"), "rolled back to s1");
            assertArrayEquals(vmImage, read(c, 0, "vm", "-s", "s2"));
            assertArrayEquals(clImage, read(c, 1, "cl"));
            // the tree: s1 has two children (s2 and the new working VDI); the restore left copy the same shape
            String d = "\\[\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\]";
            String tree = c.dog("vdi", "tree").assertOk().stdout();
            assertTrue(tree.matches("(?s)(.*\n)?vm---" + d + "-\\+-" + d + "\n {24}`-\\(you are here\\)\n.*"), tree);
            assertTrue(tree.matches("(?s)(.*\n)?copy---" + d + "-\\+-" + d + "\n {26}`-\\(you are here\\)\n.*"), tree);
            assertTrue(tree.matches("(?s)(.*\n)?cl---\\(you are here\\)\n.*"), tree);

            // 8. the progress bar on a terminal for read; nothing on stderr in a pipe
            Path out = c.dir().resolve("vm.read");
            bar = underTerminal(c, dog(c, 0, "vdi", "read", "vm") + " > " + out);
            assertProgressBar(bar, "32 MB");
            assertArrayEquals(s1Image, Files.readAllBytes(out));
            CommandResult piped = c.dog("vdi", "read", "vm", "0", "4M").assertOk();
            assertEquals("", piped.stderr());

            // 9. locks: a writer through node 1 holds vm; vm list through node 2 shows where it runs; a second
            // writer through node 0 is refused; the lock goes when the writer's connection drops
            locksFollowConnections(c);

            // 10. bad input: one line on stderr, a non-zero exit, nothing changed on the cluster
            badInputChangesNothing(c, backup);
        }
    }

    private void locksFollowConnections(MiniCluster c) throws Exception {
        String lockHeader = "  Name         Id  VDI id  Tag            Owner node(s)\n";
        SheepConnection holder = SheepConnection.open("127.0.0.1", c.node(1).port(), 5000);
        SheepConnection second = SheepConnection.open("127.0.0.1", c.node(0).port(), 5000);
        try {
            SheepClient.VdiId id = new SheepClient(holder).lockVdi("vm", 0, "", Proto.LOCK_TYPE_NORMAL);
            String vms = c.dogAt(c.node(2), null, "vm", "list").assertOk().stdout();
            assertTrue(vms.startsWith("Name            |Vdi size |Allocated| Shared  | Status\n"), vms);
            assertTrue(vms.matches("(?s).*\nvm              \\|    32 MB\\|   0\\.0 MB\\|    20 MB\\| running on 127\\.0\\.0\\.1:\\d+\n.*"), vms);
            assertTrue(vms.contains("\ncl              |    32 MB|   4.0 MB|    16 MB| not running\n"), vms);
            String locks = c.dogAt(c.node(0), null, "vdi", "lock", "list").assertOk().stdout();
            assertTrue(locks.matches(java.util.regex.Pattern.quote(lockHeader) + "  vm +0 +" + Integer.toHexString(id.vid()) + " +IPv4 ip:127\\.0\\.0\\.1 port:\\d+\n"), locks);
            SheepdogException e = assertThrows(SheepdogException.class,
                    () -> new SheepClient(second).lockVdi("vm", 0, "", Proto.LOCK_TYPE_NORMAL));
            assertEquals(SdResult.VDI_LOCKED, e.result());

            // an operator breaks the lock; the second writer then gets it, and the first one's connection
            // dropping later must not take it away from the second
            c.dogAt(c.node(2), null, "vdi", "lock", "unlock", "vm").assertOk();
            assertEquals(lockHeader, c.dog("vdi", "lock", "list").assertOk().stdout());
            new SheepClient(second).lockVdi("vm", 0, "", Proto.LOCK_TYPE_NORMAL);
            String held = c.dog("vdi", "lock", "list").assertOk().stdout();
            holder.close();
            SheepNode.sleep(1000); // the daemon sees the drop at once; give it time to (wrongly) act on it
            assertEquals(held, c.dog("vdi", "lock", "list").assertOk().stdout(), "the second writer still holds the lock");
        } finally {
            holder.close();
            second.close(); // dropped, not released: the daemon must notice by itself
        }
        c.waitUntil("the lock of a dropped connection is released", () ->
                c.dogAt(c.node(2), null, "vm", "list").assertOk().stdout().contains("\nvm              |    32 MB|   0.0 MB|    20 MB| not running\n"));
        assertEquals(lockHeader, c.dog("vdi", "lock", "list").assertOk().stdout());
        // and the next writer gets it
        try (SheepConnection next = SheepConnection.open("127.0.0.1", c.node(1).port(), 5000)) {
            SheepClient cl = new SheepClient(next);
            int vid = cl.lockVdi("vm", 0, "", Proto.LOCK_TYPE_NORMAL).vid();
            cl.releaseVdi(vid, Proto.LOCK_TYPE_NORMAL);
        }
        CommandResult notLocked = c.dog("vdi", "lock", "unlock", "vm");
        assertEquals(1, notLocked.exitCode(), notLocked.toString());
        assertEquals("VDI vm is not locked\n", notLocked.stderr());
    }

    private void badInputChangesNothing(MiniCluster c, Path backup) throws Exception {
        String before = c.dog("vdi", "list", "-r").assertOk().stdout();
        Map<Long, Integer> objsBefore = dataObjects(c);
        String longTag = "t".repeat(300);
        byte[] good = Files.readAllBytes(backup);
        byte[] notABackup = "#!/bin/sh\necho this is not a backup\n".getBytes(StandardCharsets.US_ASCII);

        record Bad(byte[] stdin, String expected, String... args) { }
        List<Bad> cases = List.of(
                new Bad(null, "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: ): No VDI found", "vdi", "snapshot", "nosuch"),
                new Bad(null, "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: s1): No VDI found", "vdi", "clone", "-s", "s1", "nosuch", "x"),
                new Bad(null, "Failed to create snapshot for vm, maybe snapshot id (0) or tag (s2) is existed", "vdi", "snapshot", "-s", "s2", "vm"),
                new Bad(null, "Failed to create VDI cl: VDI exists already", "vdi", "clone", "-s", "s1", "vm", "cl"),
                new Bad(null, "Failed to create VDI vm: VDI exists already", "vdi", "create", "vm", "1G"),
                new Bad(null, "Failed to open VDI vm (snapshot id: 0 snapshot tag: nosuch): Failed to find requested tag", "vdi", "clone", "-s", "nosuch", "vm", "x"),
                // a working VDI is no clone source: it has no snapshot to name
                new Bad(null, "Failed to open VDI cl (snapshot id: 1 snapshot tag: ): Failed to find requested tag", "vdi", "clone", "-s", "1", "cl", "x"),
                new Bad(null, "Failed to open VDI vm (snapshot id: 0 snapshot tag: nosuch): Failed to find requested tag", "vdi", "rollback", "-f", "-s", "nosuch", "vm"),
                new Bad(null, "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: s1): No VDI found", "vdi", "rollback", "-f", "-s", "s1", "nosuch"),
                new Bad(null, "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: ): No VDI found", "vdi", "delete", "nosuch"),
                new Bad(null, "Failed to open VDI vm (snapshot id: 0 snapshot tag: nosuch): Failed to find requested tag", "vdi", "delete", "-s", "nosuch", "vm"),
                new Bad(null, "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: ): No VDI found", "vdi", "resize", "nosuch", "1G"),
                new Bad(null, "Shrinking VDIs is not implemented", "vdi", "resize", "vm", "16M"),
                new Bad(null, "Failed to open VDI vm (snapshot id: 0 snapshot tag: nosuch): Failed to find requested tag", "vdi", "read", "-s", "nosuch", "vm"),
                new Bad(null, "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: ): No VDI found", "vdi", "check", "nosuch"),
                new Bad(null, "VDI not found", "vdi", "setattr", "nosuch", "key", "value"),
                new Bad(null, "Attribute 'nokey' not found", "vdi", "getattr", "vm", "nokey"),
                new Bad(null, "Failed to open VDI vm (snapshot id: 0 snapshot tag: nosuch): Failed to find requested tag", "vdi", "backup", "-F", "nosuch", "-s", "s2", "vm"),
                new Bad(null, "Snapshot tag is too long (at most 255 bytes)", "vdi", "snapshot", "-s", longTag, "vm"),
                new Bad(notABackup, "The input is not a VDI backup", "vdi", "restore", "-s", "s1", "vm"),
                new Bad(Arrays.copyOf(good, good.length - 16), "The VDI backup is truncated", "vdi", "restore", "-s", "s1", "vm"),
                new Bad(new byte[0], "The input is empty, not a VDI backup", "vdi", "restore", "-s", "s1", "vm"),
                new Bad(good, "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: s1): No VDI found\nSnapshot ID 0 or tag s1 doesn't exist", "vdi", "restore", "-s", "s1", "nosuch"));
        // none of them changes anything, so they may run side by side (a dog run is mostly JVM start-up)
        inParallel(cases.stream().map(b -> (Step) () -> {
            CommandResult r = c.dogAt(c.node(b.args().length % 3), b.stdin() == null ? new byte[0] : b.stdin(), b.args());
            String what = String.join(" ", b.args()) + " -> " + r;
            assertNotEquals(0, r.exitCode(), what);
            assertEquals(b.expected() + "\n", r.stderr(), what);
            assertFalse(r.stdout().contains("Exception"), what);
        }).toList());
        // "clone without -s": the original's two-line usage complaint (docs/dog.md §2.6), exit 64
        CommandResult noSnap = c.dog("vdi", "clone", "vm", "x");
        assertEquals(64, noSnap.exitCode(), noSnap.toString());
        assertEquals("Only snapshot VDIs can be cloned\nPlease specify the '-s' option\n", noSnap.stderr());

        assertEquals(before, c.dog("vdi", "list", "-r").assertOk().stdout(), "bad input changed the VDI list");
        assertEquals(objsBefore, dataObjects(c), "bad input changed the data objects");
    }

    // ------------------------------------------------------------------ deletions in every order

    /** The members of one family: the snapshot S, the working VDI W (child of S) and the clone C of S. */
    private enum Member { W, S, C }

    @Test
    void deletionsInEveryOrderFreeSpaceExactlyWhenTheLastUserGoes() throws Exception {
        List<List<Member>> orders = List.of(
                List.of(Member.W, Member.S, Member.C), List.of(Member.W, Member.C, Member.S),
                List.of(Member.S, Member.W, Member.C), List.of(Member.S, Member.C, Member.W),
                List.of(Member.C, Member.W, Member.S), List.of(Member.C, Member.S, Member.W));
        try (MiniCluster c = MiniCluster.builder().name("vdidel").nodes(3).copies(COPIES).nbd(false).build().start();
             ConnectionPool pool = new ConnectionPool(4, 5000)) {
            SheepClient client = new SheepClient(pool.peer("127.0.0.1", c.node(2).port()));
            List<Family> fams = new ArrayList<>();
            // the families share nothing, so each step runs for all of them side by side
            for (int f = 0; f < orders.size(); f++) fams.add(new Family("f" + f));
            inParallel(fams.stream().map(f -> (Step) () -> f.create(c, client)).toList());
            checkFamilies(c, client, fams);

            for (int step = 0; step < 3; step++) {
                List<Step> deletions = new ArrayList<>();
                for (int f = 0; f < fams.size(); f++) {
                    Family fam = fams.get(f);
                    Member m = orders.get(f).get(step);
                    SheepNode through = c.node((f + step) % 3);
                    deletions.add(() -> c.dogAt(through, null, fam.deleteArgs(m)).assertOk());
                    fam.live.remove(m);
                }
                inParallel(deletions);
                checkFamilies(c, client, fams);
            }
            assertTrue(c.dog("vdi", "list", "-r").assertOk().stdout().isEmpty());
            assertEquals(Map.of(), dataObjects(c), "every data object is gone with its last user");
        }
    }

    /**
     * One family, as after: create (16 MiB), write objects 0..2, snapshot S, write objects 1 and 3 of W (1 is a
     * copy-on-write of S's), clone C from S, write object 2 of C. Who reads which object:
     * S: S0 S1 S2; W: S0 W1 S2 W3; C: S0 S1 C2.
     */
    private static final class Family {
        final String name;
        final Map<Member, Integer> vid = new LinkedHashMap<>();
        final Map<Member, byte[]> image = new LinkedHashMap<>();
        final Set<Member> live = new HashSet<>(List.of(Member.W, Member.S, Member.C));

        Family(String name) { this.name = name; }

        void create(MiniCluster c, SheepClient client) throws IOException {
            Family f = this;
            long seed = name.hashCode();
            ok(c, "vdi", "create", name, "16M");
            byte[] s = Arrays.copyOf(random(3 * OBJ, seed * 10 + 1), 4 * OBJ);
            try (Volume v = Volume.openWritable(client, name, false)) {
                v.write(0, Arrays.copyOf(s, 3 * OBJ));
            }
            ok(c, "vdi", "snapshot", "-s", "snap", name);
            byte[] w = s.clone();
            byte[] w1 = random(MiB, seed * 10 + 2), w3 = random(OBJ, seed * 10 + 3);
            put(w, OBJ + MiB, w1);
            put(w, 3 * OBJ, w3);
            try (Volume v = Volume.openWritable(client, name, false)) {
                v.write(OBJ + MiB, w1);
                v.write(3 * OBJ, w3);
            }
            ok(c, "vdi", "clone", "-s", "snap", name, name + "c");
            byte[] cl = s.clone();
            byte[] c2 = random(4096, seed * 10 + 4);
            put(cl, 2 * OBJ + 4096, c2);
            try (Volume v = Volume.openWritable(client, name + "c", false)) {
                v.write(2 * OBJ + 4096, c2);
            }
            f.image.put(Member.S, s);
            f.image.put(Member.W, w);
            f.image.put(Member.C, cl);
            Map<String, Row> rows = listRows(c);
            f.vid.put(Member.S, rows.get(name + "@1").vid());
            f.vid.put(Member.W, rows.get(name + "@0").vid());
            f.vid.put(Member.C, rows.get(name + "c@0").vid());
        }

        String[] deleteArgs(Member m) {
            return switch (m) {
                case W -> new String[] {"vdi", "delete", name};
                case S -> new String[] {"vdi", "delete", "-s", "snap", name};
                case C -> new String[] {"vdi", "delete", name + "c"};
            };
        }

        String key(Member m) {
            return switch (m) {
                case W -> name + "@0";
                case S -> name + "@1";
                case C -> name + "c@0";
            };
        }

        /** The data objects (oid) each member reads. */
        List<Long> reads(Member m) {
            int s = vid.get(Member.S), w = vid.get(Member.W), cl = vid.get(Member.C);
            return switch (m) {
                case S -> List.of(Oids.dataOid(s, 0), Oids.dataOid(s, 1), Oids.dataOid(s, 2));
                case W -> List.of(Oids.dataOid(s, 0), Oids.dataOid(w, 1), Oids.dataOid(s, 2), Oids.dataOid(w, 3));
                case C -> List.of(Oids.dataOid(s, 0), Oids.dataOid(s, 1), Oids.dataOid(cl, 2));
            };
        }

        /** Used and Shared of a member: its table never changes, whoever else goes. */
        Usage usage(Member m) {
            return switch (m) {
                case S -> new Usage(3L * OBJ, 0);
                case W -> new Usage(2L * OBJ, 2L * OBJ);
                case C -> new Usage(OBJ, 2L * OBJ);
            };
        }
    }

    /** vdi list rows, data objects on disk and the bytes every live member reads, against what each family expects. */
    private static void checkFamilies(MiniCluster c, SheepClient client, List<Family> fams) throws IOException {
        Map<String, Row> rows = listRows(c);
        Map<Long, Integer> expected = new TreeMap<>();
        Set<String> expectedRows = new HashSet<>();
        for (Family f : fams) {
            for (Member m : f.live) {
                Row r = rows.get(f.key(m));
                assertNotNull(r, f.key(m) + " is listed: " + rows.keySet());
                expectedRows.add(f.key(m));
                assertEquals(f.vid.get(m), r.vid(), f.key(m));
                assertEquals(f.usage(m), r.usage(), "Used/Shared of " + f.key(m));
                for (long oid : f.reads(m)) expected.put(oid, COPIES);
                byte[] got;
                try (Volume v = Volume.openReadOnly(client, f.vid.get(m))) {
                    got = v.read(0, (int) v.size());
                } catch (IOException e) {
                    throw new AssertionError("cannot read " + f.key(m) + " (live " + f.live + "): " + e.getMessage(), e);
                }
                assertArrayEquals(f.image.get(m), got, "bytes of " + f.key(m) + " (live " + f.live + ")");
            }
        }
        assertEquals(expectedRows, rows.keySet(), "listed VDIs");
        assertEquals(expected, dataObjects(c), "data objects (oid -> replicas) on disk");
    }

    // ------------------------------------------------------------------ restart

    @Test
    void attributesAndSharingSurviveARestartOfEveryNode() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("vdirestart").nodes(3).copies(COPIES).nbd(false).build().start()) {
            // a owns objects 0 and 1, snapshot s takes them; then a rewrites part of 1 and the clone ac part of 0
            ok(c, "vdi", "create", "a", "8M");
            byte[] data = random(8 * MiB, 11);
            write(c, 0, "a", 0, data);
            ok(c, "vdi", "setattr", "a", "owner", "alice"); // before the snapshot: it stays with the working VDI
            ok(c, "vdi", "snapshot", "-s", "s", "a");
            ok(c, "vdi", "clone", "-s", "s", "a", "ac");
            byte[] aPart = random(MiB, 12), acPart = random(MiB, 13);
            write(c, 1, "a", OBJ, aPart);
            write(c, 2, "ac", 0, acPart);
            byte[] aImage = data.clone(), acImage = data.clone();
            put(aImage, OBJ, aPart);
            put(acImage, 0, acPart);

            byte[] binary = random(1000, 13);
            binary[0] = 1; // not empty when read as a C string
            c.dogWithInput(binary, "vdi", "setattr", "a", "blob").assertOk();
            ok(c, "vdi", "setattr", "ac", "owner", "bob");
            ok(c, "vdi", "setattr", "a", "gone", "soon");
            ok(c, "vdi", "setattr", "-d", "a", "gone");
            String list = c.dog("vdi", "list", "-r").assertOk().stdout();

            for (String how : List.of("cluster shutdown", "SIGTERM to every node")) {
                if (how.equals("cluster shutdown")) {
                    // one clean stop of the whole cluster: no epoch changes while the nodes go
                    c.dog("cluster", "shutdown").assertOk();
                    c.waitUntil("every node stopped", () -> c.liveNodes().isEmpty());
                } else {
                    // the nodes leave one after the other (each departure is an epoch with recovery)
                    for (SheepNode n : c.nodes()) n.stop();
                }
                c.nodes().parallelStream().forEach(SheepNode::start); // in any order, as after a power cut
                c.waitForNodes(3);
                c.waitUntil("the cluster runs again", () -> c.nodes().stream().allMatch(n -> c.clusterStatus(n) == SdResult.SUCCESS));
                // the nodes that stopped early hold outdated copies: wait until recovery has put everything in place
                c.waitUntil("recovery is over", () -> c.dog("node", "recovery").assertOk().stdout().lines().count() == 2);

                assertEquals(list, c.dog("vdi", "list", "-r").assertOk().stdout(), "VDIs after " + how);
                assertEquals("alice", c.dogAt(c.node(1), null, "vdi", "getattr", "a", "owner").assertOk().stdout(), how);
                assertArrayEquals(binary, c.dogAt(c.node(2), null, "vdi", "getattr", "a", "blob").assertOk().stdoutBytes(), how);
                assertEquals("bob", c.dog("vdi", "getattr", "ac", "owner").assertOk().stdout(), how);
                CommandResult gone = c.dog("vdi", "getattr", "a", "gone");
                assertEquals(5, gone.exitCode(), gone.toString());
                assertEquals("Attribute 'gone' not found\n", gone.stderr());
            }

            // the daemons rebuilt who shares what: deleting the snapshot keeps what a (object 0) and ac (object 1)
            // read; deleting a then frees object 0, which only a read
            Map<String, Row> rows = listRows(c);
            int snapVid = rows.get("a@1").vid(), aVid = rows.get("a@0").vid(), acVid = rows.get("ac@0").vid();
            ok(c, "vdi", "delete", "-s", "s", "a");
            assertArrayEquals(aImage, read(c, 2, "a"));
            assertArrayEquals(acImage, read(c, 0, "ac"));
            assertEquals(Map.of(Oids.dataOid(snapVid, 0), COPIES, Oids.dataOid(snapVid, 1), COPIES, Oids.dataOid(aVid, 1), COPIES,
                    Oids.dataOid(acVid, 0), COPIES), dataObjects(c));
            ok(c, "vdi", "delete", "a");
            assertArrayEquals(acImage, read(c, 1, "ac"));
            assertEquals(Map.of(Oids.dataOid(snapVid, 1), COPIES, Oids.dataOid(acVid, 0), COPIES), dataObjects(c));
        }
    }

    // ------------------------------------------------------------------ helpers

    /** A piece of a test that may throw. */
    private interface Step {
        void run() throws Exception;
    }

    /** Runs the steps on their own threads and waits for all; the first failure is rethrown as it was. */
    private static void inParallel(List<Step> steps) throws Exception {
        try (ExecutorService exec = Executors.newFixedThreadPool(Math.min(steps.size(), 3))) {
            List<Future<?>> fs = new ArrayList<>();
            for (Step s : steps) fs.add(exec.submit(() -> { s.run(); return null; }));
            for (Future<?> f : fs) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof Error err) throw err;
                    throw (Exception) e.getCause();
                }
            }
        }
    }

    /** Size columns of a {@code vdi list -r} row. */
    private record Usage(long used, long shared) { }

    private record Row(char type, String name, int id, long size, long used, long shared, int vid, String tag) {
        Usage usage() { return new Usage(used, shared); }
    }

    /** {@code vdi list -r} by "name@id" (id 0 = working VDI). Names here have no spaces, so fields split on ' '. */
    private static Map<String, Row> listRows(MiniCluster c) {
        Map<String, Row> rows = new LinkedHashMap<>();
        for (String l : c.dog("vdi", "list", "-r").assertOk().stdout().split("\n")) {
            if (l.isEmpty()) continue;
            String[] f = l.split(" ", -1);
            // type name id size used shared ctime vid copies tag shift
            Row r = new Row(f[0].charAt(0), f[1], Integer.parseInt(f[2]), Long.parseLong(f[3]), Long.parseLong(f[4]),
                    Long.parseLong(f[5]), Integer.parseInt(f[7], 16), f[9]);
            assertNull(rows.put(r.name() + "@" + r.id(), r), "duplicate row " + l);
        }
        return rows;
    }

    /** Every data object file in the nodes' stores: oid -> number of replicas. */
    private static Map<Long, Integer> dataObjects(MiniCluster c) {
        Map<Long, Integer> out = new TreeMap<>();
        for (SheepNode n : c.nodes()) {
            Path obj = n.storeDir().resolve("obj");
            if (!Files.isDirectory(obj)) continue;
            try (Stream<Path> s = Files.list(obj)) {
                s.map(p -> p.getFileName().toString()).filter(f -> f.matches("[0-9a-f]{16}")).map(Oids::parseFileName)
                        .filter(Oids::isData).forEach(oid -> out.merge(oid, 1, Integer::sum));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return out;
    }

    private static int replicas(Map<Long, Integer> objs, int vid, long idx) {
        return objs.getOrDefault(Oids.dataOid(vid, idx), 0);
    }

    private static void ok(MiniCluster c, String... args) { c.dog(args).assertOk(); }

    private static final int WRITE = 2, RX = 6;

    private static long[][][] writeStages(MiniCluster c) {
        long[][][] all = new long[3][][];
        for (int i = 0; i < all.length; i++) all[i] = c.writeStages(c.node(i));
        return all;
    }

    /**
     * {@code dog node stat -v}: every client write that {@code gateway} served (2 copies on 3 nodes) waited for a
     * remote copy, and had a local one when the gateway is one of its object's two nodes; the other nodes stored the
     * rest as peer writes; and the parts of the writes took no longer in all than the writes they belong to.
     */
    private static void assertWriteStagesSplitAtTheGateway(long[][][] before, long[][][] after, int gateway) {
        final int client = 0, peer = 1, localCopy = 2, remoteCopies = 3, count = 0, nanos = 1;
        long writes = after[gateway][client][count] - before[gateway][client][count];
        long local = after[gateway][localCopy][count] - before[gateway][localCopy][count];
        assertTrue(writes >= 2, "client writes at the gateway: " + writes);
        assertTrue(local >= 0 && local <= writes, "local copies " + local + " of " + writes + " writes");
        assertEquals(writes, after[gateway][remoteCopies][count] - before[gateway][remoteCopies][count], "waits for remote copies");
        long peerWrites = 0;
        for (int i = 0; i < 3; i++) {
            if (i != gateway) peerWrites += after[i][peer][count] - before[i][peer][count];
        }
        assertEquals(COPIES * writes - local, peerWrites, "peer writes on the other nodes");
        long writeTime = after[gateway][client][nanos] - before[gateway][client][nanos];
        long localTime = after[gateway][localCopy][nanos] - before[gateway][localCopy][nanos];
        long remoteTime = after[gateway][remoteCopies][nanos] - before[gateway][remoteCopies][nanos];
        assertTrue(writeTime > 0 && remoteTime > 0 && (local == 0 || localTime > 0), "every stage timed");
        assertTrue(localTime <= writeTime && remoteTime <= writeTime, "parts within the whole: write " + writeTime
                + " ns, local copies " + localTime + " ns, remote waits " + remoteTime + " ns");
    }

    /** {@code dog node stat -r} of every node: [node][0] its Client line, [node][1] its Peer line, numbers only. */
    private static long[][][] nodeStats(MiniCluster c) {
        long[][][] all = new long[c.nodes().size()][][];
        for (int i = 0; i < all.length; i++) all[i] = c.nodeStat(c.node(i));
        return all;
    }

    /**
     * Between two {@link #nodeStats} only {@code gateway} served clients: every write it served went to COPIES
     * copies, of which at least COPIES - 1 are on other nodes and arrive there as peer writes.
     */
    private static void assertWritesCountedOnceAtTheGatewayAndPerCopyAtThePeers(long[][][] before, long[][][] after,
                                                                              int gateway, long bytes) {
        long gwWrites = 0, peerWrites = 0, peerRx = 0;
        for (int i = 0; i < before.length; i++) {
            long served = after[i][0][WRITE] - before[i][0][WRITE];
            if (i == gateway) gwWrites = served;
            else assertEquals(0, served, "node " + i + " served no client");
            assertTrue(after[i][0][RX] - before[i][0][RX] >= (i == gateway ? bytes : 0));
            peerWrites += after[i][1][WRITE] - before[i][1][WRITE];
            peerRx += after[i][1][RX] - before[i][1][RX];
        }
        String what = "gateway writes " + gwWrites + ", peer writes " + peerWrites + ", peer bytes " + peerRx;
        assertTrue(gwWrites >= bytes / OBJ, what);
        assertTrue(peerWrites >= (COPIES - 1) * gwWrites && peerWrites <= COPIES * gwWrites, what);
        assertTrue(peerRx >= (COPIES - 1) * bytes, what);
    }

    private static CommandResult write(MiniCluster c, int node, String name, long offset, byte[] data) {
        return c.dogAt(c.node(node), data, "vdi", "write", name, Long.toString(offset), Integer.toString(data.length)).assertOk();
    }

    private static byte[] read(MiniCluster c, int node, String... nameAndOptions) {
        List<String> args = new ArrayList<>(List.of("vdi", "read"));
        args.addAll(List.of(nameAndOptions));
        return c.dogAt(c.node(node), null, args.toArray(String[]::new)).assertOk().stdoutBytes();
    }

    /** A shell command line running bin/dog against a node (for {@link #underTerminal}). */
    private static String dog(MiniCluster c, int node, String... args) {
        StringBuilder b = new StringBuilder(c.root().resolve("bin/dog").toString());
        for (String a : args) b.append(' ').append(a);
        return b.append(" -p ").append(c.node(node).port()).toString();
    }

    /**
     * Runs a shell command line with stderr on a pseudo-terminal ({@code script}); returns what was written to the
     * terminal. The command redirects its own stdout, so only stderr reaches the terminal.
     */
    private static String underTerminal(MiniCluster c, String commandLine) {
        CommandResult r = Commands.run(List.of("script", "-qec", commandLine, "/dev/null"), null,
                Map.of("JAVA_HOME", System.getProperty("java.home")), Duration.ofSeconds(60));
        assertEquals(0, r.exitCode(), r.toString());
        return r.stdout();
    }

    private static void assertProgressBar(String terminal, String total) {
        assertTrue(terminal.contains("\r["), "a bar is drawn: " + terminal);
        assertTrue(terminal.contains("] 100.0% "), "the bar ends at 100%: " + terminal);
        assertTrue(terminal.contains(total), "the bar shows the total " + total + ": " + terminal);
        assertTrue(terminal.endsWith("\n") || terminal.endsWith("\r\n"), "the bar line is finished: " + terminal);
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void put(byte[] image, int offset, byte[] data) { System.arraycopy(data, 0, image, offset, data.length); }
}
