package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.nbd.NbdBootTest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * VDIs over NBD with the real clients from Debian, on a real cluster: images copied in and out with qemu-img,
 * allocation maps, nbdcopy, fio with verification, snapshots exported read-only, and a VM that boots from a VDI.
 */
@ExtendWith(MiniClusterExtension.class)
class NbdVdiIT {
    private static final int MiB = 1024 * 1024;

    private static String uri(SheepNode n, String export) { return "nbd://127.0.0.1:" + n.nbdPort() + "/" + export; }

    private static CommandResult run(String... cmd) { return Commands.run(List.of(cmd)); }

    @Test
    void imagesInAndOutMapsCopiesAndVerifiedIo() throws Exception {
        Tools.require("qemu-img", "nbdcopy", "nbdinfo", "fio");
        try (MiniCluster c = MiniCluster.builder().name("nbdvdi").nodes(3).copies(3).build().start()) {
            c.dog("vdi", "create", "Alice", "64M").assertOk();
            Path src = c.dir().resolve("src.raw");
            byte[] img = new byte[32 * MiB];
            new Random(5).nextBytes(img);
            Files.write(src, img);
            // in through one node, compared and out through another: any sheep serves any VDI
            run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src.toString(), uri(c.node(0), "Alice")).assertOk();
            run("qemu-img", "compare", "-f", "raw", "-F", "raw", src.toString(), uri(c.node(1), "Alice")).assertOk();
            Path out = c.dir().resolve("out.raw");
            run("qemu-img", "convert", "-f", "raw", "-O", "raw", uri(c.node(2), "Alice"), out.toString()).assertOk();
            byte[] back = Files.readAllBytes(out);
            assertEquals(64 * MiB, back.length);
            assertTrue(java.util.Arrays.equals(img, 0, img.length, back, 0, img.length), "image copied out matches");
            assertTrue(java.util.Arrays.equals(new byte[32 * MiB], 0, 32 * MiB, back, 32 * MiB, 64 * MiB), "tail reads as zeros");

            // the allocation map follows the thin-provisioned object table: 32 MiB written = 8 objects, rest a hole
            CommandResult map = run("nbdinfo", "--map", uri(c.node(0), "Alice")).assertOk();
            assertTrue(map.stdout().lines().anyMatch(l -> l.matches("\\s*0\\s+33554432\\s+0\\s+data.*")), map.stdout());
            assertTrue(map.stdout().lines().anyMatch(l -> l.matches("\\s*33554432\\s+33554432\\s+3\\s+hole,zero.*")), map.stdout());

            // nbdcopy round trip through a second VDI
            c.dog("vdi", "create", "Copy", "64M").assertOk();
            run("nbdcopy", uri(c.node(1), "Alice"), uri(c.node(2), "Copy")).assertOk();
            run("qemu-img", "compare", "-f", "raw", "-F", "raw", uri(c.node(0), "Alice"), uri(c.node(0), "Copy")).assertOk();

            // fio writes and verifies with crc32c
            CommandResult fio = run("fio", "--name=verify", "--ioengine=nbd", "--uri=" + uri(c.node(0), "Copy"), "--rw=randwrite",
                    "--bs=4k", "--iodepth=16", "--size=8m", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--verify_state_save=0");
            fio.assertOk();
            assertFalse(fio.stdout().contains("verify: bad"), fio.stdout());
            // 4 KiB .. 3 MiB writes, many across 4 MiB object boundaries (each object's part is copied out of the
            // network buffers on its own), then read back and verified
            CommandResult spans = run("fio", "--name=spans", "--ioengine=nbd", "--uri=" + uri(c.node(1), "Copy"),
                    "--rw=randwrite", "--bsrange=4k-3m", "--iodepth=4", "--size=24m", "--verify=crc32c", "--do_verify=1",
                    "--verify_fatal=1", "--verify_state_save=0");
            spans.assertOk();
            assertFalse(spans.stdout().contains("verify: bad"), spans.stdout());
        }
    }

    @Test
    void snapshotsAreReadOnlyExportsAndAVmBootsFromAVdi() throws Exception {
        Tools.require("qemu-io", "qemu-system-x86_64");
        try (MiniCluster c = MiniCluster.builder().name("nbdboot").nodes(1).copies(1).build().start()) {
            c.dog("vdi", "create", "boot", "16M").assertOk();
            byte[] sector = NbdBootTest.bootSector(NbdBootTest.MARKER);
            c.dogWithInput(sector, "vdi", "write", "boot", "0", Integer.toString(sector.length)).assertOk();
            String console = NbdBootTest.bootAndWaitForMarker(uri(c.node(0), "boot"), NbdBootTest.MARKER, 90);
            assertTrue(console.contains(NbdBootTest.MARKER), console);

            // snapshot, then overwrite the working VDI: NAME@TAG still serves the snapshot's bytes and refuses writes
            run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 1M", uri(c.node(0), "boot")).assertOk();
            c.dog("vdi", "snapshot", "-s", "before", "boot").assertOk();
            run("qemu-io", "-f", "raw", "-c", "write -P 0x22 0 1M", uri(c.node(0), "boot")).assertOk();
            run("qemu-io", "-f", "raw", "-r", "-c", "read -P 0x11 0 1M", uri(c.node(0), "boot@before")).assertOk();
            run("qemu-io", "-f", "raw", "-c", "read -P 0x22 0 1M", uri(c.node(0), "boot")).assertOk();
            CommandResult w = run("qemu-io", "-f", "raw", "-c", "write -P 0x33 0 4k", uri(c.node(0), "boot@before"));
            assertTrue(!w.ok() || w.stdout().contains("failed") || w.stderr().contains("read-only") || w.stdout().contains("read-only"),
                    "writing a snapshot export must fail: " + w);
            run("qemu-io", "-f", "raw", "-r", "-c", "read -P 0x11 0 1M", uri(c.node(0), "boot@1")).assertOk();
        }
    }
}
