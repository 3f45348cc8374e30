package io.sheepdog.it;

import static io.sheepdog.it.KillRestartIT.log;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.SdResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Whole-cluster lifecycle on real processes: a clean {@code dog cluster shutdown} and restart, a node that returns
 * after missing several epochs, and a node started on the store directory of another cluster.
 */
@ExtendWith(MiniClusterExtension.class)
class LifecycleIT {
    private static final long MiB = 1 << 20;
    private static final long OBJECT_SIZE = 4 * MiB;

    /** After {@code dog cluster shutdown} every node exits; started again, the cluster runs at the same epoch. */
    @Test
    void shutdownThenRestartOfAllNodesResumesAtTheSameEpoch() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("shutdown").nodes(3).copies(3).nbd(false).build().start()) {
            c.dog("vdi", "create", "vol", "32M").assertOk();
            VerifyingWriter w = writeSome(c, 32 * MiB, 30);
            int epoch = c.epoch(c.node(0));
            List<String> before = epochHistory(c, c.node(0));

            CommandResult r = c.dog("cluster", "shutdown").assertOk();
            for (SheepNode n : c.nodes()) {
                c.waitUntil(n + " exits after the shutdown", () -> !n.isAlive());
                assertEquals(0, n.exitCode().orElse(-1), n + " exit code after cluster shutdown; " + r);
            }
            // started one after the other, in another order: the cluster waits for all of them, then runs
            c.node(2).start();
            c.node(0).start();
            c.node(1).start();
            c.waitForNodes(3);
            c.waitUntil("the cluster runs again", () -> c.liveNodes().stream().allMatch(n -> c.clusterStatus(n) == SdResult.SUCCESS));
            for (SheepNode n : c.nodes()) {
                assertEquals(epoch, c.epoch(n), "epoch at " + n + " after the restart");
                assertEquals(null, c.recoveryProgress(n), n + " recovers nothing after a clean shutdown");
                assertEquals(before, epochHistory(c, n), "epoch history at " + n);
            }
            assertNoRecoveryLogged(c, epoch);
            verifyData(c, w);
        }
    }

    /**
     * A node stopped while the cluster goes through several epochs (another node leaves and comes back, data is
     * written) comes back with its old epoch and catches up: same epoch and epoch history as the others, the data
     * written while it was away, its share of the objects on disk.
     */
    @Test
    void aNodeThatComesBackWithAnOldEpochCatchesUp() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("oldepoch").nodes(3).copies(3).nbd(false).build().start()) {
            c.dog("vdi", "create", "vol", "32M").assertOk();
            VerifyingWriter w = new VerifyingWriter(c, "vol", 32 * MiB, OBJECT_SIZE).start(1, 5L);
            try {
                w.awaitProgress(10);
                SheepNode away = c.node(2);
                int code = away.stop();
                assertTrue(code == 0 || code == 143, "exit code after SIGTERM: " + code);
                int old = c.epoch(c.node(0));
                c.waitForNodes(2);
                w.awaitProgress(10);
                c.node(1).kill9();
                c.waitForNodes(1);
                w.awaitProgress(10);
                c.node(1).start();
                c.waitForNodes(2);
                w.awaitProgress(10);
                int now = c.epoch(c.node(0));
                assertTrue(now >= old + 2, "the cluster moved on: epoch " + old + " -> " + now);

                away.start();
                c.waitForNodes(3);
                w.awaitProgress(10);
            } finally {
                w.stop();
                log("writer stopped: " + w.summary());
            }
            c.waitForRecovery();
            int epoch = c.epoch(c.node(0));
            List<String> history = epochHistory(c, c.node(0));
            for (SheepNode n : c.nodes()) assertEquals(epoch, c.epoch(n), "epoch at " + n);
            // the returning node fetches the records of the epochs it missed in the background
            c.waitUntil("every node shows the same epoch history", () -> c.nodes().stream().allMatch(n -> history.equals(epochHistory(c, n))));
            RecoveryFaultsIT.verifyAll(c, w);
        }
    }

    /**
     * Power loss: every node killed with SIGKILL at once while a client writes, then all started again. The
     * cluster comes back by itself, and every write acknowledged before the crash is there.
     */
    @Test
    void allNodesKilledAtOnceThenRestarted() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("powerloss").nodes(3).copies(3).sync(true).nbd(false).build().start()) {
            c.dog("vdi", "create", "vol", "32M").assertOk();
            VerifyingWriter w = new VerifyingWriter(c, "vol", 32 * MiB, OBJECT_SIZE).start(2, 9L);
            try {
                w.awaitProgress(30);
                for (SheepNode n : c.nodes()) n.kill9();
                SheepNode.sleep(300);
                for (SheepNode n : List.of(c.node(1), c.node(2), c.node(0))) n.start();
                c.waitForNodes(3);
                w.awaitProgress(20); // the writers were retrying their last write: it goes through now
            } finally {
                w.stop();
                log("writer stopped: " + w.summary());
            }
            RecoveryFaultsIT.verifyAll(c, w);
        }
    }

    /** A node whose store belongs to another cluster is refused, says why, and the cluster is not disturbed. */
    @Test
    void aNodeWithTheStoreOfAnotherClusterIsRefused() throws Exception {
        Path foreign;
        try (MiniCluster other = MiniCluster.builder().name("othercluster").nodes(1).copies(1).nbd(false).build().start()) {
            other.dog("vdi", "create", "theirs", "8M").assertOk();
            other.node(0).stop();
            foreign = other.node(0).storeDir();
            try (MiniCluster c = MiniCluster.builder().name("foreign").nodes(2).copies(2).nbd(false).build().start()) {
                c.dog("vdi", "create", "vol", "16M").assertOk();
                int epoch = c.epoch(c.node(0));
                copyTree(foreign, c.dir().resolve("n2"));
                SheepNode intruder;
                try {
                    intruder = c.addNode();
                } catch (AssertionError e) {
                    // it may be refused before it even listens: that is fine, the message is what matters
                    intruder = c.node(2);
                }
                SheepNode n2 = intruder;
                // (not c.waitUntil: that one fails as soon as a node exits with an error, which is expected here)
                for (int i = 0; i < 600 && n2.isAlive(); i++) SheepNode.sleep(100);
                assertTrue(!n2.isAlive(), "the node from the other cluster is still running:\n" + n2.logTail(20));
                assertNotEquals(0, n2.exitCode().orElse(0), "a refused node exits with an error");
                String out = Files.readString(n2.stderrFile()) + Files.readString(n2.storeDir().resolve("sheep.log"));
                assertTrue(out.contains("another cluster"), "the refused node says why:\n" + n2.logTail(20));
                for (SheepNode n : List.of(c.node(0), c.node(1))) {
                    assertEquals(2, c.nodeList(n).size(), "members at " + n);
                    assertEquals(epoch, c.epoch(n), "the refused node did not change the epoch at " + n);
                }
                assertTrue(c.dog("vdi", "list").assertOk().stdout().contains("vol"));
                assertTrue(Files.exists(n2.storeDir().resolve("obj")), "the foreign store is left alone");
            }
        }
    }

    // ------------------------------------------------------------------ helpers

    private static VerifyingWriter writeSome(MiniCluster c, long size, int writes) throws InterruptedException {
        VerifyingWriter w = new VerifyingWriter(c, "vol", size, OBJECT_SIZE).start(1, 3L);
        try {
            w.awaitProgress(writes);
        } finally {
            w.stop();
        }
        assertEquals(List.of(), w.errors());
        return w;
    }

    private static void verifyData(MiniCluster c, VerifyingWriter w) throws IOException {
        for (SheepNode n : c.nodes()) {
            assertEquals(List.of(), VerifyingWriter.firstFew(w.verifyThrough(n)), "data read through " + n);
        }
    }

    /** {@code dog cluster info -r} through {@code n} without the time column: epoch and members, newest first. */
    static List<String> epochHistory(MiniCluster c, SheepNode n) {
        String out = c.dogAt(n, null, "cluster", "info", "-r").assertOk().stdout();
        List<String> lines = new ArrayList<>();
        for (String l : out.split("\n")) {
            if (l.matches("\\d+ \\d+ \\[.*\\]")) lines.add(l.substring(l.indexOf(' ') + 1));
        }
        assertTrue(!lines.isEmpty(), "cluster info lists epochs:\n" + out);
        return lines;
    }

    private static void assertNoRecoveryLogged(MiniCluster c, int epoch) throws IOException {
        for (SheepNode n : c.nodes()) {
            String log = Files.readString(n.storeDir().resolve("sheep.log"));
            String lastStart = log.substring(Math.max(0, log.lastIndexOf("sheepdog daemon started")));
            assertTrue(!lastStart.contains("objects to bring here"), n + " recovered objects after a clean restart:\n" + lastStart);
        }
    }

    static void copyTree(Path from, Path to) {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path t = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(t);
                else if (!p.getFileName().toString().equals("sock")) Files.copy(p, t, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
