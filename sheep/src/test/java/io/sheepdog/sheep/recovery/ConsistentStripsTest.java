package io.sheepdog.sheep.recovery;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.sheepdog.proto.ErasureCode;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Recovery rebuilding a strip from strips of different ages: a stale strip from before a write must not be mixed
 * with the current ones when enough strips show which belong together.
 */
class ConsistentStripsTest {
    private static final ErasureCode EC = ErasureCode.of(ErasureCode.policy(4, 2));
    private static final long KEY = 0x0002060900000001L;

    private static byte[] object(long seed) {
        byte[] b = new byte[4 * 4096];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void anOutdatedStripIsLeftOutWhenTheOthersAgree() {
        byte[] now = object(1), before = now.clone();
        System.arraycopy(object(2), 0, before, 1024, 2048); // the object before a write of 2 KiB
        byte[][] current = EC.encode(now, 0, now.length), old = EC.encode(before, 0, before.length);
        // strip 3 is being rebuilt, and a stale copy of it from before the write was read first (ranked best)
        byte[][] read = current.clone();
        read[3] = old[3];
        byte[][] chosen = RecoveryManager.consistentStrips(EC, read, List.of(3, 0, 1, 2, 4, 5), KEY);
        assertNull(chosen[3], "the outdated strip is not used");
        EC.reconstruct(chosen);
        assertArrayEquals(current[3], chosen[3]);

        // the same with the outdated strip among the sources of another one: six strips read, strip 1 outdated
        byte[][] all = current.clone();
        all[1] = old[1];
        chosen = RecoveryManager.consistentStrips(EC, all, List.of(1, 0, 2, 4, 5, 3), KEY);
        assertNull(chosen[1], "the outdated strip is not used");
    }

    @Test
    void withOneStripMoreThanDAMismatchIsSeenButNotPlacedSoTheBestRankedAreTaken() {
        byte[] now = object(5), before = now.clone();
        before[100] ^= 1;
        byte[][] read = EC.encode(now, 0, now.length);
        read[5] = EC.encode(before, 0, before.length)[5];
        read[3] = null;
        byte[][] chosen = RecoveryManager.consistentStrips(EC, read, List.of(0, 1, 2, 4, 5), KEY);
        assertEquals(List.of(0, 1, 2, 4), present(chosen));
    }

    @Test
    void theBestRankedStripsAreTakenWhenAllAgree() {
        byte[] now = object(3);
        byte[][] read = EC.encode(now, 0, now.length);
        read[2] = null;
        byte[][] chosen = RecoveryManager.consistentStrips(EC, read, List.of(5, 0, 1, 3, 4), KEY);
        assertEquals(List.of(0, 1, 3, 5), present(chosen));
    }

    @Test
    void exactlyDStripsAreTakenAsTheyAre() {
        byte[] now = object(4);
        byte[][] current = EC.encode(now, 0, now.length), read = current.clone();
        read[0] = null;
        read[5] = null;
        byte[][] chosen = RecoveryManager.consistentStrips(EC, read, List.of(1, 2, 3, 4), KEY);
        EC.reconstruct(chosen);
        assertArrayEquals(current[0], chosen[0]);
    }

    /** The indexes of the strips a set holds. */
    private static List<Integer> present(byte[][] set) {
        return java.util.stream.IntStream.range(0, set.length).filter(i -> set[i] != null).boxed().toList();
    }
}
