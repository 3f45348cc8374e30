package io.sheepdog.sheep.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A virtual machine boots from an NBD export: QEMU's BIOS reads the boot sector over NBD, runs it, and the code
 * prints a marker on COM1. {@link #bootAndWaitForMarker} is the reusable check (the same run against a VDI export).
 */
public class NbdBootTest {
    public static final String MARKER = "SHEEPDOG-NBD-BOOT-OK";

    /**
     * A 512-byte x86 real-mode boot sector that writes {@code message} to COM1 (port 0x3f8) and halts.
     * <pre>
     *   7c00 fa          cli
     *   7c01 fc          cld
     *   7c02 31 c0       xor  ax, ax
     *   7c04 8e d8       mov  ds, ax
     *   7c06 be 17 7c    mov  si, 0x7c17        ; message
     *   7c09 ba f8 03    mov  dx, 0x3f8         ; COM1 data port
     *   7c0c ac          lodsb                  ; next: al = [si++]
     *   7c0d 84 c0       test al, al
     *   7c0f 74 03       jz   7c14
     *   7c11 ee          out  dx, al
     *   7c12 eb f8       jmp  7c0c
     *   7c14 f4          hlt                    ; halt forever (interrupts are off)
     *   7c15 eb fd       jmp  7c14
     *   7c17             message, NUL
     *   7dfe 55 aa       boot signature
     * </pre>
     */
    public static byte[] bootSector(String message) {
        byte[] code = {
            (byte) 0xfa, (byte) 0xfc, 0x31, (byte) 0xc0, (byte) 0x8e, (byte) 0xd8,
            (byte) 0xbe, 0x17, 0x7c, (byte) 0xba, (byte) 0xf8, 0x03,
            (byte) 0xac, (byte) 0x84, (byte) 0xc0, 0x74, 0x03, (byte) 0xee, (byte) 0xeb, (byte) 0xf8,
            (byte) 0xf4, (byte) 0xeb, (byte) 0xfd,
        };
        byte[] msg = (message + "\r\n").getBytes(StandardCharsets.US_ASCII);
        if (code.length + msg.length + 1 > 510) throw new IllegalArgumentException("message too long");
        byte[] sector = new byte[512];
        System.arraycopy(code, 0, sector, 0, code.length);
        System.arraycopy(msg, 0, sector, 0x17, msg.length);
        sector[510] = 0x55;
        sector[511] = (byte) 0xaa;
        return sector;
    }

    /**
     * Boots QEMU (TCG, no display, serial on stdout) from {@code nbdUri} and returns its output once
     * {@code marker} appears; fails if it does not within {@code seconds}. QEMU is killed by its handle in any case.
     */
    public static String bootAndWaitForMarker(String nbdUri, String marker, int seconds) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(List.of("qemu-system-x86_64", "-accel", "tcg", "-nographic", "-no-reboot",
                "-m", "32", "-drive", "file=" + nbdUri + ",format=raw"))
                .redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .start();
        ByteArrayOutputStream seen = new ByteArrayOutputStream();
        Thread reader = Thread.ofVirtual().start(() -> {
            try (InputStream in = p.getInputStream()) {
                byte[] buf = new byte[4096];
                int n;
                while ((n = in.read(buf)) > 0) {
                    synchronized (seen) {
                        seen.write(buf, 0, n);
                        seen.notifyAll();
                    }
                }
            } catch (IOException ignored) {
                // the process was killed
            }
        });
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            synchronized (seen) {
                while (!seen.toString(StandardCharsets.ISO_8859_1).contains(marker)) {
                    long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                    if (left <= 0 || (!p.isAlive() && !reader.isAlive())) {
                        throw new AssertionError("no '" + marker + "' from the VM in " + seconds + " s (qemu "
                                + (p.isAlive() ? "running" : "exited " + p.exitValue()) + "); output:\n"
                                + seen.toString(StandardCharsets.ISO_8859_1));
                    }
                    seen.wait(Math.min(left, 200));
                }
                return seen.toString(StandardCharsets.ISO_8859_1);
            }
        } finally {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            reader.join(5000);
        }
    }

    @Test
    @Timeout(90)
    void vmBootsFromAnNbdExport() throws Exception {
        Procs.assumeInstalled("qemu-system-x86_64");
        MemoryDisk boot = MemoryDisk.of("boot", 1 << 20);
        byte[] sector = bootSector(MARKER);
        boot.write(0, io.netty.buffer.Unpooled.wrappedBuffer(sector), false);
        try (NbdServerFixture fx = new NbdServerFixture().add(boot).start()) {
            // the whole line, so the VM provably ran the sector's loop to the end of the message
            String out = bootAndWaitForMarker(fx.uri("boot"), MARKER + "\r\n", 60);
            assertTrue(out.contains("Booting from Hard Disk"), out);
        }
        assertEquals(1, boot.openCount.get());
    }
}
