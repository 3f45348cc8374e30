package io.sheepdog.proto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Versions of the strips of an erasure-coded object. Every write to an object's strips gives them a new version; a
 * strip keeps the bytes its last write replaced, so it can show either its version or the one before it. A read,
 * recovery or check decodes only d strips that show one and the same version: strips of different ages are never
 * mixed, and a write that reached some strips and not others leaves the object readable at its old version (or at
 * the new one, when at least d strips have it).
 *
 * <p>A version is a sequence number in its high 32 bits and a random salt in its low 32 bits, so two writes that
 * raced to the same sequence number (one of which failed) never share a version. Version 0 is a strip without a
 * version (written by a peer that does not version strips).
 *
 * <p>On the peer wire (daemon-internal: requests with {@link SdFlags#CMD_VERSIONED}) a strip's state is 16 bytes,
 * little endian: its version and the version its last write can be undone to (0: none).
 */
public final class StripVersion {
    private StripVersion() {}

    /** In a versioned read, "whatever version the strip holds"; in a versioned create, "whatever it holds now". */
    public static final long ANY = -1;
    /** Bytes of a strip state on the wire. */
    public static final int STATE_BYTES = 16;

    /** What a strip can show: its version, and the version its last write can be undone to (0 if none). */
    public record State(long version, long undoTo) {
        public boolean shows(long v) { return version == v || (undoTo != 0 && undoTo == v); }

        public byte[] encode() {
            return ByteBuffer.allocate(STATE_BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(version).putLong(undoTo).array();
        }

        public static State decode(byte[] b, int at) {
            ByteBuffer bb = ByteBuffer.wrap(b, at, STATE_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            return new State(bb.getLong(), bb.getLong());
        }
    }

    /** The version a write on top of {@code base} gives the strips. */
    public static long next(long base) {
        long seq = (base >>> 32) + 1;
        long salt = ThreadLocalRandom.current().nextInt(1, Integer.MAX_VALUE);
        return (seq << 32) | salt;
    }

    /** The version a new object's strips start with. */
    public static long first() { return next(0); }

    public static long sequence(long v) { return v >>> 32; }

    /**
     * The version to decode {@code strips} at (one state per strip index, null where the strip is absent or did not
     * answer): the newest version that at least {@code d} strips show, or null if no version has d strips. Between
     * two versions of one sequence number (a write that failed and one that followed it) the one more strips show.
     */
    public static Long choose(State[] strips, int d) {
        int[] index = new int[strips.length];
        for (int i = 0; i < index.length; i++) index[i] = i;
        return choose(index, strips, d);
    }

    /**
     * As {@link #choose(State[], int)} for copies of strips that may repeat an index (a live strip and stale copies
     * of it): {@code states[k]} is a copy of strip {@code index[k]}, and a version counts the distinct indexes that
     * show it.
     */
    public static Long choose(int[] index, State[] states, int d) {
        return choose(index, states, d, Long.MAX_VALUE);
    }

    /**
     * As {@link #choose(int[], State[], int)} among the versions older than {@code newer} (by sequence number): what
     * the strips can still show from before it. Null if no such version has d strips.
     */
    public static Long chooseBefore(int[] index, State[] states, int d, long newer) {
        return choose(index, states, d, sequence(newer));
    }

    private static Long choose(int[] index, State[] states, int d, long seqBelow) {
        Map<Long, BitSet> shown = new LinkedHashMap<>();
        for (int k = 0; k < states.length; k++) {
            State s = states[k];
            if (s == null) continue;
            shown.computeIfAbsent(s.version(), x -> new BitSet()).set(index[k]);
            if (s.undoTo() != 0) shown.computeIfAbsent(s.undoTo(), x -> new BitSet()).set(index[k]);
        }
        Long best = null;
        int bestCount = 0;
        for (var e : shown.entrySet()) {
            int n = e.getValue().cardinality();
            if (n < d) continue;
            long v = e.getKey();
            if (sequence(v) >= seqBelow) continue;
            if (best == null || sequence(v) > sequence(best) || (sequence(v) == sequence(best) && n > bestCount)) {
                best = v;
                bestCount = n;
            }
        }
        return best;
    }
}
