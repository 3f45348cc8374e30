package io.sheepdog.sheep.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class IoStatsTest {
    @Test
    void encodesTheFifteenCountersInTheOrderOfSdStat() {
        IoStats s = new IoStats();
        s.gateway.begin(IoStats.Kind.WRITE, 4096);
        s.gateway.end(0);
        s.gateway.begin(IoStats.Kind.READ, 0);
        s.gateway.end(512);
        s.gateway.begin(IoStats.Kind.READ, 0);     // still in flight
        s.gateway.begin(IoStats.Kind.REMOVE, 0);
        s.gateway.end(0);
        s.peer.begin(IoStats.Kind.WRITE, 100);
        s.peer.end(0);
        s.peer.begin(IoStats.Kind.WRITE, 200);
        s.peer.end(0);
        s.peer.begin(IoStats.Kind.READ, 0);
        s.peer.end(300);

        byte[] b = s.encode();
        long[] v = new long[b.length / 8];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(v);
        assertArrayEquals(new long[] {
                1, 0,           // active: gateway, peer
                4, 3,           // total: gateway, peer
                4096, 512,      // gateway rx, tx
                300, 300,       // peer rx, tx
                1, 2, 1, 0,     // gateway remove, read, write, flush
                0, 1, 2}, v);   // peer remove, read, write
    }

    @Test
    void writeStagesFollowSdStatOnlyWhenAskedFor() {
        IoStats s = new IoStats();
        s.gateway.writeTime.add(3_000);
        s.gateway.writeTime.add(5_000);
        s.peer.writeTime.add(1_000);
        s.gatewayLocalCopy.add(2_000);
        s.gatewayRemoteCopies.add(4_000);
        s.gatewayRemoteCopies.add(4_500);
        // the original dog asks for sd_stat's 120 bytes, and gets them alone
        assertEquals(IoStats.SD_STAT_SIZE, s.encode(IoStats.SD_STAT_SIZE).length);
        assertEquals(IoStats.SD_STAT_SIZE, s.encode(IoStats.SD_STAT_SIZE + IoStats.TIMES_SIZE - 1).length);
        byte[] b = s.encode(IoStats.SD_STAT_SIZE + IoStats.TIMES_SIZE);
        assertEquals(IoStats.SD_STAT_SIZE + IoStats.TIMES_SIZE, b.length);
        long[] v = new long[IoStats.TIMES_SIZE / 8];
        ByteBuffer.wrap(b, IoStats.SD_STAT_SIZE, IoStats.TIMES_SIZE).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(v);
        assertArrayEquals(new long[] {
                1, 4,           // version, stages
                2, 8_000,       // gateway writes: count, ns
                1, 1_000,       // peer writes
                1, 2_000,       // gateway local copies
                2, 8_500}, v);  // gateway remote copies
    }
}
