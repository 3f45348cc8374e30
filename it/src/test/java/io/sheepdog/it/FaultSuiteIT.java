package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The fault suite: a {@link CheckedNbdWriter} writes a VDI over NBD through one node while other nodes are killed
 * with SIGKILL and started again, one at a time, two at once, and one while the cluster still recovers from the
 * last. Afterwards every block read through two different nodes must hold its last acknowledged write or a later
 * unacknowledged one (0 lost, 0 mismatched), and {@code dog cluster check} must end clean. Failures the
 * redundancy covers (one node down with 3 copies or with d:p, p >= 1; two down with 4:2) must cost no error reply
 * at all; beyond the redundancy (two zones of a 2:1 VDI) writes may fail or wait, but what was acknowledged before
 * survives.
 *
 * <p>Each scenario prints its figures: acknowledged writes, lost and mismatched blocks, error replies by errno and
 * the longest time without an acknowledgement. The rounds of single kills are {@code -Dsheepdog.it.faultRounds}
 * (default 2; the long soak: {@code ./test.sh -pl it -am -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false
 * -Dit.test=FaultSuiteIT -Dsheepdog.it.faultRounds=50}).
 */
@ExtendWith(MiniClusterExtension.class)
class FaultSuiteIT {
    private static final long MiB = 1 << 20;
    private static final int ROUNDS = Integer.getInteger("sheepdog.it.faultRounds", 2);
    private static final int EIO = 5;

    @Test
    @Timeout(value = 30, unit = TimeUnit.MINUTES)
    void threeCopies() throws Exception {
        scenario("copies=3", 4, "3", null, false);
    }

    /**
     * Three copies with every node writing through its write journal ({@code --journal 8M}), and each killed node
     * killed once more at a random moment of its next start (the JVM starting, its journal being replayed, its join)
     * before it starts for good.
     */
    @Test
    @Timeout(value = 30, unit = TimeUnit.MINUTES)
    void threeCopiesWithTheJournal() throws Exception {
        scenario("copies=3 journal", 4, "3", null, false, "--journal", "8M");
    }

    @Test
    @Timeout(value = 30, unit = TimeUnit.MINUTES)
    void erasureCoded21() throws Exception {
        scenario("2:1", 4, "2", "2:1", true);
    }

    @Test
    @Timeout(value = 30, unit = TimeUnit.MINUTES)
    void erasureCoded42() throws Exception {
        scenario("4:2", 6, "3", "4:2", false);
    }

    /**
     * One node's store fills up (a 40 MiB tmpfs under a 64 MiB VDI with three copies): writes that need space there
     * are answered ENOSPC (28, on which QEMU pauses the VM), never EIO, and every block still holds its last
     * acknowledged write or a later unacknowledged one, read through the two nodes with space.
     */
    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void fullDiskOnOneNode() throws Exception {
        // fixed vnodes: with vnodes from the free space, the small node would get next to none and hold no copy
        try (MiniCluster c = MiniCluster.builder().name("fault-full").nodes(3).format(false).sync(true)
                .sheepArgs("-V", "64").build()) {
            Path small = c.node(2).storeDir();
            Files.createDirectories(small);
            int mounted = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", small.toString())
                    .redirectErrorStream(true).start().waitFor();
            Tools.requireUnderCi(mounted == 0, "mounting a 40 MiB tmpfs for node 2's store must work (root)");
            try {
                c.start();
                c.dog("cluster", "format", "-V", "-c", "3").assertOk();
                c.waitUntilRunning();
                c.dog("vdi", "create", "v", "64M").assertOk();
                Path ackLog = c.dir().resolve("acks-full.log");
                CheckedNbdWriter w = new CheckedNbdWriter("v", 64 * MiB, () -> List.of(c.node(0).nbdPort()), 8, ackLog).start(28);
                try {
                    c.waitUntil("node 2's disk is full", () -> w.errorReplies(28) > 0);
                    assertTrue(w.awaitAcks(100, 60) || w.errorReplies(28) > 100, "the writer goes on");
                } finally {
                    w.close();
                }
                CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(1).nbdPort());
                String fig = String.format("FAULT SUITE full disk on one node: acknowledged %d, lost %d, mismatched %d, "
                        + "error replies %s", w.acknowledged(), v.lost(), v.mismatched(), w.errorReplies());
                CheckedNbdWriter.record(fig);
                v.assertClean();
                assertEquals(0, w.errorReplies(EIO), "a full disk is ENOSPC, not EIO: " + fig);
            } finally {
                c.close();
                new ProcessBuilder("umount", "-l", small.toString()).start().waitFor();
            }
        }
    }

    /**
     * @param nodes        one zone each; node 0 is the writer's gateway and is never killed
     * @param beyondRedundancy whether two nodes at once exceed what the VDI survives (errors then allowed)
     */
    private void scenario(String name, int nodes, String clusterCopies, String vdiCode, boolean beyondRedundancy,
                          String... sheepArgs) throws Exception {
        boolean journal = List.of(sheepArgs).contains("--journal");
        try (MiniCluster c = MiniCluster.builder().name("fault-" + name.replace(':', '-').replace(' ', '-')).nodes(nodes)
                .format(false).sync(true).sheepArgs(sheepArgs).build().start()) {
            c.dog("cluster", "format", "-c", clusterCopies).assertOk();
            c.waitUntilRunning();
            List<String> create = new ArrayList<>(List.of("vdi", "create"));
            if (vdiCode != null) create.addAll(List.of("-c", vdiCode));
            create.addAll(List.of("v", "48M"));
            c.dog(create.toArray(String[]::new)).assertOk();
            Path ackLog = c.dir().resolve("acks-" + name.replace(':', '-') + ".log");
            CheckedNbdWriter w = new CheckedNbdWriter("v", 48 * MiB, () -> c.liveNbdPorts(0), 8, ackLog).start(name.hashCode());
            SplittableRandom rnd = new SplittableRandom(name.hashCode());
            long stallWithinRedundancy = 0;
            long errorsWithinRedundancy = 0;
            try {
                assertTrue(w.awaitAcks(200, 120), "the writer got going");
                // single kills
                for (int round = 0; round < ROUNDS; round++) {
                    SheepNode victim = c.node(1 + rnd.nextInt(nodes - 1));
                    killAndRestart(c, w, List.of(victim), journal ? 200 + rnd.nextInt(2000) : -1);
                    log(name, "round " + round + ": killed and restarted " + victim + "; " + w.progress());
                }
                // one killed while the cluster still recovers from the return of another
                SheepNode a = c.node(1), b = c.node(2);
                a.kill9();
                c.waitForNodes(nodes - 1);
                assertTrue(w.awaitAcks(50, 60), "writes go on with " + a + " down: " + w.progress());
                a.start();
                c.waitForNodes(nodes);
                b.kill9();
                c.waitForNodes(nodes - 1);
                assertTrue(w.awaitAcks(50, 60), "writes go on with " + b + " down during recovery: " + w.progress());
                b.start();
                c.waitForNodes(nodes);
                c.waitForRecovery();
                assertTrue(w.awaitAcks(50, 60), "writes go on after the recovery: " + w.progress());
                log(name, "kill during recovery: " + w.progress());
                stallWithinRedundancy = w.longestStallMs();
                errorsWithinRedundancy = w.errorReplyCount();
                // two at once
                List<SheepNode> two = List.of(c.node(nodes - 1), c.node(nodes - 2));
                for (SheepNode n : two) n.kill9();
                c.waitForNodes(nodes - 2);
                if (!beyondRedundancy) {
                    assertTrue(w.awaitAcks(50, 60), "writes go on with two nodes down: " + w.progress());
                } else {
                    Thread.sleep(5000); // writes may fail or wait: what was acknowledged before must survive
                }
                for (SheepNode n : two) n.start();
                c.waitForNodes(nodes);
                w.exempt();
                c.waitForRecovery();
                assertTrue(w.awaitAcks(100, 120), "writes go on once every node is back: " + w.progress());
                log(name, "two killed at once and restarted: " + w.progress());
            } finally {
                w.close();
            }
            c.waitForRecovery();
            CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(1 + rnd.nextInt(nodes - 1)).nbdPort());
            String fig = String.format("FAULT SUITE %s: acknowledged %d, lost %d, mismatched %d, error replies %s "
                    + "(within the redundancy: %d), longest stall %d ms (within the redundancy: %d ms), reconnects %d, "
                    + "ack log %s", name, w.acknowledged(), v.lost(), v.mismatched(), w.errorReplies(),
                    errorsWithinRedundancy, w.longestStallMs(), stallWithinRedundancy, w.reconnects(), ackLog);
            CheckedNbdWriter.record(fig);
            w.errorEvents().forEach(e -> log(name, "error reply: " + e));
            v.assertClean();
            assertTrue(Files.readAllLines(ackLog).size() >= w.acknowledged() - 8, "every ack is in the log");
            assertEquals(0, errorsWithinRedundancy, "no error reply while the redundancy covered the failures: " + fig);
            if (!beyondRedundancy) assertEquals(0, w.errorReplies(EIO), "no EIO at all: " + fig);
            CommandResult check = c.dog("cluster", "check");
            assertEquals(0, check.exitCode(), "dog cluster check: " + check);
            if (journal) {
                long replays = 0;
                for (SheepNode n : c.nodes()) {
                    replays += Files.readAllLines(n.storeDir().resolve("sheep.log")).stream()
                            .filter(l -> l.contains("writes replayed into")).count();
                }
                log(name, replays + " journal replays at restarts");
                assertTrue(replays > 0, "the killed nodes replayed their journals when they came back");
            }
        }
    }

    /** {@code killDuringStartMs} >= 0: each victim is started and killed that long after once more first. */
    private static void killAndRestart(MiniCluster c, CheckedNbdWriter w, List<SheepNode> victims, long killDuringStartMs)
            throws InterruptedException {
        int n = c.nodes().size();
        for (SheepNode v : victims) v.kill9();
        c.waitForNodes(n - victims.size());
        assertTrue(w.awaitAcks(50, 60), "writes go on with " + victims + " down: " + w.progress());
        if (killDuringStartMs >= 0) {
            for (SheepNode v : victims) {
                boolean starting = v.startAndKill(killDuringStartMs);
                log("restart", v + " killed " + killDuringStartMs + " ms into its start" + (starting ? " (still starting)" : " (already listening)"));
            }
            c.waitForNodes(n - victims.size());
        }
        for (SheepNode v : victims) v.start();
        c.waitForNodes(n);
        c.waitForRecovery();
        assertTrue(w.awaitAcks(50, 60), "writes go on after " + victims + " came back: " + w.progress());
    }

    private static void log(String scenario, String s) {
        System.out.println(java.time.LocalTime.now() + " [" + scenario + "] " + s);
        System.out.flush();
    }
}
