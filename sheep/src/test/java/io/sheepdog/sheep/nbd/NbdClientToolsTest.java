package io.sheepdog.sheep.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Real Debian NBD clients against a real {@link NbdServer} serving memory disks. */
@Timeout(120)
class NbdClientToolsTest {
    private static final int MIB = 1 << 20;
    private NbdServerFixture fx;
    private MemoryDisk disk;
    @TempDir Path tmp;

    @BeforeEach
    void start() throws IOException {
        disk = MemoryDisk.of("disk", 64 * MIB);
        fx = new NbdServerFixture()
                .add(disk)
                .add(new MemoryDisk("ro", 4 * MIB, true, false, false))
                .add(new MemoryDisk("locked", 4 * MIB, false, false, true))
                .start();
    }

    @AfterEach
    void stop() {
        fx.close();
    }

    @Test
    void qemuImgInfoShowsTheSize() throws Exception {
        Procs.assumeInstalled("qemu-img");
        String out = Procs.run(30, "qemu-img", "info", "--output=json", fx.uri("disk")).ok().out();
        assertTrue(out.contains("\"virtual-size\": 67108864"), out);
    }

    @Test
    void qemuIoPatternWriteAndReadBack() throws Exception {
        Procs.assumeInstalled("qemu-io");
        String out = Procs.run(30, "qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M",
                "-c", "write -P 0x5c 3M 4k", "-c", "read -P 0x5c 3M 4k", fx.uri("disk")).ok().out();
        assertTrue(out.contains("wrote 1048576/1048576 bytes"), out);
        assertTrue(out.contains("read 1048576/1048576 bytes"), out);
        assertFalse(out.contains("Pattern verification failed"), out);
        byte[] s = disk.snapshot();
        for (int i = 0; i < MIB; i++) assertEquals((byte) 0xab, s[i]);
        for (int i = 3 * MIB; i < 3 * MIB + 4096; i++) assertEquals((byte) 0x5c, s[i]);
        assertEquals(0, s[MIB]);
    }

    @Test
    void qemuIoZeroDiscardAndFlush() throws Exception {
        Procs.assumeInstalled("qemu-io");
        byte[] content = new byte[64 * MIB];
        Arrays.fill(content, (byte) 0x11);
        disk.fill(content);
        String out = Procs.run(30, "qemu-io", "-f", "raw", "-c", "write -z -u 0 1M", "-c", "discard 1M 1M",
                "-c", "write -P 0x22 -f 2M 64k", "-c", "flush", "-c", "read -P 0 0 2M", "-c", "read -P 0x11 4M 1M",
                fx.uri("disk")).ok().out();
        assertFalse(out.contains("Pattern verification failed"), out);
        assertFalse(out.contains("error"), out);
        assertTrue(disk.flushes.get() >= 1);
        assertTrue(disk.fuaWrites.get() >= 1, "write -F sends FUA");
        assertFalse(disk.isAllocated(0), "write -z -u may unmap");
        assertFalse(disk.isAllocated(MIB), "discard unmaps");
    }

    @Test
    void qemuImgConvertCompareAndBack() throws Exception {
        Procs.assumeInstalled("qemu-img");
        Path src = tmp.resolve("src.img");
        byte[] content = randomWithHoles(16 * MIB, 7);
        Files.write(src, content);
        Procs.run(60, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src.toString(), fx.uri("disk")).ok();
        String cmp = Procs.run(60, "qemu-img", "compare", "-f", "raw", "-F", "raw", src.toString(), fx.uri("disk")).out();
        // The export is 64 MiB, the file 16 MiB: compare reports identical only if the rest reads as zeroes.
        assertTrue(cmp.contains("Images are identical."), cmp);
        assertArrayEquals(content, Arrays.copyOf(disk.snapshot(), content.length));
        Path back = tmp.resolve("back.img");
        Procs.run(60, "qemu-img", "convert", "-f", "raw", "-O", "raw", fx.uri("disk"), back.toString()).ok();
        assertEquals(sha256(Arrays.copyOf(disk.snapshot(), 64 * MIB)), sha256(Files.readAllBytes(back)));
    }

    @Test
    void qemuImgMapShowsDataAndHoles() throws Exception {
        Procs.assumeInstalled("qemu-io");
        Procs.run(30, "qemu-io", "-f", "raw", "-c", "write -P 1 0 1M", "-c", "write -P 2 8M 1M", fx.uri("disk")).ok();
        String map = Procs.run(30, "qemu-img", "map", "--output=json", "-f", "raw", fx.uri("disk")).ok().out();
        String flat = map.replaceAll("\\s+", "");
        assertTrue(flat.contains("{\"start\":0,\"length\":1048576,\"depth\":0,\"present\":true,\"zero\":false,\"data\":true"), map);
        assertTrue(flat.contains("{\"start\":1048576,\"length\":7340032,\"depth\":0,\"present\":true,\"zero\":true,\"data\":false"), map);
        assertTrue(flat.contains("{\"start\":8388608,\"length\":1048576,\"depth\":0,\"present\":true,\"zero\":false,\"data\":true"), map);
    }

    @Test
    void nbdinfoListsExportsAndMapsAllocation() throws Exception {
        Procs.assumeInstalled("nbdinfo");
        String list = Procs.run(30, "nbdinfo", "--list", "nbd://127.0.0.1:" + fx.port()).ok().out();
        for (String name : new String[] {"disk", "ro", "locked"}) assertTrue(list.contains("export=\"" + name + "\""), list);
        assertTrue(list.contains("is_read_only: true"), list);
        disk.write(128 * 1024, io.netty.buffer.Unpooled.wrappedBuffer(new byte[1000]), false);
        String map = Procs.run(30, "nbdinfo", "--map", fx.uri("disk")).ok().out();
        String[] lines = map.strip().split("\n");
        assertEquals(3, lines.length, map);
        assertArrayEquals(new String[] {"0", "131072", "3", "hole,zero"}, lines[0].trim().split("\\s+"), map);
        assertArrayEquals(new String[] {"131072", "65536", "0", "data"}, lines[1].trim().split("\\s+"), map);
        assertArrayEquals(new String[] {"196608", "66912256", "3", "hole,zero"}, lines[2].trim().split("\\s+"), map);
        String info = Procs.run(30, "nbdinfo", fx.uri("disk")).ok().out();
        assertTrue(info.contains("export-size: 67108864"), info);
        assertTrue(info.contains("can_multi_conn: true"), info);
        assertTrue(info.contains("preferred: 4096"), info);
    }

    @Test
    void nbdcopyRoundTripKeepsEveryByte() throws Exception {
        Procs.assumeInstalled("nbdcopy");
        Path src = tmp.resolve("src.img");
        byte[] content = randomWithHoles(64 * MIB, 11);
        Files.write(src, content);
        Procs.run(60, "nbdcopy", src.toString(), fx.uri("disk")).ok();
        assertEquals(sha256(content), sha256(disk.snapshot()));
        Path dst = tmp.resolve("dst.img");
        Procs.run(60, "nbdcopy", fx.uri("disk"), dst.toString()).ok();
        assertEquals(sha256(content), sha256(Files.readAllBytes(dst)));
    }

    @Test
    void fioRandomWritesQd16VerifyCrc32c() throws Exception {
        Procs.assumeInstalled("fio");
        String out = Procs.run(90, "fio", "--name=randw", "--ioengine=nbd", "--uri=" + fx.uri("disk"),
                "--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=16M", "--verify=crc32c", "--do_verify=1",
                "--verify_fatal=1", "--verify_state_save=0", "--randrepeat=1").out();
        assertTrue(out.contains("err= 0"), out);
        assertFalse(out.contains("verify:"), out);
        assertFalse(out.contains("bad magic"), out);
        String seq = Procs.run(90, "fio", "--name=seqw", "--ioengine=nbd", "--uri=" + fx.uri("disk"),
                "--rw=write", "--bs=1M", "--iodepth=4", "--size=32M", "--verify=crc32c", "--do_verify=1",
                "--verify_fatal=1", "--verify_state_save=0").out();
        assertTrue(seq.contains("err= 0"), seq);
        assertFalse(seq.contains("verify:"), seq);
    }

    @Test
    void readOnlyExportRefusesWritesButReads() throws Exception {
        Procs.assumeInstalled("qemu-io");
        Procs.Result rw = Procs.run(30, "qemu-io", "-f", "raw", "-c", "write 0 4k", fx.uri("ro"));
        assertNotEquals(0, rw.exit());
        assertTrue(rw.out().contains("Permission denied"), rw.out());   // qemu refuses to open it read-write
        assertArrayEquals(new byte[4 * MIB], fx.provider.disk("ro").snapshot());
        String ro = Procs.run(30, "qemu-io", "-r", "-f", "raw", "-c", "read -P 0 0 64k", fx.uri("ro")).ok().out();
        assertTrue(ro.contains("read 65536/65536 bytes"), ro);
    }

    @Test
    void unknownExportFailsWithTheServersMessage() throws Exception {
        Procs.assumeInstalled("qemu-img");
        Procs.Result r = Procs.run(30, "qemu-img", "info", fx.uri("nosuch"));
        assertNotEquals(0, r.exit());
        assertTrue(r.out().contains("no export named 'nosuch'"), r.out());
    }

    @Test
    void secondWriterOfALockedExportIsToldWhy() throws Exception {
        Procs.assumeInstalled("qemu-io");
        try (NbdSocketClient holder = NbdSocketClient.connect(fx.port(), "locked", true)) {
            Procs.Result r = Procs.run(30, "qemu-io", "-f", "raw", "-c", "read 0 512", fx.uri("locked"));
            assertTrue(r.out().contains("locked by another writer"), r.out());
            holder.flush();
        }
    }

    static byte[] randomWithHoles(int size, long seed) {
        byte[] b = new byte[size];
        Random r = new Random(seed);
        r.nextBytes(b);
        for (int i = 0; i < size; i += 4 * MIB) Arrays.fill(b, i + MIB, Math.min(size, i + 2 * MIB), (byte) 0);
        return b;
    }

    static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }
}
