package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.sheepdog.sheep.net.ConnectionLimit;
import io.sheepdog.sheep.net.PayloadBudget;
import io.sheepdog.sheep.net.PayloadDeadline;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link NbdRequestDecoder} alone in an EmbeddedChannel, in front of a handler that only collects what it hands on:
 * framing across any split of the input, checks, the payload as retained slices, and admission (the server's budget,
 * the connection's limit) before anything is read.
 */
class NbdRequestDecoderTest {
    private static final int SIZE = 1 << 20;
    private final List<NbdRequest> got = new ArrayList<>();
    private EmbeddedChannel ch;
    private NbdRequestDecoder decoder;
    private PayloadBudget budget;
    private ConnectionLimit limit;

    private void open(boolean readOnly, long budgetBytes, int maxRequests) {
        open(readOnly, budgetBytes, maxRequests, new PayloadDeadline.Limit());
    }

    private void open(boolean readOnly, long budgetBytes, int maxRequests, PayloadDeadline.Limit payloadLimit) {
        MemoryDisk disk = new MemoryDisk("d", SIZE, readOnly, false, false);
        NbdExport export;
        try {
            export = new MemoryExportProvider().add(disk).open("d", readOnly);
        } catch (NbdException e) {
            throw new AssertionError(e);
        }
        NbdSession session = new NbdSession("d", export, readOnly, TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_TRIM,
                true, false);
        budget = new PayloadBudget(budgetBytes);
        limit = new ConnectionLimit(maxRequests, 1 << 20);
        decoder = new NbdRequestDecoder(new NbdRequestCheck(session, 1 << 20), budget, limit, "test", payloadLimit);
        ch = new EmbeddedChannel(decoder, new ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(ChannelHandlerContext ctx, Object msg) { got.add((NbdRequest) msg); }
        });
    }

    @AfterEach
    void releaseAll() {
        for (NbdRequest r : got) if (r.payload() != null) r.payload().release();
        got.clear();
        if (ch != null) ch.finishAndReleaseAll();
        ch = null;
    }

    private static byte[] request(int flags, int type, long handle, long offset, long length, byte[] payload) {
        return NbdWire.request(flags, type, handle, offset, length, payload);
    }

    private void send(byte[] bytes, int piece) {
        for (int i = 0; i < bytes.length; i += piece) {
            ch.writeInbound(Unpooled.wrappedBuffer(bytes, i, Math.min(piece, bytes.length - i)));
        }
        ch.runPendingTasks();
    }

    @Test
    void framesRequestsSplitAnywhereAndCarriesTheWritePayloadAsIs() {
        for (int piece : new int[] {1, 3, 27, 28, 29, 4096, 1 << 20}) {
            open(false, 8 << 20, 64);
            byte[] data = new byte[70000];
            new Random(piece).nextBytes(data);
            send(NbdHandshakeTest.concat(request(CMD_FLAG_FUA, CMD_WRITE, 0xabcdef0123L, 8192, data.length, data),
                    request(0, CMD_READ, 2, 512, 4096, null),
                    request(0, CMD_FLUSH, 3, 0, 0, null)), piece);
            assertEquals(3, got.size(), "split " + piece);
            NbdRequest w = got.get(0);
            assertEquals(CMD_WRITE, w.type());
            assertTrue(w.fua());
            assertEquals(0xabcdef0123L, w.handle());
            assertEquals(8192, w.offset());
            assertEquals(data.length, w.admitted());
            assertArrayEquals(data, ByteBufUtil.getBytes(w.payload()), "split " + piece);
            assertEquals(CMD_READ, got.get(1).type());
            assertEquals(4096, got.get(1).admitted());
            assertNull(got.get(1).payload());
            assertEquals(CMD_FLUSH, got.get(2).type());
            assertEquals(0, got.get(2).admitted());
            assertEquals(data.length + 4096, budget.used(), "a write and a read hold their bytes until answered");
            assertEquals(3, limit.requests());
            releaseAll();
        }
    }

    @Test
    void aRefusedWriteIsHandedOnRefusedAndItsPayloadSkipped() {
        open(true, 8 << 20, 64);
        byte[] data = new byte[5000];
        send(NbdHandshakeTest.concat(request(0, CMD_WRITE, 1, 0, data.length, data), request(0, CMD_READ, 2, SIZE - 512, 512, null),
                request(0, CMD_READ, 3, SIZE - 512, 1024, null), request(CMD_FLAG_REQ_ONE, CMD_READ, 4, 0, 512, null)), 1000);
        assertEquals(4, got.size());
        assertEquals(EPERM, got.get(0).errno());
        assertNull(got.get(0).payload(), "a refused write's payload is never kept");
        assertFalse(got.get(1).isRefused());
        assertEquals(EINVAL, got.get(2).errno(), got.get(2).refusal());
        assertEquals(EINVAL, got.get(3).errno(), "REQ_ONE is not a READ flag");
        assertEquals(512, budget.used(), "refused requests hold nothing");
        assertEquals(1, limit.requests());
    }

    @Test
    void aWriteWaitsForBudgetBeforeItsPayloadIsRead() {
        open(false, 64 << 10, 64);
        assertTrue(budget.tryAcquire(60 << 10, () -> { }), "another connection holds most of the budget");
        byte[] data = new byte[16 << 10];
        send(NbdHandshakeTest.concat(request(0, CMD_WRITE, 1, 0, data.length, data), request(0, CMD_FLUSH, 2, 0, 0, null)), 4096);
        assertTrue(got.isEmpty(), "no room: nothing handed on");
        assertFalse(ch.config().isAutoRead(), "and nothing more read from the socket");
        budget.release(60 << 10);
        ch.runPendingTasks();
        assertEquals(2, got.size(), "admitted once the room came back, the bytes that waited are read on");
        assertEquals(data.length, got.get(0).payload().readableBytes());
        assertTrue(ch.config().isAutoRead());
    }

    @Test
    void aFullConnectionReadsNoMoreUntilARequestIsAnswered() {
        open(false, 8 << 20, 2);
        send(NbdHandshakeTest.concat(request(0, CMD_READ, 1, 0, 512, null), request(0, CMD_READ, 2, 0, 512, null),
                request(0, CMD_READ, 3, 0, 512, null)), 1 << 20);
        assertEquals(2, got.size());
        assertFalse(ch.config().isAutoRead());
        assertTrue(limit.end(512));
        budget.release(512);
        decoder.resume();
        assertEquals(3, got.size());
        assertEquals(3, got.get(2).handle());
    }

    @Test
    void closingMidPayloadGivesEverythingBack() {
        open(false, 8 << 20, 64);
        byte[] whole = request(0, CMD_WRITE, 1, 0, 100000, new byte[100000]);
        send(Arrays.copyOf(whole, 50000), 7000);
        assertTrue(got.isEmpty());
        assertEquals(100000, budget.used());
        ch.close();
        assertEquals(0, budget.used());
        assertEquals(0, limit.requests());
        assertEquals(0, limit.bytes());
    }

    @Test
    void aBadMagicClosesAndDiscReadsNothingMore() {
        open(false, 8 << 20, 64);
        byte[] bad = request(0, CMD_READ, 1, 0, 512, null);
        bad[0] ^= 1;
        send(bad, 100);
        assertTrue(got.isEmpty());
        assertFalse(ch.isOpen(), "a malformed header closes the connection");

        releaseAll();
        open(false, 8 << 20, 64);
        send(NbdHandshakeTest.concat(request(0, CMD_DISC, 9, 0, 0, null), request(0, CMD_READ, 10, 0, 512, null)), 1 << 20);
        assertEquals(1, got.size(), "nothing after DISC is read");
        assertEquals(CMD_DISC, got.get(0).type());
        assertEquals(0, budget.used());
        assertFalse(ch.config().isAutoRead());
    }

    /**
     * A write whose payload does not arrive within the limit after its header closes the connection and gives its
     * share of the server's budget back: a client that sends large write headers and then trickles must not hold the
     * room every other client's writes wait for. One that arrives in time is handed on.
     */
    @Test
    void aWritePayloadSlowerThanTheLimitClosesTheConnectionAndGivesItsRoomBack() {
        AtomicLong now = new AtomicLong(1_000_000_000L);
        open(false, 8 << 20, 64, new PayloadDeadline.Limit(1000, now::get));
        byte[] data = new byte[200000];
        byte[] first = request(0, CMD_WRITE, 1, 0, data.length, data);
        ch.writeInbound(Unpooled.wrappedBuffer(first, 0, 1000));
        pass(now, 800);
        ch.writeInbound(Unpooled.wrappedBuffer(first, 1000, first.length - 1000));
        ch.runPendingTasks();
        assertEquals(1, got.size(), "complete within the limit: handed on");
        pass(now, 3000);
        assertTrue(ch.isOpen());

        byte[] second = request(0, CMD_WRITE, 2, 0, data.length, data);
        ch.writeInbound(Unpooled.wrappedBuffer(second, 0, 5000));
        ch.runPendingTasks();
        assertEquals(2L * data.length, budget.used(), "the first (not answered here) and the second hold their bytes");
        pass(now, 999);
        assertTrue(ch.isOpen());
        pass(now, 2);
        assertFalse(ch.isOpen(), "the second's payload is late: closed");
        assertEquals(1, got.size(), "nothing of the late write is handed on");
        assertEquals(data.length, budget.used(), "the late write's room is back (the first's goes with its reply)");
    }

    private void pass(AtomicLong now, long ms) {
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
        ch.advanceTimeBy(ms, TimeUnit.MILLISECONDS);
        ch.runScheduledPendingTasks();
        ch.runPendingTasks();
    }
}
