package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A hung node (SIGSTOP: its process, sockets and driver membership stay, it answers nothing) under every cluster
 * driver, with three copies and with a 2:1 erasure code, and the default failure timeout: a
 * {@link CheckedNbdWriter} writing through another node must get acknowledgements again within 10 s (the stopped
 * node is evicted by heartbeat and the writes go on with the other copies), not when the node wakes up. When it
 * runs again it re-joins as a returning node and catches up; every acknowledged block is then read back through two
 * nodes, and {@code dog cluster check} is clean.
 */
@ExtendWith(MiniClusterExtension.class)
class HungNodeIT {
    private static final long MiB = 1 << 20;
    /** The bound: writes through the healthy nodes resume within 10 s of a node hanging. */
    private static final long RESUME_BOUND_MS = 10_000;

    /**
     * Every driver for 12 s (more than twice the time a stopped node takes to be found out; under ZooKeeper shorter
     * than its default session timeout, 30 s); ZooKeeper also for 16 s with a session timeout of 10 s (the stopped
     * node's session expires and it re-joins; {@value #SHORT_SESSION_MS} ms to keep the suite short). The local driver's
     * 60 s case runs with {@code -Dsheepdog.it.longHangs=true}: it adds a minute to the suite and takes the same paths as
     * its 12 s case (eviction by heartbeat, re-join).
     */
    static final int SHORT_SESSION_MS = 10_000;

    static java.util.stream.Stream<Arguments> hangs() {
        List<Arguments> a = new java.util.ArrayList<>(List.of(Arguments.of("local", 12, "3"), Arguments.of("zookeeper", 12, "3"),
                Arguments.of("zookeeper", 16, "3"), Arguments.of("corosync", 12, "3"), Arguments.of("local", 12, "2:1")));
        if (Boolean.getBoolean("sheepdog.it.longHangs")) a.add(1, Arguments.of("local", 60, "3"));
        return a.stream();
    }

    @ParameterizedTest(name = "driver {0}, stopped {1} s, redundancy {2}")
    @MethodSource("hangs")
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void writesResumeWhileANodeHangs(String driver, int stoppedSeconds, String redundancy) throws Exception {
        boolean ec = redundancy.contains(":");
        int nodes = ec ? 4 : 3; // 2:1 keeps its three strips on the three nodes left
        Path tmp = Files.createTempDirectory("sdit-hung-");
        // ZooKeeper: the default session timeout (30 s), or a short one for a hang longer than it
        boolean expires = driver.equals("zookeeper") && stoppedSeconds * 1000L > SHORT_SESSION_MS;
        try (DriverServer server = DriverServer.start(driver, tmp, expires ? ",timeout=" + SHORT_SESSION_MS : "")) {
            String spec = server.spec();
            MiniCluster.Builder b = MiniCluster.builder().name("hung-" + driver + "-" + stoppedSeconds + (ec ? "-ec" : ""))
                    .nodes(nodes).copies(3).sync(true);
            if (spec != null) b.driver(spec);
            try (MiniCluster c = b.build().start()) {
                if (ec) c.dog("vdi", "create", "-c", redundancy, "v", "32M").assertOk();
                else c.dog("vdi", "create", "v", "32M").assertOk();
                Path ackLog = c.dir().resolve("acks.log");
                CheckedNbdWriter w = new CheckedNbdWriter("v", 32 * MiB, () -> List.of(c.node(0).nbdPort()), 8, ackLog)
                        .start(stoppedSeconds);
                long stall;
                try {
                    assertTrue(w.awaitAcks(300, 60), "the writer got going");
                    SheepNode hung = c.node(2);
                    long t0 = System.nanoTime();
                    hung.pause();
                    try {
                        // writes may wait while the node is being found out, then go on without it
                        assertTrue(w.awaitAcks(200, (int) (RESUME_BOUND_MS / 1000) + 20),
                                "writes resume while " + hung + " is stopped: acknowledged " + w.acknowledged());
                        long resumedMs = (System.nanoTime() - t0) / 1_000_000;
                        c.waitUntil("the stopped node is out of the cluster", () -> c.nodeList(c.node(0)).size() == nodes - 1);
                        KillRestartIT.log(driver + ": writes went on " + resumedMs + " ms after the SIGSTOP; "
                                + "longest stall so far " + w.longestStallMs() + " ms");
                        long left = stoppedSeconds * 1000L - (System.nanoTime() - t0) / 1_000_000;
                        if (left > 0) Thread.sleep(left);
                    } finally {
                        hung.resume();
                    }
                    // back: it re-joins as a returning node and recovers what it missed
                    c.waitForNodes(nodes);
                    c.waitForRecovery();
                    assertTrue(w.awaitAcks(200, 60), "writes go on once the node is back");
                    stall = w.longestStallMs();
                } finally {
                    w.close();
                }
                c.waitForRecovery();
                CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(2).nbdPort());
                String fig = String.format("HUNG NODE %s, stopped %d s, redundancy %s: acknowledged %d, lost %d, mismatched %d, error replies %s, "
                        + "longest stall %d ms", driver, stoppedSeconds, redundancy, w.acknowledged(), v.lost(), v.mismatched(),
                        w.errorReplies(), stall);
                CheckedNbdWriter.record(fig);
                v.assertClean(); // through node 2 too: the node that was stopped
                assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
                assertTrue(stall < RESUME_BOUND_MS, "writes stood still for " + stall + " ms: " + fig);
                CommandResult check = c.dog("cluster", "check");
                assertEquals(0, check.exitCode(), check.toString());
            }
        }
    }
}
