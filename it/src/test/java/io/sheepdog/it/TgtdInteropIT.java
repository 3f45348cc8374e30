package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Debian's tgtd serves a sheepdog VDI over iSCSI through its built-in sheepdog backing store (which speaks the
 * Sheepdog wire protocol to our sheep over TCP); qemu-io's user-space iSCSI initiator (libiscsi) writes and reads it,
 * and dog reads the same bytes straight from the cluster.
 *
 * <p>tgtd (1.0.85) keeps only 4 characters of the port in {@code tcp:HOST:PORT:VDI} (port 17100 becomes 1710), so
 * this cluster's sheep listens on a port below 10000.
 */
@ExtendWith(MiniClusterExtension.class)
class TgtdInteropIT {
    private static final String IQN = "iqn.2026-11.io.sheepdog:alice";
    private static final int MiB = 1024 * 1024;

    @Test
    void iscsiInitiatorReadsAndWritesAVdiThroughTgtd() {
        Tools.require("tgtd", "tgtadm", "qemu-io", "qemu-img");
        try (MiniCluster c = MiniCluster.builder().name("tgtd").nodes(1).copies(1).portsBelow10000().build().start();
             Tgtd tgtd = Tgtd.start(c.dir().resolve("tgtd.log"))) {
            c.dog("vdi", "create", "Alice", "64M").assertOk();

            tgtd.tgtadm("--op", "new", "--mode", "target", "--tid", "1", "-T", IQN).assertOk();
            tgtd.tgtadm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "--bstype", "sheepdog",
                    "--backing-store", "tcp:127.0.0.1:" + c.node(0).port() + ":Alice").assertOk();
            tgtd.tgtadm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL").assertOk();

            String url = "iscsi://127.0.0.1:" + tgtd.iscsiPort() + "/" + IQN + "/1";

            // the LUN has the VDI's size
            CommandResult info = Commands.run(List.of("qemu-img", "info", "--output=json", url)).assertOk();
            assertTrue(info.stdout().contains("\"virtual-size\": " + 64 * MiB), info.stdout());

            qemuIo(url, "write -P 0x5a 0 1M", "wrote 1048576/1048576");
            // a second write across the 4 MiB object boundary
            qemuIo(url, "write -P 0xa5 4190208 8192", "wrote 8192/8192");
            qemuIo(url, "read -P 0x5a 0 1M", "read 1048576/1048576");
            qemuIo(url, "read -P 0xa5 4190208 8192", "read 8192/8192");

            // the same bytes, read from the cluster without tgtd
            byte[] first = c.dog("vdi", "read", "Alice", "0", "1M").assertOk().stdoutBytes();
            byte[] want = new byte[MiB];
            Arrays.fill(want, (byte) 0x5a);
            assertArrayEquals(want, first, "dog vdi read Alice 0 1M after the iSCSI write");
            byte[] across = c.dog("vdi", "read", "Alice", "4190208", "8192").assertOk().stdoutBytes();
            byte[] want2 = new byte[8192];
            Arrays.fill(want2, (byte) 0xa5);
            assertArrayEquals(want2, across, "dog vdi read across the object boundary");
            assertTrue(tgtd.isAlive(), "tgtd still running\n" + tgtd.log());
        }
    }

    private static void qemuIo(String url, String op, String expect) {
        CommandResult r = Commands.run(List.of("qemu-io", "-f", "raw", "-c", op, url), null, Map.of(),
                Duration.ofSeconds(60)).assertOk();
        assertTrue(r.stdout().contains(expect), "qemu-io '" + op + "': " + r);
        assertFalse(r.stdout().contains("Pattern verification failed"), "qemu-io '" + op + "': " + r);
    }
}
