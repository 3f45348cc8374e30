package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.nbd.NbdBootTest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The seed's own client: QEMU 5.2's {@code sheepdog:} block driver (qemu-img, qemu-io, qemu-nbd built by
 * tools/build-qemu52.sh) against a 3-node cluster of our sheep with default memory settings (bin/sheep's 96 MiB heap),
 * speaking the original Sheepdog protocol. Every read is checked against what was written.
 */
@ExtendWith(MiniClusterExtension.class)
class Qemu52DriverIT {
    private static final long MiB = 1 << 20;

    /** The seed's workflow exactly, then the rest of what qemu-img does with the driver. */
    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void theSeedsWorkflowAndQemuImgCommands() throws Exception {
        Qemu52.require();
        try (MiniCluster c = MiniCluster.builder().name("q52-seed").nodes(3).copies(3).build().start()) {
            SheepNode n0 = c.node(0), n1 = c.node(1), n2 = c.node(2);
            Qemu52.img("create", Qemu52.uri(n0, "Alice"), "256G").assertOk();
            String list = c.dog("vdi", "list", "-r").assertOk().stdout();
            assertTrue(list.contains("Alice") && list.contains(Long.toString(256L << 30)), list);

            Qemu52.ioOk(Qemu52.uri(n1, "Alice"), "write -P 0x5a 0 8M", "write -P 0x5b 255G 4M");
            // snapshot 1, then the working VDI moves on
            Qemu52.img("snapshot", "-c", "first", Qemu52.uri(n0, "Alice")).assertOk();
            Qemu52.ioOk(Qemu52.uri(n2, "Alice"), "write -P 0x77 0 4M");
            // a clone of snapshot 1: copy-on-write from it
            Qemu52.img("create", "-b", Qemu52.uri(n0, "Alice") + ":1", Qemu52.uri(n0, "Charlie")).assertOk();
            Qemu52.ioOk(Qemu52.uri(n1, "Charlie"), "read -P 0x5a 0 8M", "read -P 0x5b 255G 4M");
            Qemu52.ioOk(Qemu52.uri(n1, "Charlie"), "write -P 0x43 4M 4k");
            Qemu52.ioOk(Qemu52.uri(n2, "Charlie"), "read -P 0x5a 0 4M", "read -P 0x43 4M 4k", "read -P 0x5a 4100k 4092k");
            Qemu52.ioOk(Qemu52.uri(n0, "Alice"), "read -P 0x77 0 4M", "read -P 0x5a 4M 4M");
            Qemu52.ioOk(Qemu52.uri(n0, "Alice") + ":1", "read -P 0x5a 0 8M");
            assertTrue(c.dog("vdi", "tree").assertOk().stdout().contains("Charlie"), "the clone hangs off the snapshot");

            // qemu-img snapshot -l / -a / -d
            String snaps = Qemu52.img("snapshot", "-l", Qemu52.uri(n0, "Alice")).assertOk().stdout();
            assertTrue(snaps.contains("first"), snaps);
            Qemu52.img("snapshot", "-a", "first", Qemu52.uri(n0, "Alice")).assertOk();
            Qemu52.ioOk(Qemu52.uri(n1, "Alice"), "read -P 0x5a 0 8M");
            Qemu52.img("snapshot", "-c", "second", Qemu52.uri(n0, "Alice")).assertOk();
            Qemu52.img("snapshot", "-d", "second", Qemu52.uri(n0, "Alice")).assertOk();
            snaps = Qemu52.img("snapshot", "-l", Qemu52.uri(n0, "Alice")).assertOk().stdout();
            assertFalse(snaps.contains("second"), snaps);

            // info, map, resize
            String info = Qemu52.img("info", Qemu52.uri(n0, "Alice")).assertOk().stdout();
            assertTrue(info.contains("virtual size: 256 GiB"), info);
            String map = Qemu52.img("map", "--output=json", Qemu52.uri(n0, "Charlie")).assertOk().stdout();
            assertTrue(map.contains("\"data\": true"), map);
            Qemu52.img("resize", Qemu52.uri(n0, "Charlie"), "300G").assertOk();
            info = Qemu52.img("info", Qemu52.uri(n2, "Charlie")).assertOk().stdout();
            assertTrue(info.contains("virtual size: 300 GiB"), info);
            Qemu52.ioOk(Qemu52.uri(n2, "Charlie"), "write -P 0x31 299G 1M", "read -P 0x31 299G 1M", "read -P 0x5a 0 4M");

            // qemu-img convert in and out, checked by digest
            Path src = c.dir().resolve("src.raw"), back = c.dir().resolve("back.raw");
            byte[] data = new byte[(int) (48 * MiB)];
            new Random(52).nextBytes(data);
            java.util.Arrays.fill(data, (int) (20 * MiB), (int) (28 * MiB), (byte) 0); // a hole in the middle
            Files.write(src, data);
            Qemu52.img("convert", "-f", "raw", "-O", "raw", src.toString(), Qemu52.uri(n0, "Dave")).assertOk();
            Qemu52.img("convert", "-f", "raw", "-O", "raw", Qemu52.uri(n1, "Dave"), back.toString()).assertOk();
            assertEquals(sha256(src), sha256(back), "the image comes back out as it went in");

            // discard and write -z read back as zeros; the data around them stays
            Qemu52.ioOk(Qemu52.uri(n0, "Dave"), "discard 4M 4M", "write -z 12M 1M");
            byte[] expect = data.clone();
            java.util.Arrays.fill(expect, (int) (4 * MiB), (int) (8 * MiB), (byte) 0);
            java.util.Arrays.fill(expect, (int) (12 * MiB), (int) (13 * MiB), (byte) 0);
            Files.delete(back);
            Qemu52.img("convert", "-f", "raw", "-O", "raw", Qemu52.uri(n2, "Dave"), back.toString()).assertOk();
            assertArrayEquals(expect, Files.readAllBytes(back));
            c.dog("vdi", "check", "Dave").assertOk();
        }
    }

    /**
     * Large single requests and bursts: QEMU sends a 128 MiB read as 32 reads of 4 MiB at once on one connection, and
     * hundreds of aio writes; with the default 96 MiB heap every one must be answered, right. Then again with a node
     * killed while they run, and checked through every node after it is back.
     */
    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void largeRequestsAndBurstsSucceedWithDefaultMemoryEvenWithANodeKilled() throws Exception {
        Qemu52.require();
        try (MiniCluster c = MiniCluster.builder().name("q52-large").nodes(3).copies(3).build().start()) {
            SheepNode n0 = c.node(0), n1 = c.node(1), n2 = c.node(2);
            Qemu52.img("create", Qemu52.uri(n0, "big"), "1G").assertOk();
            for (int round = 0; round < 3; round++) {
                byte p = (byte) (0x5a + round);
                Qemu52.ioOk(Qemu52.uri(n1, "big"), String.format("write -P 0x%02x 0 128M", p),
                        String.format("read -P 0x%02x 0 128M", p));
            }
            Qemu52.ioOk(Qemu52.uri(n0, "big"), "write -P 0x21 0 512M", "read -P 0x21 0 512M");

            List<String> burst = new ArrayList<>();
            for (int i = 0; i < 400; i++) burst.add(String.format("aio_write -P 0x%02x %d 64k", patternOf(i), (long) i * 256 * 1024));
            burst.add("aio_flush");
            Qemu52.ioOk(Qemu52.uri(n2, "big"), burst.toArray(String[]::new));
            List<String> check = new ArrayList<>();
            for (int i = 0; i < 400; i++) check.add(String.format("read -P 0x%02x %d 64k", patternOf(i), (long) i * 256 * 1024));
            Qemu52.ioOk(Qemu52.uri(n0, "big"), check.toArray(String[]::new));

            // a node dies while a large write and read run through another
            Thread killer = Thread.ofVirtual().start(() -> {
                try {
                    Thread.sleep(1500);
                    n2.kill9();
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
            });
            Qemu52.ioOk(Qemu52.uri(n0, "big"), "write -P 0x66 0 512M", "read -P 0x66 0 512M");
            killer.join();
            assertFalse(n2.isAlive());
            Qemu52.ioOk(Qemu52.uri(n1, "big"), "write -P 0x67 512M 256M", "read -P 0x66 0 512M", "read -P 0x67 512M 256M");
            n2.start();
            c.waitForNodes(3);
            c.waitForRecovery();
            for (SheepNode n : List.of(n0, n1, n2)) {
                Qemu52.ioOk(Qemu52.uri(n, "big"), "read -P 0x66 0 512M", "read -P 0x67 512M 256M");
            }
            c.dog("vdi", "check", "big").assertOk();
        }
    }

    /**
     * Two clients on one VDI at once (QEMU 5.2's driver takes no lock at open: that is how it migrates), each writing
     * its own half with its own patterns through its own node, while the third node is killed; both halves read back
     * right through every node.
     */
    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void twoClientsOnOneVdiWhileANodeDies() throws Exception {
        Qemu52.require();
        try (MiniCluster c = MiniCluster.builder().name("q52-two").nodes(3).copies(3).build().start()) {
            SheepNode n0 = c.node(0), n1 = c.node(1), n2 = c.node(2);
            Qemu52.img("create", Qemu52.uri(n0, "shared"), "256M").assertOk();
            List<String> a = new ArrayList<>(), b = new ArrayList<>(), checkA = new ArrayList<>(), checkB = new ArrayList<>();
            for (int round = 0; round < 4; round++) {
                for (int i = 0; i < 128; i++) {
                    long off = (long) i * MiB;
                    a.add(String.format("aio_write -P 0x%02x %d 512k", 0x10 + round, off));
                    b.add(String.format("aio_write -P 0x%02x %d 512k", 0x20 + round, off + 512 * 1024));
                }
                a.add("aio_flush");
                b.add("aio_flush");
            }
            for (int i = 0; i < 128; i++) {
                checkA.add(String.format("read -P 0x13 %d 512k", (long) i * MiB));
                checkB.add(String.format("read -P 0x23 %d 512k", (long) i * MiB + 512 * 1024));
            }
            var first = java.util.concurrent.CompletableFuture.supplyAsync(
                    () -> Qemu52.ioOk(Qemu52.uri(n0, "shared"), a.toArray(String[]::new)));
            var second = java.util.concurrent.CompletableFuture.supplyAsync(
                    () -> Qemu52.ioOk(Qemu52.uri(n1, "shared"), b.toArray(String[]::new)));
            Thread.sleep(1000);
            n2.kill9();
            first.get(5, TimeUnit.MINUTES);
            second.get(5, TimeUnit.MINUTES);
            Qemu52.ioOk(Qemu52.uri(n1, "shared"), checkA.toArray(String[]::new));
            Qemu52.ioOk(Qemu52.uri(n0, "shared"), checkB.toArray(String[]::new));
            n2.start();
            c.waitForNodes(3);
            c.waitForRecovery();
            Qemu52.ioOk(Qemu52.uri(n2, "shared"), checkA.toArray(String[]::new));
            Qemu52.ioOk(Qemu52.uri(n2, "shared"), checkB.toArray(String[]::new));
            c.dog("vdi", "check", "shared").assertOk();
        }
    }

    /**
     * {@code qemu-system-x86_64 -hda sheepdog:Alice}: QEMU 7.2 has no sheepdog driver, so QEMU 5.2's qemu-nbd serves
     * the VDI through the driver and the VM boots from that.
     */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aVmBootsThroughTheSheepdogDriver() throws Exception {
        Qemu52.require();
        Tools.require("qemu-system-x86_64");
        try (MiniCluster c = MiniCluster.builder().name("q52-boot").nodes(3).copies(3).build().start()) {
            // the disk image (a boot sector that prints a marker on the serial console) goes in through the driver
            Path image = c.dir().resolve("boot.img");
            byte[] disk = new byte[(int) (16 * MiB)];
            byte[] sector = NbdBootTest.bootSector(NbdBootTest.MARKER);
            System.arraycopy(sector, 0, disk, 0, sector.length);
            Files.write(image, disk);
            Qemu52.img("convert", "-f", "raw", "-O", "raw", image.toString(), Qemu52.uri(c.node(1), "Alice")).assertOk();
            try (Qemu52.Server nbd = Qemu52.serve(c.node(2), "Alice", c.dir())) {
                String console = NbdBootTest.bootAndWaitForMarker("nbd://127.0.0.1:" + nbd.port() + "/Alice", NbdBootTest.MARKER, 120);
                assertTrue(console.contains(NbdBootTest.MARKER), console);
            }
        }
    }

    private static int patternOf(int i) {
        return 1 + i % 0x6f;
    }

    private static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }
}
