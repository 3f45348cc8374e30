package io.sheepdog.sheep.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The frame decoder copies each network buffer into the request it belongs to and releases it at once, and takes
 * a payload's memory from the budget before allocating it.
 */
class SdFrameDecoderTest {

    private static byte[] stream(SdRequest[] reqs, byte[][] payloads) {
        ByteBuf b = Unpooled.buffer();
        for (int i = 0; i < reqs.length; i++) {
            b.writeBytes(reqs[i].bytes());
            if (payloads[i] != null) b.writeBytes(payloads[i]);
        }
        byte[] out = new byte[b.readableBytes()];
        b.readBytes(out);
        return out;
    }

    @Test
    void framesSurviveAnySplitOfTheStreamAndEveryInputBufferIsReleased() {
        Random rnd = new Random(7);
        byte[] big = new byte[300_000];
        rnd.nextBytes(big);
        SdRequest[] reqs = {
                SdRequest.of(Opcodes.WRITE_OBJ).id(1).flags(SdFlags.CMD_WRITE).dataLength(big.length),
                SdRequest.of(Opcodes.READ_OBJ).id(2).dataLength(4096),
                SdRequest.of(Opcodes.WRITE_OBJ).id(3).flags(SdFlags.CMD_WRITE).dataLength(3),
                SdRequest.of(Opcodes.WRITE_OBJ).id(4).flags(SdFlags.CMD_WRITE).dataLength(0),
        };
        byte[][] payloads = {big, null, {9, 8, 7}, null};
        byte[] all = stream(reqs, payloads);
        for (int maxPiece : new int[] {1, 47, 49, 4096, 65536, all.length}) {
            EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(new PayloadBudget(64L << 20)));
            List<ByteBuf> sent = new ArrayList<>();
            for (int at = 0; at < all.length; ) {
                int n = Math.min(all.length - at, 1 + rnd.nextInt(maxPiece));
                ByteBuf piece = Unpooled.directBuffer(n).writeBytes(all, at, n);
                sent.add(piece);
                ch.writeInbound(piece);
                at += n;
            }
            for (ByteBuf b : sent) assertEquals(0, b.refCnt(), "input buffer released (pieces up to " + maxPiece + ")");
            for (int i = 0; i < reqs.length; i++) {
                SdFrameDecoder.Frame f = ch.readInbound();
                assertEquals(i + 1, f.hdr().id());
                assertArrayEquals(payloads[i] == null ? new byte[0] : payloads[i], f.data(), "payload of request " + (i + 1));
            }
            assertNull(ch.readInbound());
            assertFalse(ch.finish());
        }
    }

    @Test
    void aPayloadCutOffByTheConnectionNeverBecomesARequest() {
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(new PayloadBudget(64L << 20)));
        SdRequest w = SdRequest.of(Opcodes.WRITE_OBJ).id(1).flags(SdFlags.CMD_WRITE).dataLength(1000);
        ByteBuf in = Unpooled.buffer().writeBytes(w.bytes()).writeBytes(new byte[999]);
        ch.writeInbound(in);
        assertEquals(0, in.refCnt());
        ch.close();
        assertNull(ch.readInbound(), "999 of 1000 bytes: no frame");
    }

    @Test
    void anImpossiblePayloadClosesTheConnectionAndFreesWhatFollows() {
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(new PayloadBudget(64L << 20)));
        SdRequest huge = SdRequest.of(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE).dataLength(Proto.MAX_REQUEST_DATA + 1L);
        ByteBuf in = Unpooled.buffer().writeBytes(huge.bytes()).writeBytes(new byte[100]);
        ch.writeInbound(in);
        assertEquals(0, in.refCnt());
        assertFalse(ch.isOpen());
        assertNull(ch.readInbound());
    }

    @Test
    void aPayloadWaitsForRoomInTheBudgetWithReadingPaused() {
        PayloadBudget budget = new PayloadBudget(1 << 20);
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(budget));
        byte[] a = new byte[700_000], b = new byte[600_000];
        new Random(3).nextBytes(b);
        SdRequest[] reqs = {
                SdRequest.of(Opcodes.WRITE_OBJ).id(1).flags(SdFlags.CMD_WRITE).dataLength(a.length),
                SdRequest.of(Opcodes.WRITE_OBJ).id(2).flags(SdFlags.CMD_WRITE).dataLength(b.length),
                SdRequest.of(Opcodes.READ_OBJ).id(3).dataLength(4096),
        };
        ch.writeInbound(Unpooled.wrappedBuffer(stream(reqs, new byte[][] {a, b, null})));
        SdFrameDecoder.Frame first = ch.readInbound();
        assertEquals(1, first.hdr().id());
        assertEquals(a.length, first.reserved());
        assertNull(ch.readInbound(), "the second payload does not fit beside the first: it waits");
        assertFalse(ch.config().isAutoRead(), "and the connection stops reading meanwhile");
        assertEquals(a.length, budget.used());
        budget.release(first.reserved()); // the first request was served
        ch.runPendingTasks();
        SdFrameDecoder.Frame second = ch.readInbound();
        assertEquals(2, second.hdr().id());
        assertArrayEquals(b, second.data());
        SdFrameDecoder.Frame third = ch.readInbound();
        assertEquals(3, third.hdr().id(), "what arrived behind it follows");
        assertEquals(4096, third.reserved(), "a read is admitted for the reply it asks for");
        assertTrue(ch.config().isAutoRead());
        second.release();
        third.release();
        assertEquals(0, budget.used());
    }

    @Test
    void aBurstOfLargeReadsWaitsForRoomForTheirReplies() {
        // QEMU's sheepdog driver sends a 128 MiB read as 32 READ_OBJ of 4 MiB at once on one connection
        PayloadBudget budget = new PayloadBudget(12L << 20);
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(budget));
        SdRequest[] reqs = new SdRequest[32];
        for (int i = 0; i < reqs.length; i++) reqs[i] = SdRequest.of(Opcodes.READ_OBJ).id(i).dataLength(4 << 20);
        ch.writeInbound(Unpooled.wrappedBuffer(stream(reqs, new byte[32][])));
        java.util.ArrayDeque<SdFrameDecoder.Frame> served = new java.util.ArrayDeque<>();
        int seen = 0;
        while (seen < 32) {
            SdFrameDecoder.Frame f;
            while ((f = ch.readInbound()) != null) {
                assertEquals(seen++, f.hdr().id(), "in order, none lost");
                served.add(f);
            }
            assertTrue(budget.used() <= 12L << 20, "never more reply bytes admitted than the budget");
            assertTrue(served.size() <= 3, "three 4 MiB replies fit in 12 MiB: " + served.size());
            if (seen < 32) assertFalse(ch.config().isAutoRead(), "reading pauses while the rest waits");
            SdFrameDecoder.Frame done = served.poll(); // its reply was written
            if (done != null) done.release();
            ch.runPendingTasks();
        }
        served.forEach(SdFrameDecoder.Frame::release);
        assertEquals(0, budget.used());
        assertTrue(ch.config().isAutoRead());
    }

    @Test
    void requestsFromOtherSheepHaveABudgetOfTheirOwn() {
        // a node full of client writes (waiting for their replicas) must still accept the replica writes of others
        PayloadBudget clients = new PayloadBudget(1 << 20), peers = new PayloadBudget(1 << 20);
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(clients, peers));
        byte[] a = new byte[1 << 20];
        SdRequest fill = SdRequest.of(Opcodes.WRITE_OBJ).id(1).flags(SdFlags.CMD_WRITE).dataLength(a.length);
        ch.writeInbound(Unpooled.wrappedBuffer(stream(new SdRequest[] {fill}, new byte[][] {a})));
        SdFrameDecoder.Frame f1 = ch.readInbound();
        assertEquals(1 << 20, clients.used());
        EmbeddedChannel peer = new EmbeddedChannel(new SdFrameDecoder(clients, peers));
        SdRequest replica = SdRequest.of(Opcodes.WRITE_PEER).id(2).flags(SdFlags.CMD_WRITE).dataLength(a.length);
        SdRequest heartbeat = SdRequest.of(Opcodes.GET_LOGLEVEL).id(3).dataLength(4);
        peer.writeInbound(Unpooled.wrappedBuffer(stream(new SdRequest[] {replica, heartbeat}, new byte[][] {a, null})));
        SdFrameDecoder.Frame f2 = peer.readInbound();
        assertEquals(2, f2.hdr().id(), "admitted from the peers' budget");
        assertEquals(1 << 20, peers.used());
        f2.release();
        peer.runPendingTasks();
        assertEquals(3, ((SdFrameDecoder.Frame) peer.readInbound()).hdr().id());
        f1.release();
    }

    @Test
    void aHeartbeatIsNotHeldBehindAFullBudget() {
        // large reads fill the clients' budget; the failure detector's question (4 bytes of answer) still goes through
        PayloadBudget clients = new PayloadBudget(1 << 20);
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(clients, new PayloadBudget(1 << 20)));
        SdRequest read = SdRequest.of(Opcodes.READ_OBJ).id(1).dataLength(1 << 20);
        SdRequest read2 = SdRequest.of(Opcodes.READ_OBJ).id(2).dataLength(1 << 20);
        ch.writeInbound(Unpooled.wrappedBuffer(stream(new SdRequest[] {read, read2}, new byte[][] {null, null})));
        SdFrameDecoder.Frame r1 = ch.readInbound();
        assertNull(ch.readInbound(), "the second read waits for room");
        EmbeddedChannel hb = new EmbeddedChannel(new SdFrameDecoder(clients, new PayloadBudget(1 << 20)));
        hb.writeInbound(Unpooled.wrappedBuffer(SdRequest.of(Opcodes.GET_LOGLEVEL).id(3).dataLength(4).bytes()));
        SdFrameDecoder.Frame h = hb.readInbound();
        assertEquals(3, h.hdr().id(), "answered at once");
        assertEquals(0, h.reserved());
        h.release();
        r1.release();
        ch.runPendingTasks();
        SdFrameDecoder.Frame r2 = ch.readInbound();
        assertEquals(2, r2.hdr().id());
        r2.release();
        assertEquals(0, clients.used());
    }

    @Test
    void aPayloadLargerThanTheWholeBudgetIsRefused() {
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(new PayloadBudget(1 << 20)));
        SdRequest big = SdRequest.of(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE).dataLength((1 << 20) + 1);
        ch.writeInbound(Unpooled.buffer().writeBytes(big.bytes()));
        assertFalse(ch.isOpen(), "a payload no budget can hold closes the connection before anything is allocated");
        assertNull(ch.readInbound());
    }

    @Test
    void onlyObjectWritesMayCarryLargePayloads() {
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(new PayloadBudget(64L << 20)));
        SdRequest name = SdRequest.of(Opcodes.NEW_VDI).flags(SdFlags.CMD_WRITE).dataLength(SdFrameDecoder.MAX_SMALL_PAYLOAD + 1L);
        ByteBuf in = Unpooled.buffer().writeBytes(name.bytes()).writeBytes(new byte[100]);
        ch.writeInbound(in);
        assertEquals(0, in.refCnt());
        assertFalse(ch.isOpen(), "a NEW_VDI claiming over 1 MiB of payload is refused before anything is allocated");
        assertNull(ch.readInbound());
    }

    /**
     * A write's payload that does not arrive within the limit after its header closes the connection and gives its
     * room back (a client that sends headers and trickles must not hold the budget every other client waits for);
     * one that arrives in time is served, and time this server spent not reading does not count.
     */
    @Test
    void aPayloadSlowerThanTheLimitClosesTheConnectionAndGivesItsRoomBack() {
        AtomicLong now = new AtomicLong(1_000_000_000L);
        PayloadBudget budget = new PayloadBudget(1L << 20);
        EmbeddedChannel ch = new EmbeddedChannel(new SdFrameDecoder(budget, budget, new PayloadDeadline.Limit(1000, now::get)));
        // in time: three pieces within 900 ms
        SdRequest w = SdRequest.of(Opcodes.WRITE_OBJ).id(1).flags(SdFlags.CMD_WRITE).dataLength(65536);
        ch.writeInbound(Unpooled.buffer().writeBytes(w.bytes()).writeBytes(new byte[1000]));
        assertEquals(65536, budget.used(), "admitted with its header");
        pass(ch, now, 400);
        ch.writeInbound(Unpooled.wrappedBuffer(new byte[30000]));
        pass(ch, now, 500);
        ch.writeInbound(Unpooled.wrappedBuffer(new byte[65536 - 31000]));
        SdFrameDecoder.Frame f = ch.readInbound();
        assertEquals(1, f.hdr().id());
        f.release();
        pass(ch, now, 2000);
        assertTrue(ch.isOpen(), "no payload in progress: nothing to time");

        // this server stops reading (its own back-pressure) for longer than the limit: not the client's delay
        SdRequest slow = SdRequest.of(Opcodes.WRITE_OBJ).id(2).flags(SdFlags.CMD_WRITE).dataLength(65536);
        ch.writeInbound(Unpooled.buffer().writeBytes(slow.bytes()).writeBytes(new byte[100]));
        ch.config().setAutoRead(false);
        pass(ch, now, 1500);
        assertTrue(ch.isOpen(), "not reading: the clock starts again");
        ch.config().setAutoRead(true);
        pass(ch, now, 900);
        assertTrue(ch.isOpen(), "900 ms since reading resumed");
        pass(ch, now, 200);
        assertFalse(ch.isOpen(), "1,100 ms of reading and the payload still incomplete: closed");
        assertEquals(0, budget.used(), "its room is back");
        assertNull(ch.readInbound());
    }

    /** Moves the decoder's clock and the channel's scheduled time on by {@code ms}, and runs what fell due. */
    static void pass(EmbeddedChannel ch, AtomicLong now, long ms) {
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
        ch.advanceTimeBy(ms, TimeUnit.MILLISECONDS);
        ch.runScheduledPendingTasks();
    }
}
