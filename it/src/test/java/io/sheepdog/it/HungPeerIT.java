package io.sheepdog.it;

import static io.sheepdog.it.KillRestartIT.log;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.client.Volume;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A peer that hangs (SIGSTOP: its process, sockets and cluster membership stay, it just answers nothing) must not
 * hang the gateway even with failure detection off ({@code --failure-timeout 0}, so the stopped node stays a member;
 * {@link HungNodeIT} has it on): a write that needs it gets an answer once the gateway's peer timeout and retry
 * deadline pass, other requests are served meanwhile, and once the peer runs again the cluster works as before.
 *
 * <p>The daemons run with short timeouts ({@code sheepdog.peerTimeoutMs}, {@code sheepdog.retryDeadlineMs}) so that
 * the test takes seconds, not the minutes of the defaults.
 */
@ExtendWith(MiniClusterExtension.class)
class HungPeerIT {
    private static final int PEER_TIMEOUT_MS = 2000;
    private static final int RETRY_DEADLINE_MS = 5000;

    @Test
    void aStoppedPeerMakesTheGatewayTimeOutNotHang() throws Exception {
        try (MiniCluster c = MiniCluster.builder().name("hungpeer").nodes(3).copies(3).nbd(false)
                .sheepProperty("sheepdog.peerTimeoutMs", PEER_TIMEOUT_MS).sheepProperty("sheepdog.retryDeadlineMs", RETRY_DEADLINE_MS)
                .sheepArgs("--failure-timeout", "0")
                .build().start()) {
            c.dog("vdi", "create", "vol", "64M").assertOk();
            byte[] before = new byte[64 << 20];
            new Random(1).nextBytes(before);
            int vid;
            try (SheepConnection conn = c.connect(c.node(0))) {
                Volume v = Volume.openWritable(new SheepClient(conn), "vol", false);
                v.write(0, before);
                vid = v.vid();
            }
            long oid = Oids.dataOid(vid, 0);
            SheepNode hung = c.node(2);
            // reads go to an object's first copy (Gateway.read): the read served meanwhile is of an object whose
            // first copy is not on the stopped node (dog vdi object location lists the copies in placement order)
            long readOid = -1;
            for (int i = 0; i < 16 && readOid < 0; i++) {
                String out = c.dog("vdi", "object", "location", "-i", String.valueOf(i), "vol").assertOk().stdout().strip();
                String first = out.substring(out.lastIndexOf('\n') + 1).split(" ")[0];
                if (!first.endsWith(":" + hung.port())) readOid = Oids.dataOid(vid, i);
            }
            assertTrue(readOid >= 0, "an object whose first copy is not on node 2");

            hung.pause();
            try (SheepConnection conn = c.connect(c.node(0))) {
                // a 4 MiB write fills the socket buffers toward the stopped peer: the send itself must not hang
                byte[] data = new byte[4 << 20];
                new Random(2).nextBytes(data);
                long t0 = System.nanoTime();
                CompletableFuture<Reply> write = conn.submit(SdRequest.of(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE)
                        .dataLength(data.length).objOid(oid).objOffset(0), data);
                // meanwhile the gateway serves other requests: its node list, a read of a copy on a live node
                SheepNode.sleep(500);
                assertEquals(3, c.nodeList(c.node(0)).size(), "node 0 answers GET_NODE_LIST while a write waits");
                Reply read = conn.submit(SdRequest.of(Opcodes.READ_OBJ).dataLength(4096).objOid(readOid).objOffset(0), null)
                        .get(PEER_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                assertEquals(SdResult.SUCCESS, read.result(), "a read of a live first copy while a write waits");

                long bound = 3L * PEER_TIMEOUT_MS + RETRY_DEADLINE_MS + 10_000;
                Reply r = write.get(bound, TimeUnit.MILLISECONDS);
                long ms = (System.nanoTime() - t0) / 1_000_000;
                log("write with a stopped peer answered " + SdResult.name(r.result()) + " after " + ms + " ms");
                assertTrue(r.result() != SdResult.SUCCESS, "a write that could not reach every copy is not acknowledged");
            } finally {
                hung.resume();
            }

            // the peer runs again: writes go through and every node has them (the whole object, as a client
            // rewrites what failed: the failed write may have reached some copies)
            byte[] after = new byte[4 << 20];
            new Random(3).nextBytes(after);
            try (SheepConnection conn = c.connect(c.node(0))) {
                Volume v = Volume.openWritable(new SheepClient(conn), "vol", false);
                v.write(0, after);
            }
            for (SheepNode n : c.nodes()) {
                try (SheepConnection conn = c.connect(n)) {
                    byte[] got = Volume.openReadOnly(new SheepClient(conn), "vol", 0, "").read(0, after.length);
                    assertArrayEquals(after, got, "data read through " + n);
                }
            }
            KillRestartIT.assertCleanCheck(c.dog("cluster", "check").assertOk());
        }
    }
}
