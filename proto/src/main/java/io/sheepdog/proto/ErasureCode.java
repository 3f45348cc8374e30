package io.sheepdog.proto;

import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Erasure coding of data objects (docs/protocol.md §13): a systematic Reed-Solomon code over GF(2^8) with d data strips
 * and p parity strips. An object is cut into 512-byte stripes; each stripe into d pieces of 512/d bytes. Strip j
 * (kept by placement position j) is piece j of every stripe, one after the other, so object offset {@code o} is
 * strip offset {@code (o / 512) * (512 / d)} and a strip is {@code objectSize / d} bytes long. Parity strips are
 * positions d..d+p-1. Any d strips give back the others.
 *
 * <p>The matrix is the zfec construction the original uses (so parity bytes match): rows of a Vandermonde matrix
 * at the points 0, 1, α, α², ... made systematic by the inverse of its top d×d block.
 */
public final class ErasureCode {
    /** Bytes of one stripe ({@code SD_EC_DATA_STRIPE_SIZE}). */
    public static final int STRIPE = 512;
    public static final int MAX_PARITY = 15;

    private static final byte[] EXP = new byte[512];
    private static final int[] LOG = new int[256];
    /** MUL[a][b] = a·b in GF(2^8): one table row per coefficient keeps the inner loops to a load and an xor. */
    private static final byte[][] MUL = new byte[256][256];
    private static final ConcurrentHashMap<Integer, ErasureCode> CODES = new ConcurrentHashMap<>();

    static {
        int x = 1;
        for (int i = 0; i < 255; i++) {
            EXP[i] = (byte) x;
            LOG[x] = i;
            x <<= 1;
            if ((x & 0x100) != 0) x ^= 0x11D; // x^8 + x^4 + x^3 + x^2 + 1
        }
        for (int i = 255; i < EXP.length; i++) EXP[i] = EXP[i - 255];
        for (int a = 1; a < 256; a++) {
            for (int b = 1; b < 256; b++) MUL[a][b] = EXP[LOG[a] + LOG[b]];
        }
    }

    private final int d;
    private final int p;
    private final int unit;
    /** (d+p)×d encoding matrix; the top d rows are the identity. */
    private final byte[][] matrix;

    private ErasureCode(int d, int p) {
        this.d = d;
        this.p = p;
        this.unit = STRIPE / d;
        int n = d + p;
        byte[][] v = new byte[n][d];
        v[0][0] = 1;
        for (int r = 1; r < n; r++) {
            for (int c = 0; c < d; c++) v[r][c] = power(r - 1, c);
        }
        byte[][] topInverse = invert(Arrays.copyOf(v, d));
        matrix = multiply(v, topInverse);
    }

    /** The code of an EC policy byte; {@link IllegalArgumentException} for 0 or an invalid policy. */
    public static ErasureCode of(int policy) {
        if (!isValidPolicy(policy)) throw new IllegalArgumentException("not an erasure code policy: " + policy);
        return CODES.computeIfAbsent(policy, k -> new ErasureCode(dataStrips(k), parityStrips(k)));
    }

    // ------------------------------------------------------------------ the policy byte

    /** {@code copy_policy} for d data and p parity strips: {@code (d/2) << 4 | p}. */
    public static int policy(int d, int p) {
        if (!isValid(d, p)) throw new IllegalArgumentException("invalid erasure code " + d + ":" + p);
        return (d / 2) << 4 | p;
    }

    public static boolean isValid(int d, int p) {
        return (d == 2 || d == 4 || d == 8 || d == 16) && p >= 1 && p <= MAX_PARITY && d + p <= Proto.MAX_COPIES;
    }

    public static boolean isValidPolicy(int policy) {
        return policy > 0 && policy <= 0xFF && isValid(dataStrips(policy), parityStrips(policy));
    }

    public static int dataStrips(int policy) { return ((policy >> 4) & 0xF) * 2; }

    public static int parityStrips(int policy) { return policy & 0xF; }

    /** Whether objects of {@code oid}'s kind are erasure coded in an EC VDI: data and vmstate; the rest is replicated. */
    public static boolean appliesTo(long oid) { return Oids.isData(oid) || Oids.isVmstate(oid); }

    // ------------------------------------------------------------------ geometry

    public int dataStrips() { return d; }

    /** This code's {@code copy_policy} byte. */
    public int policy() { return policy(d, p); }

    public int parityStrips() { return p; }

    public int totalStrips() { return d + p; }

    /** Bytes of each strip piece of one stripe (512 / d). */
    public int unit() { return unit; }

    /** The strip offset where object offset {@code objectOffset} (a multiple of 512) lands. */
    public long stripOffset(long objectOffset) { return objectOffset / STRIPE * unit; }

    /** The strip length that holds {@code objectLength} bytes (a multiple of 512) of the object. */
    public int stripLength(int objectLength) { return objectLength / STRIPE * unit; }

    // ------------------------------------------------------------------ coding

    /**
     * Cuts {@code len} bytes of {@code buf} from {@code off} (whole stripes) into its d+p strips: the d data strips
     * (pieces of the stripes) followed by the p parity strips.
     */
    public byte[][] encode(byte[] buf, int off, int len) {
        if (len % STRIPE != 0) throw new IllegalArgumentException("not whole stripes: " + len);
        int stripLen = len / STRIPE * unit;
        byte[][] strips = new byte[d + p][stripLen];
        for (int s = 0, src = off, dst = 0; dst < stripLen; s++, dst += unit) {
            for (int j = 0; j < d; j++, src += unit) System.arraycopy(buf, src, strips[j], dst, unit);
        }
        for (int k = 0; k < p; k++) combine(matrix[d + k], strips, strips[d + k]);
        return strips;
    }

    /** Interleaves the d data strips back into the stripes they came from, written to {@code out} at {@code off}. */
    public void join(byte[][] dataStrips, byte[] out, int off) {
        int stripLen = dataStrips[0].length;
        for (int src = 0, dst = off; src < stripLen; src += unit) {
            for (int j = 0; j < d; j++, dst += unit) System.arraycopy(dataStrips[j], src, out, dst, unit);
        }
    }

    /**
     * Fills in the null entries of {@code strips} (d+p entries, indexed by strip) from any d that are present;
     * {@link IllegalArgumentException} if fewer than d are.
     */
    public void reconstruct(byte[][] strips) {
        reconstruct(strips, true);
    }

    /** Like {@link #reconstruct} but fills in only the data strips (what a read needs). */
    public void reconstructData(byte[][] strips) {
        reconstruct(strips, false);
    }

    private void reconstruct(byte[][] strips, boolean parityToo) {
        if (strips.length != d + p) throw new IllegalArgumentException("want " + (d + p) + " strips");
        int[] have = new int[d];
        int n = 0;
        for (int i = 0; i < strips.length && n < d; i++) if (strips[i] != null) have[n++] = i;
        if (n < d) throw new IllegalArgumentException("only " + n + " of the " + d + " strips needed");
        boolean dataComplete = true;
        for (int j = 0; j < d; j++) dataComplete &= strips[j] != null;
        if (!dataComplete) {
            // the rows of the strips we have, inverted, turn them back into the data strips
            byte[][] rows = new byte[d][];
            byte[][] src = new byte[d][];
            for (int i = 0; i < d; i++) {
                rows[i] = matrix[have[i]];
                src[i] = strips[have[i]];
            }
            byte[][] inv = invert(rows);
            for (int j = 0; j < d; j++) {
                if (strips[j] != null) continue;
                byte[] out = new byte[src[0].length];
                combine(inv[j], src, out);
                strips[j] = out;
            }
        }
        for (int k = d; parityToo && k < d + p; k++) {
            if (strips[k] != null) continue;
            byte[] out = new byte[strips[0].length];
            combine(matrix[k], strips, out);
            strips[k] = out;
        }
    }

    /** out = Σ coef[c]·in[c] over c < coef.length (out starts zero). */
    private static void combine(byte[] coef, byte[][] in, byte[] out) {
        for (int c = 0; c < coef.length; c++) {
            int a = coef[c] & 0xFF;
            if (a == 0) continue;
            byte[] src = in[c];
            if (a == 1) {
                for (int i = 0; i < out.length; i++) out[i] ^= src[i];
            } else {
                byte[] row = MUL[a];
                for (int i = 0; i < out.length; i++) out[i] ^= row[src[i] & 0xFF];
            }
        }
    }

    // ------------------------------------------------------------------ GF(2^8) matrices

    /** α^(e·c) as the Vandermonde entry of point α^e, power c. */
    private static byte power(int e, int c) { return EXP[(e * c) % 255]; }

    private static byte mul(byte a, byte b) { return MUL[a & 0xFF][b & 0xFF]; }

    private static byte inverse(byte a) {
        if (a == 0) throw new ArithmeticException("0 has no inverse");
        return EXP[255 - LOG[a & 0xFF]];
    }

    private static byte[][] multiply(byte[][] a, byte[][] b) {
        int n = a.length, m = b[0].length, k = b.length;
        byte[][] out = new byte[n][m];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                byte s = 0;
                for (int t = 0; t < k; t++) s ^= mul(a[i][t], b[t][j]);
                out[i][j] = s;
            }
        }
        return out;
    }

    /** Gauss-Jordan inverse of a square matrix (rows copied, the argument is not changed). */
    static byte[][] invert(byte[][] m) {
        int n = m.length;
        byte[][] a = new byte[n][];
        byte[][] inv = new byte[n][n];
        for (int i = 0; i < n; i++) {
            a[i] = m[i].clone();
            inv[i][i] = 1;
        }
        for (int col = 0; col < n; col++) {
            int pivot = col;
            while (pivot < n && a[pivot][col] == 0) pivot++;
            if (pivot == n) throw new ArithmeticException("singular matrix");
            byte[] t = a[col]; a[col] = a[pivot]; a[pivot] = t;
            t = inv[col]; inv[col] = inv[pivot]; inv[pivot] = t;
            byte f = inverse(a[col][col]);
            for (int j = 0; j < n; j++) {
                a[col][j] = mul(a[col][j], f);
                inv[col][j] = mul(inv[col][j], f);
            }
            for (int r = 0; r < n; r++) {
                if (r == col || a[r][col] == 0) continue;
                byte g = a[r][col];
                for (int j = 0; j < n; j++) {
                    a[r][j] ^= mul(g, a[col][j]);
                    inv[r][j] ^= mul(g, inv[col][j]);
                }
            }
        }
        return inv;
    }
}
