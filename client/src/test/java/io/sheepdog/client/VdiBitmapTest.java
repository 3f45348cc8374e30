package io.sheepdog.client;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Proto;
import java.util.BitSet;
import java.util.Random;
import org.junit.jupiter.api.Test;

class VdiBitmapTest {

    /** nextSet against java.util.BitSet on sparse and dense maps, from every kind of starting point. */
    @Test
    void nextSetFindsEveryBitInOrder() {
        Random r = new Random(7);
        for (int density : new int[] {0, 1, 100, 10_000, 400_000}) {
            VdiBitmap m = VdiBitmap.empty();
            BitSet ref = new BitSet(Proto.NR_VDIS);
            for (int k = 0; k < density; k++) {
                int v = r.nextInt(Proto.NR_VDIS);
                m.set(v);
                ref.set(v);
            }
            for (int v : new int[] {0, 7, 8, 63, 64, Proto.NR_VDIS - 9, Proto.NR_VDIS - 8, Proto.NR_VDIS - 1}) {
                m.set(v);
                ref.set(v);
            }
            int n = 0;
            for (int v = m.nextSet(0), want = ref.nextSetBit(0); ; v = m.nextSet(v + 1), want = ref.nextSetBit(want + 1)) {
                assertEquals(want, v, "density " + density);
                if (v < 0) break;
                n++;
            }
            assertEquals(ref.cardinality(), n);
            for (int k = 0; k < 2000; k++) {
                int from = r.nextInt(Proto.NR_VDIS);
                assertEquals(ref.nextSetBit(from), m.nextSet(from), "from " + from);
            }
        }
    }

    @Test
    void edges() {
        VdiBitmap m = VdiBitmap.empty();
        assertEquals(-1, m.nextSet(0));
        assertTrue(m.isEmpty());
        m.set(Proto.NR_VDIS - 1);
        assertEquals(Proto.NR_VDIS - 1, m.nextSet(-5));
        assertEquals(Proto.NR_VDIS - 1, m.nextSet(Proto.NR_VDIS - 1));
        assertEquals(-1, m.nextSet(Proto.NR_VDIS));
        assertFalse(m.isEmpty());
        m.set(0);
        assertEquals(0, m.nextSet(0));
        assertEquals(Proto.NR_VDIS - 1, m.nextSet(1));
    }
}
