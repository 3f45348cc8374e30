package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Live migration of a running VM between sheep over NBD (Debian's QEMU 7.2, TCG), and an accidental second VM on the
 * same disk, under the handover lock model ({@code sheep --vdi-lock handover}, the default).
 *
 * <p>The guest is a boot sector that loops forever: it increments a 32-bit counter and writes it, through the BIOS
 * disk service (int 13h, AH=43h), to sector {@code 1 + counter % 64} as a self-checking record (a magic, the
 * counter, its complement, then the counter 125 times). A consistent disk therefore holds, for the highest counter M,
 * every counter of M-63..M in its own sector: a write lost, torn, applied out of order or made by another writer
 * after the hand-over breaks that.
 */
@ExtendWith(MiniClusterExtension.class)
class LiveMigrationIT {
    private static final long MiB = 1 << 20;
    private static final int MAGIC = 0x4D494753;
    /**
     * The guest, assembled with GNU as from this source (.code16, linked at 0x7c00):
     * <pre>
     *     cli; xor %ax,%ax; mov %ax,%ds; mov %ax,%es; mov %ax,%ss; mov $0x7c00,%sp; sti; mov %dl,drive
     * next: addw $1,counter; adcw $0,counter+2
     *     mov $0x8000,%di; mov counter,%ax; mov counter+2,%dx; mov $128,%cx
     * fill: mov %ax,(%di); mov %dx,2(%di); add $4,%di; loop fill
     *     movl $0x4D494753,0x8000; movl counter,%eax; notl %eax; movl %eax,0x8008
     *     mov counter,%ax; and $63,%ax; inc %ax; mov %ax,dap_lba
     * write: mov $dap,%si; mov $0x4300,%ax; mov drive,%dl; int $0x13; jc write; jmp next
     * counter: .long 0;  drive: .byte 0x80;  dap: .byte 0x10,0; .word 1,0x8000,0; dap_lba: .long 0,0
     * </pre>
     * A failed write is retried (same sector, same counter) until it succeeds.
     */
    private static final String GUEST = "fa31c08ed88ec08ed0bc007cfb8816647c8306607c018316627c00bf0080a1607c8b16627cb98000"
            + "890589550283c704e2f666c70600805347494d66a1607c66f7d066a30880a1607c83e03f40a3707cbe687cb800438a16647ccd13"
            + "72f2ebb100000000808d740010000100008000000000000000000000";

    static byte[] bootSector() {
        byte[] code = HexFormat.of().parseHex(GUEST);
        byte[] s = new byte[512];
        System.arraycopy(code, 0, s, 0, code.length);
        s[510] = 0x55;
        s[511] = (byte) 0xaa;
        return s;
    }

    /** A running QEMU with its QMP socket; killed by its handle when closed. */
    static final class Vm implements AutoCloseable {
        final String name;
        final Process p;
        final Qmp qmp;

        Vm(String name, Process p, Qmp qmp) {
            this.name = name;
            this.p = p;
            this.qmp = qmp;
        }

        static Vm start(MiniCluster c, String name, SheepNode via, String vdi, int incomingPort) throws Exception {
            Path sock = c.dir().resolve(name + ".qmp");
            Files.deleteIfExists(sock);
            List<String> cmd = new ArrayList<>(List.of("qemu-system-x86_64", "-accel", "tcg", "-display", "none", "-m", "32",
                    "-drive", "file=nbd://127.0.0.1:" + via.nbdPort() + "/" + vdi + ",format=raw,if=ide",
                    "-qmp", "unix:" + sock + ",server=on,wait=off", "-serial", "none", "-monitor", "none"));
            if (incomingPort > 0) cmd.addAll(List.of("-incoming", "tcp:127.0.0.1:" + incomingPort));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(c.dir().resolve(name + ".log").toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
            try {
                return new Vm(name, p, Qmp.connect(sock, 30_000));
            } catch (Exception e) {
                p.destroyForcibly();
                throw new AssertionError("VM " + name + " did not start: " + Files.readString(c.dir().resolve(name + ".log")), e);
            }
        }

        /** Migrates this VM to a destination listening on {@code port}; waits until QEMU says it completed. */
        void migrateTo(int port) throws Exception {
            qmp.command("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:" + port + "\"}}");
            long deadline = System.currentTimeMillis() + 120_000;
            while (true) {
                String st = qmp.command("{\"execute\":\"query-migrate\"}");
                if (st.contains("\"completed\"")) return;
                if (st.contains("\"failed\"") || st.contains("\"cancelled\"")) throw new AssertionError("migration of " + name + ": " + st);
                if (System.currentTimeMillis() > deadline) throw new AssertionError("migration of " + name + " did not complete: " + st);
                Thread.sleep(100);
            }
        }

        @Override
        public void close() throws Exception {
            try {
                if (p.isAlive()) qmp.command("{\"execute\":\"quit\"}");
            } catch (Exception ignored) {
                // already gone
            }
            qmp.close();
            if (!p.waitFor(10, TimeUnit.SECONDS)) p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** The guest's records as the cluster has them: the highest counter, after checking the disk is consistent. */
    static long checkDisk(MiniCluster c, SheepNode via, String vdi) {
        byte[] d = c.dogAt(via, null, "vdi", "read", vdi, "512", Integer.toString(64 * 512)).assertOk().stdoutBytes();
        ByteBuffer b = ByteBuffer.wrap(d).order(ByteOrder.LITTLE_ENDIAN);
        long[] counterAt = new long[64];
        long max = 0;
        for (int s = 0; s < 64; s++) {
            int base = s * 512;
            int magic = b.getInt(base);
            if (magic == 0) {
                for (int i = 0; i < 512; i++) assertEquals(0, d[base + i], "sector " + (s + 1) + " is half written");
                continue;
            }
            assertEquals(MAGIC, magic, "sector " + (s + 1) + " holds a record");
            long cnt = b.getInt(base + 4) & 0xffffffffL;
            assertEquals(~b.getInt(base + 4), b.getInt(base + 8), "sector " + (s + 1) + ": counter and complement");
            for (int i = 3; i < 128; i++) assertEquals((int) cnt, b.getInt(base + 4 * i), "sector " + (s + 1) + " is torn");
            assertEquals(s, (int) (cnt % 64), "counter " + cnt + " belongs to sector " + (1 + cnt % 64));
            counterAt[s] = cnt;
            max = Math.max(max, cnt);
        }
        // every one of the last 64 writes is there, each in its sector: nothing lost, nothing applied after a later one
        for (long cnt = Math.max(1, max - 63); cnt <= max; cnt++) {
            int s = (int) (cnt % 64);
            assertEquals(cnt, counterAt[s], "sector " + (s + 1) + " must hold counter " + cnt + " (highest " + max + ")");
        }
        return max;
    }

    static long awaitProgress(MiniCluster c, SheepNode via, String vdi, long beyond, int seconds) throws Exception {
        long deadline = System.currentTimeMillis() + seconds * 1000L;
        long m;
        while ((m = checkDisk(c, via, vdi)) <= beyond) {
            if (System.currentTimeMillis() > deadline) throw new AssertionError("the guest's counter stays at " + m + " (wanted > " + beyond + ")");
            Thread.sleep(200);
        }
        return m;
    }

    @Test
    @Timeout(value = 12, unit = TimeUnit.MINUTES)
    void aRunningVmMigratesBackAndForthBetweenSheep() throws Exception {
        Tools.require("qemu-system-x86_64");
        try (MiniCluster c = MiniCluster.builder().name("migrate").nodes(3).copies(3).build().start()) {
            c.dog("vdi", "create", "Alice", "16M").assertOk();
            c.dogWithInput(bootSector(), "vdi", "write", "Alice", "0", "512").assertOk();
            SheepNode[] hosts = {c.node(0), c.node(1)};
            Vm vm = Vm.start(c, "vm0", hosts[0], "Alice", 0);
            try {
                long m = awaitProgress(c, c.node(2), "Alice", 100, 60);
                for (int hop = 1; hop <= 10; hop++) { // 5 round trips
                    SheepNode to = hosts[hop % 2];
                    int port = Ports.free();
                    Vm dest = Vm.start(c, "vm" + hop, to, "Alice", port);
                    String list = c.dog("vm", "list").assertOk().stdout();
                    assertTrue(list.contains("waiting:"), "the destination waits for the lock: " + list);
                    vm.migrateTo(port);
                    // the destination's guest goes on writing: it took the lock over from the stopped source
                    long after = checkDisk(c, c.node(2), "Alice");
                    assertTrue(after >= m, "counter " + after + " after hop " + hop + ", was " + m);
                    m = awaitProgress(c, c.node(2), "Alice", after + 50, 60);
                    vm.close(); // the source quits (QEMU does after a migration); it had been fenced
                    vm = dest;
                    m = awaitProgress(c, c.node(2), "Alice", m + 20, 60);
                    String held = c.dog("vm", "list").assertOk().stdout();
                    assertTrue(held.contains("Alice") && held.contains("running on") && !held.contains("waiting:"), held);
                    KillRestartIT.log("migration hop " + hop + " to " + to + ": counter " + m + ", disk consistent");
                }
            } finally {
                vm.close();
            }
            long last = checkDisk(c, c.node(0), "Alice");
            assertEquals(last, checkDisk(c, c.node(1), "Alice"), "the same through every node");
            c.dog("vdi", "check", "Alice").assertOk();
            CheckedNbdWriter.record("LIVE MIGRATION: 10 hops (5 round trips) between two sheep of 3, copies 3: guest counter "
                    + last + ", disk consistent after every hop");
        }
    }

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aSecondVmOnTheSameDiskGetsNoWriteApplied() throws Exception {
        Tools.require("qemu-system-x86_64");
        try (MiniCluster c = MiniCluster.builder().name("second-vm").nodes(3).copies(3).build().start()) {
            c.dog("vdi", "create", "Alice", "16M").assertOk();
            c.dogWithInput(bootSector(), "vdi", "write", "Alice", "0", "512").assertOk();
            try (Vm first = Vm.start(c, "first", c.node(0), "Alice", 0)) {
                long m = awaitProgress(c, c.node(2), "Alice", 100, 60);
                // booted by mistake on the same disk through another node: it reads, but every write it tries is refused
                // while the first keeps writing (its counter restarts at 1 and would break the disk's records)
                try (Vm second = Vm.start(c, "second", c.node(1), "Alice", 0)) {
                    for (int i = 0; i < 5; i++) {
                        Thread.sleep(3000);
                        m = awaitProgress(c, c.node(2), "Alice", m, 30); // checks consistency too
                    }
                    assertTrue(second.p.isAlive(), "the second VM runs (its writes fail and its guest retries them)");
                    String list = c.dog("vm", "list").assertOk().stdout();
                    assertTrue(list.contains("running on") && list.contains("waiting:"), list);
                }
                m = awaitProgress(c, c.node(2), "Alice", m + 50, 60);
                CheckedNbdWriter.record("SECOND VM on a running VM's disk: refused for 15 s, first VM's counter " + m
                        + ", disk consistent");
            }
        }
    }
}
