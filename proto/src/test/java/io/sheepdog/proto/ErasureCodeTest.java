package io.sheepdog.proto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class ErasureCodeTest {

    @Test
    void policyByteIsHalfTheDataStripsAndTheParityStrips() {
        assertEquals(0x22, ErasureCode.policy(4, 2));
        assertEquals(0x11, ErasureCode.policy(2, 1));
        assertEquals(0x87, ErasureCode.policy(16, 7));
        assertEquals(4, ErasureCode.dataStrips(0x22));
        assertEquals(2, ErasureCode.parityStrips(0x22));
        assertFalse(ErasureCode.isValid(3, 1));
        assertFalse(ErasureCode.isValid(16, 16)); // 32 copies > 31
        assertFalse(ErasureCode.isValid(4, 0));
        assertFalse(ErasureCode.isValidPolicy(0));
        assertThrows(IllegalArgumentException.class, () -> ErasureCode.of(0));
    }

    @Test
    void dataStripsArePiecesOfTheStripes() {
        ErasureCode ec = ErasureCode.of(ErasureCode.policy(4, 2));
        byte[] buf = new byte[1024];
        for (int i = 0; i < buf.length; i++) buf[i] = (byte) i;
        byte[][] s = ec.encode(buf, 0, buf.length);
        assertEquals(6, s.length);
        assertEquals(256, s[0].length);
        // strip 1 = bytes 128..255 of stripe 0, then bytes 128..255 of stripe 1 (offset 640)
        assertEquals((byte) 128, s[1][0]);
        assertEquals((byte) (640 & 0xFF), s[1][128]);
        assertEquals(128, ec.stripOffset(512));
        byte[] back = new byte[1024];
        ec.join(new byte[][] {s[0], s[1], s[2], s[3]}, back, 0);
        assertArrayEquals(buf, back);
    }

    @Test
    void anyDataStripsRebuildEveryOtherStrip() {
        Random rnd = new Random(7);
        for (int[] dp : new int[][] {{2, 1}, {4, 2}, {4, 5}, {8, 4}, {16, 7}, {16, 15}}) {
            ErasureCode ec = ErasureCode.of(ErasureCode.policy(dp[0], dp[1]));
            byte[] buf = new byte[4 * ErasureCode.STRIPE];
            rnd.nextBytes(buf);
            byte[][] full = ec.encode(buf, 0, buf.length);
            for (int trial = 0; trial < 40; trial++) {
                byte[][] some = full.clone();
                // lose p strips chosen at random
                int lost = 0;
                while (lost < dp[1]) {
                    int i = rnd.nextInt(some.length);
                    if (some[i] != null) { some[i] = null; lost++; }
                }
                ec.reconstruct(some);
                for (int i = 0; i < full.length; i++) assertArrayEquals(full[i], some[i], dp[0] + ":" + dp[1] + " strip " + i);
            }
        }
    }

    @Test
    void parityIsLinearSoZeroStripesHaveZeroParity() {
        ErasureCode ec = ErasureCode.of(ErasureCode.policy(4, 3));
        byte[][] s = ec.encode(new byte[2048], 0, 2048);
        for (byte[] strip : s) for (byte b : strip) assertEquals(0, b);
    }

    @Test
    void tooFewStripsIsRefused() {
        ErasureCode ec = ErasureCode.of(ErasureCode.policy(4, 2));
        byte[][] s = ec.encode(new byte[512], 0, 512);
        s[0] = null;
        s[1] = null;
        s[2] = null;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ec.reconstruct(s));
        assertTrue(e.getMessage().contains("3 of the 4"));
    }

    @Test
    void matrixInverseIsAnInverse() {
        byte[][] m = {{1, 2, 3}, {4, 5, 6}, {7, 8, 10}};
        byte[][] inv = ErasureCode.invert(ErasureCode.invert(m));
        for (int i = 0; i < 3; i++) assertArrayEquals(m[i], inv[i]);
    }
}
