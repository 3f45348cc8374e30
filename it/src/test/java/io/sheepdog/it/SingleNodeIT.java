package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** One sheep, driven only through the real bin/dog: format, create, write, read back, list. */
@ExtendWith(MiniClusterExtension.class)
class SingleNodeIT {
    private static final long MiB = 1024 * 1024;

    @Test
    void formatCreateWriteReadList() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("single").nodes(1).format(false).build().start()) {
            c.dog("cluster", "format", "--copies", "1").assertOk();
            c.dog("vdi", "create", "Alice", "1G").assertOk();

            // 1.5 MiB of random data at 3.5 MiB: crosses the boundary between the first two 4 MiB data objects and
            // starts and ends inside objects (partial writes).
            byte[] data = new byte[(int) (MiB + MiB / 2)];
            new Random(20261124).nextBytes(data);
            long offset = 3 * MiB + MiB / 2;
            c.dogWithInput(data, "vdi", "write", "Alice", Long.toString(offset), Integer.toString(data.length)).assertOk();

            CommandResult read = c.dog("vdi", "read", "Alice", Long.toString(offset), Integer.toString(data.length)).assertOk();
            assertEquals(data.length, read.stdoutBytes().length, "bytes read back");
            assertEquals(sha256(data), sha256(read.stdoutBytes()), "checksum of the data read back");

            // never written: reads as zeros (the rest of object 0 before the write)
            CommandResult zeros = c.dog("vdi", "read", "Alice", "0", Long.toString(MiB)).assertOk();
            assertArrayEquals(new byte[(int) MiB], zeros.stdoutBytes(), "unwritten range reads as zeros");

            CommandResult list = c.dog("vdi", "list").assertOk();
            assertTrue(list.stdout().lines().anyMatch(l -> l.matches("\\s+Alice\\s+0\\s+1\\.0 GB\\s.*")),
                    "vdi list shows Alice (1.0 GB, working VDI):\n" + list.stdout());
            CommandResult raw = c.dog("vdi", "list", "-r").assertOk();
            assertTrue(raw.stdout().lines().anyMatch(l -> l.startsWith("= Alice 0 1073741824 ")),
                    "raw vdi list row for Alice:\n" + raw.stdout());
        }
    }

    /** Issue 2's "done when": `dog vdi write` then `dog vdi read` of 1 GiB round-trips byte for byte. */
    @Test
    void oneGibRoundTripsThroughDog() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("gib").nodes(1).copies(1).nbd(false).build().start()) {
            c.dog("vdi", "create", "Big", "1G").assertOk();
            String dog = MiniCluster.repoRoot().resolve("bin/dog").toString();
            int port = c.node(0).port();
            java.nio.file.Path data = c.dir().resolve("gib.bin");
            String script = String.join(" && ",
                    "head -c 1073741824 /dev/urandom > " + data,
                    "sha256sum < " + data + " | cut -d' ' -f1",
                    dog + " vdi write Big -p " + port + " < " + data,
                    "rm -f " + data,
                    dog + " vdi read Big -p " + port + " | sha256sum | cut -d' ' -f1");
            CommandResult r = Commands.run(java.util.List.of("bash", "-c", "set -o pipefail; " + script), null, java.util.Map.of(),
                    java.time.Duration.ofMinutes(4)).assertOk();
            java.util.List<String> sums = r.stdout().lines().toList();
            assertEquals(2, sums.size(), r.toString());
            assertEquals(sums.get(0), sums.get(1), "1 GiB read back with the checksum it was written with");
        }
    }

    static String sha256(byte[] b) throws NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }
}
