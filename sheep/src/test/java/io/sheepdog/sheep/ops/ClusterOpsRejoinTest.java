package io.sheepdog.sheep.ops;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.sheep.cluster.ClusterDriver;
import io.sheepdog.sheep.cluster.ClusterListener;
import io.sheepdog.sheep.parts.OneNode;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A work phase that outlives a re-join (found by ZooKeeperOutageIT): its client was answered with an error and its
 * block went with the old membership, so when it ends it must not release the block that a later operation holds by
 * then, which would leave that operation waiting for ever.
 */
class ClusterOpsRejoinTest {
    @TempDir
    Path dir;

    /** A driver that queues nothing: the test grants blocks by calling onBlock, and sees what is unblocked. */
    static final class RecordingDriver implements ClusterDriver {
        final List<byte[]> unblocked = new CopyOnWriteArrayList<>();
        volatile int blocks;
        @Override public String name() { return "recording"; }
        @Override public void join(SdNode self, byte[] joinMessage, ClusterListener listener) { }
        @Override public void leave() { }
        @Override public boolean notify(byte[] msg) { return true; }
        @Override public boolean block() { blocks++; return true; }
        @Override public void unblock(byte[] msg) { unblocked.add(msg); }
        @Override public void updateNode(SdNode node) { }
        @Override public void close() { }
        @Override public void evict(SdNode node) { }
    }

    private static Request newVdi(String name) {
        return Request.internal(SdRequest.of(Opcodes.NEW_VDI).vdiSize(1L << 30).flags(SdFlags.CMD_WRITE).dataLength(256),
                Strings.fixed(name, 256));
    }

    @Test
    void aWorkPhaseFromBeforeARejoinDoesNotReleaseTheNextOperationsBlock() throws Exception {
        try (OneNode n = new OneNode(dir)) {
            RecordingDriver driver = new RecordingDriver();
            ClusterOps ops = new ClusterOps(driver, n.state, n.vdiOps, n.vdis, (sender, m) -> null);

            // op1's work phase stalls in the gateway (this process counts as paused) ...
            n.state.suspend("test: hold the work phase");
            CompletableFuture<Reply> first = CompletableFuture.supplyAsync(() -> ops.execute(newVdi("first")));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (driver.blocks < 1 && System.nanoTime() < deadline) Thread.sleep(5);
            assertTrue(ops.onBlock(), "block granted: op1's work starts");
            // ... while this node is dropped and joins again: op1's client gets an error
            ops.failPending("test: the driver lost its session");
            assertEquals(SdResult.CLUSTER_ERROR, first.get(10, TimeUnit.SECONDS).result());

            // op2 is sent after the re-join; its block is granted while op1's work still runs
            CompletableFuture<Reply> second = CompletableFuture.supplyAsync(() -> ops.execute(newVdi("second")));
            while (driver.blocks < 2 && System.nanoTime() < deadline) Thread.sleep(5);
            assertTrue(ops.onBlock(), "op2's block granted");
            Thread.sleep(200);
            assertTrue(driver.unblocked.isEmpty(), "op2 waits for op1's work to end before its own starts");

            n.state.resume();
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (driver.unblocked.isEmpty() && System.nanoTime() < deadline) Thread.sleep(5);
            Thread.sleep(200);
            assertEquals(1, driver.unblocked.size(), "one release: op2's, with its main phase; op1's work released nothing");
            OpMessage main = OpMessage.decode(driver.unblocked.getFirst());
            assertEquals(Opcodes.NOTIFY_VDI_ADD, main.req().opcode(), "op2's main phase goes out");
            ops.onNotify(n.self, driver.unblocked.getFirst());
            assertEquals(SdResult.SUCCESS, second.get(10, TimeUnit.SECONDS).result(), "and op2 is answered");
        }
    }
}
