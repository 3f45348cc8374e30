package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
            c.waitUntilRunning();
            assertTrue(c.dog("cluster", "info", "-v").assertOk().stdout().contains("Cluster vnodes strategy: fixed\n"));
            for (int i = 0; i < 3; i++) assertEquals(64, c.vnodesOf(c.node(i)));

            c.dog("vdi", "create", "v", "64M").assertOk();
            byte[] data = new byte[32 * MiB];
            new Random(3).nextBytes(data);
            c.dogWithInput(data, "vdi", "write", "v", "0").assertOk();
            int epoch = c.epoch(c.node(0));

            c.dogAt(c.node(1), null, "node", "vnodes", "set", "200").assertOk();
            c.waitForEpoch(epoch + 1);
            c.waitForRecovery();
            assertEquals(200, c.vnodesOf(c.node(1)));
            assertEquals(64, c.vnodesOf(c.node(0)));
            assertArrayEquals(data, c.dogAt(c.node(2), null, "vdi", "read", "v", "0", Integer.toString(data.length))
                    .assertOk().stdoutBytes());
            assertEquals("finish check&repair v\n", c.dog("vdi", "check", "v").assertOk().stdout());

            CommandResult bad = c.dog("node", "vnodes", "set", "0");
            assertEquals(64, bad.exitCode(), bad.toString());
        }
    }
}
