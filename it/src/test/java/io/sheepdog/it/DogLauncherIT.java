package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * bin/dog's start-up cache (a JDK AOT cache trained in the background): it is trained on a read-only command that
 * reached a sheep ("live"), never by repeating a command that changes the cluster, and a cache made offline is
 * replaced by a live one. Runs a copy of the launcher in a temporary root (bin/ and the packaged jars copied) so
 * that the repository's own cache is neither used nor touched.
 */
@ExtendWith(MiniClusterExtension.class)
class DogLauncherIT {

    @TempDir Path root;

    @Test
    void cacheIsTrainedOnReadOnlyCommandsOnly() throws Exception {
        layOutLauncher();
        Path key = root.resolve("dog/target/aot/dog.aot.key");
        try (MiniCluster c = MiniCluster.builder().name("launcher").nodes(1).copies(1).build()) {
            c.start();
            String port = Integer.toString(c.node(0).port());
            dog("vdi", "create", "disk", "4M", "-p", port).assertOk();

            // a command that changes the cluster: the background training must not run it again
            dog("vdi", "snapshot", "-s", "one", "disk", "-p", port).assertOk();
            waitForCache(key, "offline");
            CommandResult list = dog("vdi", "list", "-r", "-p", port).assertOk();
            assertEquals(2, list.stdout().lines().count(), "one VDI and one snapshot, no more:\n" + list.stdout());
            // that `vdi list` was read-only and reached the sheep: it replaces the offline cache with a live one
            waitForCache(key, "live");

            // the cache is used and the output is unchanged; the training ran `vdi list` once more: still 2 entries
            CommandResult again = dog("vdi", "list", "-r", "-p", port).assertOk();
            assertEquals(list.stdout(), again.stdout());
            CommandResult nodes = dog("node", "list", "-p", port).assertOk();
            assertTrue(nodes.stdout().contains(c.node(0).address()), nodes.toString());
            assertEquals("live", kind(key), "a live cache stays");
        }
    }

    @Test
    void aCommandThatFailsLeavesAnOfflineCache() throws Exception {
        layOutLauncher();
        Path key = root.resolve("dog/target/aot/dog.aot.key");
        // nothing listens on port 1: the command fails and the training falls back to the offline run
        CommandResult r = dog("node", "list", "-p", "1");
        assertEquals(2, r.exitCode(), r.toString());
        assertFalse(r.stderr().contains("Exception"), "no stack trace: " + r);
        waitForCache(key, "offline");
    }

    /** root/bin = a copy of the repository's launcher, root/dog/target = copies of the packaged jars. */
    private void layOutLauncher() throws IOException {
        Path repo = MiniCluster.repoRoot();
        Files.createDirectories(root.resolve("bin/lib"));
        for (String f : List.of("bin/dog", "bin/lib/launcher.sh")) {
            Files.copy(repo.resolve(f), root.resolve(f));
        }
        root.resolve("bin/dog").toFile().setExecutable(true);
        Path target = root.resolve("dog/target");
        Files.createDirectories(target.resolve("lib"));
        try (Stream<Path> s = Files.list(repo.resolve("dog/target"))) {
            for (Path jar : s.filter(p -> p.getFileName().toString().matches("sheepdog-dog-.*\\.jar")).toList()) {
                Files.copy(jar, target.resolve(jar.getFileName()));
            }
        }
        try (Stream<Path> s = Files.list(repo.resolve("dog/target/lib"))) {
            for (Path jar : s.filter(p -> p.toString().endsWith(".jar")).toList()) {
                Files.copy(jar, target.resolve("lib").resolve(jar.getFileName()));
            }
        }
    }

    private CommandResult dog(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(root.resolve("bin/dog").toString());
        cmd.addAll(Arrays.asList(args));
        return Commands.run(cmd, null, Map.of("JAVA_HOME", System.getProperty("java.home")), Commands.DEFAULT_TIMEOUT);
    }

    /** Waits until no training runs and the cache is of the kind expected; fails after 90 s. */
    private void waitForCache(Path key, String expected) throws Exception {
        Path lock = root.resolve("dog/target/aot/.training");
        long deadline = System.nanoTime() + 90_000_000_000L;
        String have = null;
        while (true) {
            // the launcher starts its training in the background: the lock may not be there yet right after the
            // command returned, so wait for the expected kind rather than for the lock alone
            if (!Files.exists(lock) && Files.exists(key)) {
                have = kind(key);
                if (have.equals(expected)) return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("dog's AOT cache is '" + have + "' after 90 s, expected '" + expected + "'");
            }
            Thread.sleep(100);
        }
    }

    private static String kind(Path key) throws IOException {
        List<String> lines = Files.readAllLines(key);
        assertEquals(2, lines.size(), "key file: " + lines);
        return lines.get(1);
    }
}
