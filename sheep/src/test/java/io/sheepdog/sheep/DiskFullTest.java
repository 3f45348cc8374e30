package io.sheepdog.sheep;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A store on a tiny file system: a full disk is a clear NO_SPACE, and everything acknowledged before reads back. */
class DiskFullTest {
    @TempDir Path dir;

    private static int run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor();
    }

    @Test void noSpaceIsReportedAndNothingHalfWrittenIsAcknowledged() throws Exception {
        Path mnt = dir.resolve("small");
        Files.createDirectories(mnt);
        assumeTrue(run("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt.toString()) == 0, "needs root to mount a tmpfs");
        Sheep sheep = null;
        try {
            int port = SheepCoreTest.freePort();
            sheep = new Sheep(SheepOptions.builder(mnt.resolve("store")).port(port).zone(0).bindAddr("127.0.0.1").cluster("solo").foreground(true).logDir(dir).build());
            sheep.start();
            try (SheepConnection c = SheepConnection.open("127.0.0.1", port)) {
                SdRequest f = SdRequest.of(Opcodes.MAKE_FS).clusterCopies(1).clusterCtime(3L << 32).clusterFlags(Proto.CLUSTER_FLAG_AUTO_VNODES).flags(SdFlags.CMD_WRITE).dataLength(6);
                assertEquals(SdResult.SUCCESS, c.call(f, "plain\0".getBytes()).result());
                Reply v = c.call(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1L << 30).flags(SdFlags.CMD_WRITE).dataLength(256), Strings.fixed("full", 256));
                assertEquals(SdResult.SUCCESS, v.result());
                int vid = v.header().vdiVid();
                List<byte[]> acked = new ArrayList<>();
                Random rnd = new Random(5);
                int last = SdResult.SUCCESS;
                for (int i = 0; i < 64 && last == SdResult.SUCCESS; i++) {
                    byte[] d = new byte[1 << 20];
                    rnd.nextBytes(d);
                    last = c.call(SdRequest.of(Opcodes.CREATE_AND_WRITE_OBJ).objOid(Oids.dataOid(vid, i)).flags(SdFlags.CMD_WRITE)
                            .dataLength(d.length), d).result();
                    if (last == SdResult.SUCCESS) acked.add(d);
                }
                assertEquals(SdResult.NO_SPACE, last, "a full disk is reported as such");
                assertTrue(acked.size() > 4, "some writes fit");
                for (int i = 0; i < acked.size(); i++) {
                    Reply r = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(vid, i)).dataLength(1 << 20));
                    assertEquals(SdResult.SUCCESS, r.result());
                    assertArrayEquals(acked.get(i), r.data(), "acknowledged object " + i);
                }
                // the failed object does not exist half-made
                Reply missing = c.call(SdRequest.of(Opcodes.READ_OBJ).objOid(Oids.dataOid(vid, acked.size())).dataLength(512));
                assertEquals(SdResult.NO_OBJ, missing.result());
                try (var s = Files.list(mnt.resolve("store/obj"))) {
                    assertTrue(s.noneMatch(p -> p.toString().endsWith(".tmp")), "no temporary object left behind");
                }
                // through NBD the same full disk is ENOSPC (QEMU pauses the VM on it), not EIO
                var provider = new io.sheepdog.sheep.nbd.VdiExportProvider(sheep.processor());
                try (var export = provider.open("full", false)) {
                    byte[] d = new byte[1 << 20];
                    rnd.nextBytes(d);
                    var e = org.junit.jupiter.api.Assertions.assertThrows(io.sheepdog.sheep.nbd.NbdException.class,
                            () -> export.write(((long) acked.size() + 2) << 22, io.netty.buffer.Unpooled.wrappedBuffer(d), false));
                    assertEquals(io.sheepdog.sheep.nbd.NbdProtocol.ENOSPC, e.errno(), e.getMessage());
                }
            }
        } finally {
            if (sheep != null) sheep.close();
            run("umount", "-l", mnt.toString());
        }
    }
}
