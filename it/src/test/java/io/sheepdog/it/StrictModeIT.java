package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@code dog cluster format -t} (strict): with fewer zones than copies, writes halt instead of landing on fewer copies;
 * reads go on, and writes resume when the zone is back (the original's functional test 080, with replicas).
 */
@ExtendWith(MiniClusterExtension.class)
class StrictModeIT {
    private static final int MiB = 1 << 20;

    @Test
    void writesHaltWhileAZoneIsMissingAndResumeWhenItReturns() {
        try (MiniCluster c = MiniCluster.builder().name("strict").nodes(2).format(false).nbd(false).build().start()) {
            c.dog("cluster", "format", "-c", "2", "-t").assertOk();
            c.waitUntilRunning();
            c.dog("vdi", "create", "v", "16M").assertOk();
            byte[] a = new byte[2 * MiB];
            Arrays.fill(a, (byte) 0x11);
            c.dogWithInput(a, "vdi", "write", "v", "0").assertOk();

            c.node(1).kill9();
            c.waitForNodes(1);
            byte[] b = new byte[MiB];
            Arrays.fill(b, (byte) 0x22);
            CommandResult halted = c.dogWithInput(b, "vdi", "write", "v", "0");
            assertNotEquals(0, halted.exitCode(), halted.toString());
            assertTrue(halted.stderr().contains("IO has halted as there are not enough living nodes"), "stderr: " + halted.stderr() + " rc " + halted.exitCode());
            CommandResult create = c.dog("vdi", "create", "w", "16M");
            assertNotEquals(0, create.exitCode(), create.toString());
            assertTrue(create.stderr().contains("Failed to write to requested VDI"), create.toString());
            assertArrayEquals(a, c.dog("vdi", "read", "v", "0", Integer.toString(a.length)).assertOk().stdoutBytes(),
                    "reads go on, and the refused write changed nothing");

            c.node(1).start();
            c.waitForNodes(2);
            c.waitForRecovery();
            c.dogWithInput(b, "vdi", "write", "v", "0").assertOk();
            byte[] want = a.clone();
            System.arraycopy(b, 0, want, 0, b.length);
            assertArrayEquals(want, c.dogAt(c.node(1), null, "vdi", "read", "v", "0", Integer.toString(a.length))
                    .assertOk().stdoutBytes());
            assertEquals("finish check&repair v\n", c.dog("vdi", "check", "v").assertOk().stdout());
        }
    }
}
