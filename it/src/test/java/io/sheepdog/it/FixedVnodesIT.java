package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.SdResult;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Fixed vnodes on three real sheep started with {@code -V 64} (the original's functional tests 111 and 115): dog
 * formats only with {@code -V}, the ring uses the given counts, {@code dog node vnodes set} changes one node's
 * count through a new epoch, objects move and nothing is lost.
 */
@ExtendWith(MiniClusterExtension.class)
class FixedVnodesIT {
    private static final int MiB = 1 << 20;

    @Test
    void formatNeedsDashVAndVnodesSetMovesObjects() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("fixedvn").nodes(3).copies(2).format(false).nbd(false)
                .sheepArgs("-V", "64").build().start()) {
            CommandResult auto = c.dog("cluster", "format", "-c", "2");
            assertEquals(1, auto.exitCode(), auto.toString());
            assertEquals("Need to specify the option of '-V', because there are vnode strategy of sheep is fixed in the cluster\n",
                    auto.stderr());
            c.dog("cluster", "format", "-V", "-c", "2").assertOk();
            c.waitUntil("every node reports the cluster running", () -> {
                for (SheepNode n : c.liveNodes()) if (c.clusterStatus(n) != SdResult.SUCCESS) return false;
                return true;
            });
            assertTrue(c.dog("cluster", "info", "-v").assertOk().stdout().contains("Cluster vnodes strategy: fixed\n"));
            for (int i = 0; i < 3; i++) assertEquals(64, vnodesOf(c, i));

            c.dog("vdi", "create", "v", "64M").assertOk();
            byte[] data = new byte[32 * MiB];
            new Random(3).nextBytes(data);
            c.dogWithInput(data, "vdi", "write", "v", "0").assertOk();
            int epoch = c.epoch(c.node(0));

            c.dogAt(c.node(1), null, "node", "vnodes", "set", "200").assertOk();
            c.waitUntil("a new epoch on every node", () -> {
                for (SheepNode n : c.liveNodes()) if (c.epoch(n) != epoch + 1) return false;
                return true;
            });
            c.waitForRecovery();
            assertEquals(200, vnodesOf(c, 1));
            assertEquals(64, vnodesOf(c, 0));
            assertArrayEquals(data, c.dogAt(c.node(2), null, "vdi", "read", "v", "0", Integer.toString(data.length))
                    .assertOk().stdoutBytes());
            assertEquals("finish check&repair v\n", c.dog("vdi", "check", "v").assertOk().stdout());

            CommandResult bad = c.dog("node", "vnodes", "set", "0");
            assertEquals(64, bad.exitCode(), bad.toString());
        }
    }

    /** The vnodes of node {@code i} in {@code dog node list -r} ("id host:port vnodes zone"). */
    private static int vnodesOf(MiniCluster c, int i) {
        String addr = c.node(i).address();
        for (String line : c.dog("node", "list", "-r").assertOk().stdout().split("\n")) {
            String[] f = line.split(" ");
            if (f.length == 4 && f[1].equals(addr)) return Integer.parseInt(f[2]);
        }
        throw new AssertionError("node " + addr + " not in the node list");
    }
}
