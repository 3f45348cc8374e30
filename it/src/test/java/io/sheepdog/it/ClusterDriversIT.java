package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.cluster.zookeeper.ZooKeeperServerProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * One fault scenario over every cluster driver, each on its real server: a local rendezvous directory, a standalone
 * ZooKeeper server process, a private corosync. Three sheep with three copies; one is killed with -9 while data is
 * written, comes back, and recovery brings every object back to full redundancy with identical copies.
 */
@ExtendWith(MiniClusterExtension.class)
class ClusterDriversIT {
    private static final int MiB = 1 << 20;

    @ParameterizedTest(name = "driver {0}")
    @ValueSource(strings = {"local", "zookeeper", "corosync"})
    void killRejoinRecoverUnderEveryDriver(String driver) throws Exception {
        Path tmp = Files.createTempDirectory("sdit-driver-");
        try (DriverServer server = DriverServer.start(driver, tmp, ",timeout=5000")) {
            String spec = server.spec();
            MiniCluster.Builder b = MiniCluster.builder().name("drv-" + driver).nodes(3).copies(3).nbd(false);
            if (spec != null) b.driver(spec);
            try (MiniCluster c = b.build().start()) {
                c.dog("vdi", "create", "Alice", "64M").assertOk();
                byte[] first = random(8 * MiB, 1);
                c.dogWithInput(first, "vdi", "write", "Alice", "0", Integer.toString(first.length)).assertOk();

                c.node(1).kill9();
                c.waitForNodes(2);
                // I/O goes on with a node gone: writes land on the two survivors
                byte[] second = random(8 * MiB, 2);
                c.dogWithInput(second, "vdi", "write", "Alice", Integer.toString(16 * MiB), Integer.toString(second.length)).assertOk();

                c.node(1).restart();
                c.waitForNodes(3);
                c.waitUntil("recovery finished on every node", () -> {
                    for (SheepNode n : c.liveNodes()) {
                        CommandResult r = c.dogAt(n, null, "node", "recovery");
                        if (!r.ok() || r.stdout().lines().count() != 2) return false;
                    }
                    return true;
                });
                for (SheepNode n : c.nodes()) {
                    CommandResult r1 = c.dogAt(n, null, "vdi", "read", "Alice", "0", Integer.toString(first.length)).assertOk();
                    assertArrayEquals(first, r1.stdoutBytes(), "first write read through node " + n.index());
                    CommandResult r2 = c.dogAt(n, null, "vdi", "read", "Alice", Integer.toString(16 * MiB),
                            Integer.toString(second.length)).assertOk();
                    assertArrayEquals(second, r2.stdoutBytes(), "write made while node 1 was down, read through node " + n.index());
                }
                // every data object is back on all three nodes (copies=3 on 3 zones)
                for (int idx : new int[] {0, 1, 4, 5}) {
                    for (SheepNode n : c.nodes()) {
                        try (var files = Files.list(n.storeDir().resolve("obj"))) {
                            String suffix = String.format("%08x", idx);
                            assertTrue(files.anyMatch(p -> p.getFileName().toString().matches("00[0-9a-f]{6}" + suffix)),
                                    "node " + n.index() + " holds data object " + idx);
                        }
                    }
                }
                CommandResult check = c.dog("cluster", "check").assertOk();
                assertTrue(!check.stdout().contains("fixed") && !check.stdout().contains("no majority"),
                        "all copies were already identical:\n" + check.stdout());
                assertEquals(3, c.nodeList(c.node(0)).size());
            }
        }
    }

    /**
     * ZooKeeper restarted under a running cluster: while it is gone every node says why in {@code dog cluster info}
     * and writes go on within the driver's lease; back within the session timeout, nothing changed (same epoch) and
     * the write made during the outage reads back.
     */
    @org.junit.jupiter.api.Test
    void zooKeeperRestartUnderARunningCluster() throws Exception {
        Path tmp = Files.createTempDirectory("sdit-zk-");
        try (ZooKeeperServerProcess zk = new ZooKeeperServerProcess(tmp.resolve("zk"))) {
            zk.start();
            try (MiniCluster c = MiniCluster.builder().name("zk-restart").nodes(3).copies(3).nbd(false)
                    .driver("zookeeper:" + zk.address() + ",timeout=40000").build().start()) {
                c.dog("vdi", "create", "Alice", "16M").assertOk();
                byte[] a = random(MiB, 3);
                c.dogWithInput(a, "vdi", "write", "Alice", "0", Integer.toString(a.length)).assertOk();
                String epochBefore = c.dog("cluster", "info", "-r").assertOk().stdout();

                zk.kill();
                c.waitUntil("every node reports the driver problem", () -> {
                    for (SheepNode n : c.liveNodes()) {
                        if (!c.dogAt(n, null, "cluster", "info").stdout().contains("Cluster driver error")) return false;
                    }
                    return true;
                });
                // a write during the outage goes through within the driver's lease: the session cannot have expired
                // yet, so no node can have seen another leave (past the lease, writes wait: ZooKeeperOutageIT)
                byte[] during = random(4096, 4);
                var write = java.util.concurrent.CompletableFuture.supplyAsync(
                        () -> c.dogWithInput(during, "vdi", "write", "Alice", "0", "4096"));
                write.get(10, java.util.concurrent.TimeUnit.SECONDS).assertOk();

                zk.start();
                assertArrayEquals(during, c.dog("vdi", "read", "Alice", "0", "4096").assertOk().stdoutBytes());
                c.waitUntil("the cluster is healthy again", () -> {
                    for (SheepNode n : c.liveNodes()) {
                        if (!c.dogAt(n, null, "cluster", "info").stdout().contains("running")) return false;
                    }
                    return true;
                });
                byte[] b = random(MiB, 5);
                c.dogWithInput(b, "vdi", "write", "Alice", "0", Integer.toString(b.length)).assertOk();
                assertArrayEquals(b, c.dog("vdi", "read", "Alice", "0", Integer.toString(b.length)).assertOk().stdoutBytes());
                String first = epochBefore.lines().filter(l -> l.matches("\\d+ \\d+ .*")).findFirst().orElse("");
                String now = c.dog("cluster", "info", "-r").assertOk().stdout();
                assertTrue(now.lines().anyMatch(l -> l.equals(first)) && now.lines().filter(l -> l.matches("\\d+ \\d+ .*")).count()
                        == epochBefore.lines().filter(l -> l.matches("\\d+ \\d+ .*")).count(),
                        "an outage shorter than the session timeout changes no epoch:\nbefore\n" + epochBefore + "\nafter\n" + now);
                assertEquals(3, c.liveNodes().size());
            }
        }
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }
}
