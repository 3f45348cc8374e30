package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The harness itself: processes really start, die, come back and are all gone after close(). */
@ExtendWith(MiniClusterExtension.class)
class MiniClusterIT {

    @Test
    void launchersRunWithoutACluster() {
        CommandResult help = Commands.run(List.of(MiniCluster.repoRoot().resolve("bin/dog").toString(), "--help"))
                .assertOk();
        assertTrue(help.stdout().contains("Usage"), help.toString());
        CommandResult bad = Commands.run(List.of(MiniCluster.repoRoot().resolve("bin/dog").toString(), "no-such-command"));
        assertNotEquals(0, bad.exitCode(), bad.toString());
        assertTrue(bad.stderr().contains("no-such-command"), "dog names the bad command on stderr: " + bad);

        String sheep = MiniCluster.repoRoot().resolve("bin/sheep").toString();
        CommandResult sheepHelp = Commands.run(List.of(sheep, "--help")).assertOk();
        assertTrue(sheepHelp.stdout().startsWith("Usage: sheep ") && sheepHelp.stdout().contains("-V, --vnodes=N"), sheepHelp.toString());
        assertEquals("Sheepdog daemon version 1.0.0-jvm\n", Commands.run(List.of(sheep, "-v")).assertOk().stdout());
        CommandResult badVnodes = Commands.run(List.of(sheep, "-V", "70000", "/nonexistent"));
        assertEquals(1, badVnodes.exitCode(), badVnodes.toString());
        assertEquals("Invalid number of vnodes '70000': must be an integer between 1 and 65535\n", badVnodes.stderr());
        CommandResult badThrottle = Commands.run(List.of(sheep, "-R", "max=5", "/nonexistent"));
        assertEquals(1, badThrottle.exitCode(), badThrottle.toString());
        assertTrue(badThrottle.stderr().contains("give both max=N and interval=MS"), badThrottle.toString());
    }

    @Test
    void recoveryThrottleFromTheCommandLine() {
        try (MiniCluster c = MiniCluster.builder().name("throttle").nodes(1).copies(1).nbd(false)
                .sheepArgs("-R", "max=5,interval=1000", "-W").build().start()) {
            CommandResult t = c.dog("node", "recovery", "get-throttle").assertOk();
            assertEquals("max (5), interval (1000)\n", t.stderr(), t.toString());
        }
    }

    @Test
    void nodesStartDieRestartJoinAndAreAllStoppedByClose() throws Exception {
        List<Long> pids;
        MiniCluster c = MiniCluster.builder().name("selftest").nodes(2).copies(2).build();
        try (c) {
            c.start();
            Set<Integer> ports = new HashSet<>();
            for (SheepNode n : c.nodes()) {
                assertTrue(n.isAlive(), n.toString());
                assertTrue(ports.add(n.port()) && ports.add(n.nbdPort()), "ports are distinct");
                assertTrue(Files.size(n.stdoutFile()) > 0, "the start banner is in " + n.stdoutFile());
                assertEquals(2, c.nodeList(n).size(), "members seen by " + n);
            }
            CommandResult list = c.dog("node", "list").assertOk();
            for (SheepNode n : c.nodes()) {
                assertTrue(list.stdout().contains(n.address()), "dog node list shows " + n.address() + ":\n" + list.stdout());
            }

            // crash a node: the other one notices
            long oldPid = c.node(1).pid();
            c.node(1).kill9();
            assertFalse(c.node(1).isAlive());
            assertFalse(ProcessHandle.of(oldPid).map(ProcessHandle::isAlive).orElse(false), "pid " + oldPid + " is gone");
            c.waitForNodes(1);

            // it comes back with the same port and store
            c.node(1).start();
            assertNotEquals(oldPid, c.node(1).pid());
            c.waitForNodes(2);

            // one more node joins
            SheepNode added = c.addNode();
            assertEquals(2, added.index());
            c.waitForNodes(3);

            // graceful stop: SIGTERM; the node leaves (the others see it go at once, not after a timeout) and exits
            // normally: 0, or 143 (128 + SIGTERM), which is what a JVM reports after running its shutdown hooks
            int code = c.node(2).stop();
            assertTrue(code == 0 || code == 143, "exit code after SIGTERM: " + code + "\n" + c.node(2).logTail(20));
            c.waitForNodes(2);

            pids = c.nodes().stream().map(SheepNode::pid).filter(p -> p > 0).toList();
            assertEquals(2, pids.size());
        }
        for (long pid : pids) {
            assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "pid " + pid + " stopped by close()");
        }
        assertTrue(c.nodes().stream().noneMatch(SheepNode::isAlive));
    }

    @Test
    void aDaemonThatCannotStartIsReportedWithItsOutput() {
        // a zone outside 0..2^32-1 is refused by sheep's option parser
        MiniCluster c = MiniCluster.builder().name("badstart").nodes(1).format(false)
                .zones(1L << 40).build();
        try (c) {
            AssertionError e = assertThrows(AssertionError.class, c::start);
            assertTrue(e.getMessage().contains("exited with code"), e.getMessage());
            assertTrue(e.getMessage().contains("sheep.stderr"), "the failure shows the node's output: " + e.getMessage());
        }
    }
}
