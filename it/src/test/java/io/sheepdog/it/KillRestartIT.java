package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.Inode;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Crash durability on real processes: three sheep, three copies, a client writing random blocks all the time while
 * one node after the other is killed with SIGKILL and started again. Every write the cluster acknowledged must be
 * there afterwards, through every node and in the object files of every node the placement names, and
 * {@code dog cluster check} must find nothing to repair.
 *
 * <p>The daemons run without {@code -n}: they fdatasync before acknowledging, which is what makes the promise.
 *
 * <p>Soak mode: {@code ./test.sh -pl it -am -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false
 * -Dit.test=KillRestartIT -Dsheepdog.it.killRounds=150} (default 10 rounds; the time limit grows with the rounds,
 * failsafe's 25-minute fork limit bounds one run). {@code -Dsheepdog.it.killVdiMiB} sets the VDI size (default
 * 128), {@code -Dsheepdog.it.killWriters} the writer threads (default 2) and {@code -Dsheepdog.it.resumeMs} the
 * longest time without any acknowledged write allowed (default 5000, the bound).
 */
@ExtendWith(MiniClusterExtension.class)
class KillRestartIT {
    private static final long MiB = 1 << 20;
    private static final long VDI_SIZE = Long.getLong("sheepdog.it.killVdiMiB", 128) * MiB;
    private static final long OBJECT_SIZE = 4 * MiB;
    private static final int ROUNDS = Integer.getInteger("sheepdog.it.killRounds", 10);
    private static final int WRITERS = Integer.getInteger("sheepdog.it.killWriters", 2);
    /** The bound on how long I/O may stall while a node dies or comes back ({@code -Dsheepdog.it.resumeMs}). */
    private static final long RESUME_MS = Long.getLong("sheepdog.it.resumeMs", 5000);

    @Test
    @Timeout(value = 4, unit = TimeUnit.HOURS) // the real bound, which grows with the rounds, is set below
    void acknowledgedWritesSurviveKillNineAndRestartOfEachNodeInTurn() {
        assertTimeoutPreemptively(Duration.ofSeconds(180 + 15L * ROUNDS), this::killAndRestartRounds);
    }

    private void killAndRestartRounds() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("killrestart").nodes(3).copies(3).sync(true).nbd(false)
                .build().start()) {
            c.dog("vdi", "create", "vol", (VDI_SIZE / MiB) + "M").assertOk();
            VerifyingWriter w = new VerifyingWriter(c, "vol", VDI_SIZE, OBJECT_SIZE).start(WRITERS, 20240601L);
            long longestStall = 0;
            try {
                w.awaitProgress(20);
                for (int round = 0; round < ROUNDS; round++) {
                    // every node in turn, the writers' current gateway included: they move to another node
                    SheepNode victim = c.node(round % 3);
                    long t0 = System.nanoTime();
                    victim.kill9();
                    c.waitForNodes(2);
                    long seen = System.nanoTime();
                    w.awaitProgress(10); // I/O goes on with two copies
                    victim.start();
                    c.waitForNodes(3);
                    long back = System.nanoTime();
                    w.awaitProgress(10); // and on while the node recovers
                    long stall = w.longestStallMillis(t0, System.nanoTime());
                    longestStall = Math.max(longestStall, stall);
                    log(String.format("round %d: killed node %d, gone after %d ms, back after %d ms, I/O stood still "
                                    + "for at most %d ms; %s", round, victim.index(), (seen - t0) / 1_000_000,
                            (back - t0) / 1_000_000, stall, w.summary()));
                }
            } finally {
                w.stop();
                log("writer stopped: " + w.summary());
                w.slowWrites().stream().limit(5).forEach(slow -> log("slow write: " + slow));
            }
            assertEquals(List.of(), w.errors(), "the writer threads ended with errors");
            assertEquals(List.of(), VerifyingWriter.firstFew(w.problems()), "read-backs during the run differ from what was acknowledged");

            c.waitForRecovery();
            log("recovered");
            for (SheepNode n : c.nodes()) {
                assertEquals(List.of(), VerifyingWriter.firstFew(w.verifyThrough(n)), "data read through " + n);
            }
            Inode inode = StoredObjects.inode(c, c.node(0), "vol");
            assertEquals(List.of(), VerifyingWriter.firstFew(StoredObjects.check(c, c.node(0), inode, w::expectedObject)),
                    "object files on disk");
            log("verified through every node and on disk");
            CommandResult check = c.dog("cluster", "check").assertOk();
            assertCleanCheck(check);
            // I/O resumes within the bound: no time longer than it without any write acknowledged (a single write may
            // take longer on a busy machine: it waits for its object to be recovered on the node that came back)
            assertTrue(longestStall < RESUME_MS,
                    "I/O stood still for " + longestStall + " ms (more than " + RESUME_MS + " ms): " + w.summary());
        }
    }

    static void log(String s) {
        System.out.println(java.time.LocalTime.now() + " " + s);
        System.out.flush();
    }

    /** {@code dog cluster check} output that repaired nothing: only the per-VDI "fix vdi" and "finish" lines. */
    static void assertCleanCheck(CommandResult check) {
        assertTrue(check.stdout().contains("finish check&repair "), "dog cluster check checked a VDI: " + check);
        for (String line : check.stdout().split("\n")) {
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("fix vdi ") || l.startsWith("fix snapshot ") || l.startsWith("finish check&repair")) continue;
            // the progress bar is drawn only on a terminal; anything else is a repair or a failure
            throw new AssertionError("dog cluster check had to repair something: " + check);
        }
    }
}
