package io.sheepdog.dog;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BackupStreamTest {
    @TempDir
    Path dir;

    @Test
    void diffRangeTrimsIdenticalSectors() {
        byte[] a = new byte[4096];
        byte[] b = a.clone();
        assertNull(BackupStream.diffRange(a, b));
        b[1000] = 1;            // sector 1
        b[2600] = 1;            // sector 5
        assertArrayEquals(new int[] {512, 3072}, BackupStream.diffRange(a, b));
        byte[] c = a.clone();
        c[4095] = 7;
        assertArrayEquals(new int[] {3584, 4096}, BackupStream.diffRange(a, c));
        // a shorter "from" (the older snapshot was smaller) differs where it has no data
        assertArrayEquals(new int[] {2048, 4096}, BackupStream.diffRange(new byte[2048], a));
        // a partial last sector
        byte[] x = new byte[1000], y = new byte[1000];
        y[999] = 1;
        assertArrayEquals(new int[] {512, 1000}, BackupStream.diffRange(x, y));
    }

    private static byte[] stream(boolean end) throws Exception {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        BackupStream.writeHeader(o);
        byte[] d = new byte[1024];
        Arrays.fill(d, (byte) 3);
        BackupStream.writeRecord(o, 2, 512, d, 0, 1024);
        BackupStream.writeRecord(o, 0, 0, d, 0, 512);
        if (end) BackupStream.writeEnd(o);
        return o.toByteArray();
    }

    @Test
    void roundTripAndLayout() throws Exception {
        byte[] s = stream(true);
        assertEquals(8 + 16 + 1024 + 16 + 512 + 16, s.length);
        assertArrayEquals(new byte[] {1, 0, 0, 0, (byte) 0x92, 0x11, (byte) 0x92, 0x11}, Arrays.copyOf(s, 8));
        Path spool = dir.resolve("spool");
        assertEquals(2, Backup.spoolAndValidate(new ByteArrayInputStream(s), spool, 4096, 3));
        assertArrayEquals(s, Files.readAllBytes(spool));
    }

    @Test
    void badStreamsAreRefused() throws Exception {
        Path spool = dir.resolve("spool");
        byte[] noEnd = stream(false);
        var e = assertThrows(BackupStream.BadStream.class, () -> Backup.spoolAndValidate(new ByteArrayInputStream(noEnd), spool, 4096, 3));
        assertEquals("The VDI backup is truncated", e.getMessage());
        byte[] cutData = Arrays.copyOf(stream(true), 8 + 16 + 100);
        assertThrows(BackupStream.BadStream.class, () -> Backup.spoolAndValidate(new ByteArrayInputStream(cutData), spool, 4096, 3));
        e = assertThrows(BackupStream.BadStream.class, () -> Backup.spoolAndValidate(new ByteArrayInputStream(new byte[0]), spool, 4096, 3));
        assertEquals("The input is empty, not a VDI backup", e.getMessage());
        e = assertThrows(BackupStream.BadStream.class,
                () -> Backup.spoolAndValidate(new ByteArrayInputStream("hello, world".getBytes()), spool, 4096, 3));
        assertEquals("The input is not a VDI backup", e.getMessage());
        // records that do not fit the VDI being restored
        e = assertThrows(BackupStream.BadStream.class, () -> Backup.spoolAndValidate(new ByteArrayInputStream(stream(true)), spool, 4096, 2));
        assertTrue(e.getMessage().contains("beyond the end of the VDI"), e.getMessage());
        e = assertThrows(BackupStream.BadStream.class, () -> Backup.spoolAndValidate(new ByteArrayInputStream(stream(true)), spool, 1024, 3));
        assertTrue(e.getMessage().startsWith("The VDI backup has a bad record"), e.getMessage());
    }
}
