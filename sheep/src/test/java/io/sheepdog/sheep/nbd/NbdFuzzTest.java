package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Random and mutated client traffic against the connection state machine (EmbeddedChannel, requests served
 * synchronously so every reply is checkable in order). Checked after every session: no internal error or escaping
 * exception, every complete request answered exactly once and in well-formed replies, no byte of the disk changed
 * outside the ranges that write-type requests named, every opened export closed again.
 */
class NbdFuzzTest {
    private static final int SIZE = (128 << 10) + 1234;        // 3 allocation chunks, not a multiple of anything
    private static final int MAX = 16 * 1024;                   // max payload: oversize paths stay cheap
    private static final byte[] ZEROES = new byte[SIZE];
    private static final NbdServerConfig CONFIG = NbdServerConfig.defaults().withPort(0).withMaxPayload(MAX);

    /** A request header as the client sent it (payload not kept). */
    private record Req(int flags, int type, long handle, long offset, long length) {}

    /** Session parameters the oracle needs. */
    private record Session(boolean structured, boolean allocation, boolean readOnly) {}

    private final MemoryDisk rw = new MemoryDisk("rw", SIZE, false, true, false);
    private final MemoryDisk ro = new MemoryDisk("ro", SIZE, true, false, false);
    private final MemoryExportProvider provider = new MemoryExportProvider().add(rw).add(ro);

    NbdFuzzTest() {
        byte[] init = new byte[SIZE];
        new Random(1).nextBytes(init);
        rw.fill(init);
        ro.fill(init);
    }

    // ---------------------------------------------------------------------------------------- oracle

    /** The error a correct server returns (0 for success), in the server's documented order of checks. */
    private static int expectedError(Req r, Session s) {
        boolean inRange = r.offset() >= 0 && r.offset() <= SIZE && r.length() <= SIZE - r.offset();
        int allowed = CMD_FLAG_FUA;
        int e = 0;
        switch (r.type()) {
            case CMD_READ -> {
                if (s.structured()) allowed |= CMD_FLAG_DF;
                e = r.length() > MAX ? EOVERFLOW : !inRange ? EINVAL : 0;
            }
            case CMD_WRITE -> e = s.readOnly() ? EPERM : r.length() > MAX ? EOVERFLOW : !inRange ? ENOSPC : 0;
            case CMD_FLUSH -> e = 0;
            case CMD_TRIM -> e = s.readOnly() ? EPERM : !inRange ? EINVAL : 0;
            case CMD_WRITE_ZEROES -> {
                allowed |= CMD_FLAG_NO_HOLE;
                e = s.readOnly() ? EPERM : !inRange ? ENOSPC : 0;
            }
            case CMD_BLOCK_STATUS -> {
                allowed |= CMD_FLAG_REQ_ONE;
                e = !s.allocation() || r.length() == 0 || !inRange ? EINVAL : 0;
            }
            default -> e = EINVAL;
        }
        if (e == 0 && (r.flags() & ~allowed) != 0) e = EINVAL;
        return e;
    }

    // ---------------------------------------------------------------------------------------- generators

    private static long pickOffset(Random rnd) {
        return switch (rnd.nextInt(10)) {
            case 0 -> 0;
            case 1 -> SIZE - rnd.nextInt(4096);
            case 2 -> SIZE;
            case 3 -> SIZE + rnd.nextInt(100);
            case 4 -> rnd.nextLong();
            case 5 -> -1L - rnd.nextInt(10);
            default -> rnd.nextInt(SIZE);
        };
    }

    private static long pickLength(Random rnd, long offset) {
        return switch (rnd.nextInt(12)) {
            case 0 -> 0;
            case 1 -> Math.max(0, Math.min(0xffffffffL, SIZE - offset));
            case 2 -> Math.max(0, Math.min(0xffffffffL, SIZE - offset + 1));
            case 3 -> MAX;
            case 4 -> MAX + 1;
            case 5 -> rnd.nextLong() & 0xffffffffL;
            case 6 -> 0xffffffffL;
            default -> 1 + rnd.nextInt(rnd.nextBoolean() ? 512 : 8192);
        };
    }

    private static int pickType(Random rnd) {
        int p = rnd.nextInt(100);
        if (p < 25) return CMD_READ;
        if (p < 55) return CMD_WRITE;
        if (p < 60) return CMD_FLUSH;
        if (p < 70) return CMD_TRIM;
        if (p < 80) return CMD_WRITE_ZEROES;
        if (p < 92) return CMD_BLOCK_STATUS;
        if (p < 95) return CMD_CACHE;
        return rnd.nextInt(65536);
    }

    private static int pickFlags(Random rnd, int type) {
        int p = rnd.nextInt(10);
        if (p < 4) return 0;
        if (p < 6) return CMD_FLAG_FUA;
        if (p < 9) {
            return switch (type) {
                case CMD_READ -> CMD_FLAG_DF;
                case CMD_WRITE_ZEROES -> CMD_FLAG_NO_HOLE | (rnd.nextBoolean() ? CMD_FLAG_FUA : 0);
                case CMD_BLOCK_STATUS -> CMD_FLAG_REQ_ONE;
                default -> 1 << rnd.nextInt(6);
            };
        }
        return rnd.nextInt(65536);
    }

    /** A random request; WRITE payloads are only generated up to 2*MAX (longer writes get length MAX+1). */
    private static Req randomReq(Random rnd, long handle) {
        int type = pickType(rnd);
        long offset = pickOffset(rnd);
        long length = pickLength(rnd, offset);
        if (type == CMD_WRITE && length > 2L * MAX) length = MAX + 1;
        if (type == CMD_DISC) type = CMD_FLUSH;      // sessions end with their own DISC
        return new Req(pickFlags(rnd, type), type, handle, offset, length);
    }

    /** Random bytes that payloads are cut from (generating fresh random payloads dominated the run time). */
    private static final byte[] POOL = new byte[4 * MAX];
    static {
        new Random(42).nextBytes(POOL);
    }

    private static byte[] encode(Req r, Random rnd) {
        int len = r.type() == CMD_WRITE ? (int) r.length() : 0;
        byte[] frame = new byte[REQUEST_HEADER_LENGTH + len];
        ByteBuffer.wrap(frame).putInt(REQUEST_MAGIC).putShort((short) r.flags()).putShort((short) r.type())
                .putLong(r.handle()).putLong(r.offset()).putInt((int) r.length());
        if (len > 0) System.arraycopy(POOL, rnd.nextInt(POOL.length - len), frame, REQUEST_HEADER_LENGTH, len);
        return frame;
    }

    private EmbeddedNbd openSession(Random rnd, Session s) {
        EmbeddedNbd nbd = new EmbeddedNbd(provider, CONFIG);
        nbd.go(s.readOnly() ? "ro" : "rw", s.structured(), s.allocation());
        return nbd;
    }

    private static Session randomSession(Random rnd) {
        boolean structured = rnd.nextInt(4) != 0;
        return new Session(structured, structured && rnd.nextBoolean(), rnd.nextInt(5) == 0);
    }

    // ---------------------------------------------------------------------------------------- tests

    @Test
    @Timeout(120)
    void cleanSessionsAgreeWithAModelOfTheDisk() {
        Random rnd = new Random(0xC1EA);
        long packets = 0;
        for (int session = 0; session < 300; session++) {
            Session s = randomSession(rnd);
            MemoryDisk disk = s.readOnly() ? ro : rw;
            byte[] model = disk.snapshot();
            try (EmbeddedNbd nbd = openSession(rnd, s)) {
                int n = 80 + rnd.nextInt(120);
                for (int i = 0; i < n; i++) {
                    Req r = randomReq(rnd, i);
                    byte[] frame = encode(r, rnd);
                    if (rnd.nextInt(4) == 0) nbd.sendSplit(frame, 1 + rnd.nextInt(Math.max(64, frame.length / 16)));
                    else nbd.send(frame);
                    packets++;
                    check(nbd, r, s, frame, model);
                }
                // a clean disconnect closes the connection
                nbd.send(NbdWire.request(0, CMD_DISC, 9999, 0, 0, null));
                packets++;
                assertFalse(nbd.isOpen(), "DISC did not close");
                assertEquals(0, nbd.unexpectedErrors.get());
                assertEquals(0, nbd.budget.used(), "payload budget given back");
            }
            assertArrayEquals(model, disk.snapshot(), "disk differs from the model after session " + session);
        }
        assertExportsClosed();
        assertTrue(packets >= 40_000, "only " + packets + " packets");
    }

    /** Reads the reply to {@code r}, checks it against the oracle and the model, applies successful writes. */
    private static void check(EmbeddedNbd nbd, Req r, Session s, byte[] frame, byte[] model) {
        NbdWire.Reply reply = readReply(nbd, r);
        assertEquals(r.handle(), reply.handle());
        assertTrue(reply.done());
        int want = expectedError(r, s);
        assertEquals(want, reply.error(), () -> "errno for " + r + " in " + s);
        if (want != 0) {
            if (s.structured() && reply.chunkType() >= 0) assertEquals(REPLY_TYPE_ERROR, reply.chunkType());
            return;
        }
        int off = (int) r.offset();
        int len = (int) r.length();
        switch (r.type()) {
            case CMD_READ -> {
                if (s.structured()) {
                    assertEquals(len == 0 ? REPLY_TYPE_NONE : REPLY_TYPE_OFFSET_DATA, reply.chunkType());
                    if (len > 0) assertEquals(r.offset(), reply.offset());
                }
                assertArrayEquals(Arrays.copyOfRange(model, off, off + len), reply.data());
            }
            case CMD_WRITE -> System.arraycopy(frame, REQUEST_HEADER_LENGTH, model, off, len);
            case CMD_TRIM, CMD_WRITE_ZEROES -> Arrays.fill(model, off, off + len, (byte) 0);
            case CMD_BLOCK_STATUS -> {
                assertEquals(REPLY_TYPE_BLOCK_STATUS, reply.chunkType());
                ByteBuffer b = ByteBuffer.wrap(reply.data());
                assertEquals(NbdNegotiator.ALLOCATION_CONTEXT_ID, b.getInt());
                long pos = off;
                int count = 0;
                while (b.hasRemaining()) {
                    long l = b.getInt() & 0xffffffffL;
                    int f = b.getInt();
                    assertTrue(l > 0);
                    if ((f & STATE_ZERO) != 0) {
                        assertTrue(Arrays.equals(model, (int) pos, (int) (pos + l), ZEROES, 0, (int) l),
                                "extent flagged zero at " + pos + "+" + l + " is not zero");
                    }
                    pos += l;
                    count++;
                }
                assertTrue(pos <= off + r.length());
                if ((r.flags() & CMD_FLAG_REQ_ONE) != 0) assertEquals(1, count);
            }
            default -> { }
        }
    }

    private static NbdWire.Reply readReply(EmbeddedNbd nbd, Req r) {
        try {
            return NbdWire.readReply(nbd.out, h -> r.type() == CMD_READ ? (int) r.length() : 0);
        } catch (IOException e) {
            throw new AssertionError("no well-formed reply to " + r + ": " + e.getMessage(), e);
        }
    }

    @Test
    @Timeout(120)
    void mutatedTransmissionNeverTouchesBytesOutsideWriteRanges() {
        Random rnd = new Random(0xF00D);
        long packets = 0;
        for (int session = 0; session < 500; session++) {
            Session s = randomSession(rnd);
            MemoryDisk disk = s.readOnly() ? ro : rw;
            byte[] before = disk.snapshot();
            byte[] stream;
            {
                List<byte[]> frames = new ArrayList<>();
                int n = 40 + rnd.nextInt(120);
                for (int i = 0; i < n; i++) frames.add(encode(randomReq(rnd, rnd.nextInt(1000)), rnd));
                packets += n;
                stream = mutate(rnd, NbdHandshakeTest.concat(frames.toArray(new byte[0][])));
            }
            List<Req> parsed = new ArrayList<>();
            BitSet mask = new BitSet();
            int answered = frame(stream, s, parsed, mask);
            try (EmbeddedNbd nbd = openSession(rnd, s)) {
                feed(nbd, stream, rnd);
                for (int i = 0; i < answered; i++) {
                    Req r = parsed.get(i);
                    if (nbd.out.available() == 0) fail("session " + session + " " + s + ": no reply to request " + i + " of "
                            + answered + " " + parsed + " open=" + nbd.isOpen());
                    NbdWire.Reply reply = readReply(nbd, r);
                    assertEquals(r.handle(), reply.handle(), "reply order");
                    assertEquals(expectedError(r, s), reply.error(), () -> "errno for " + r);
                }
                assertEquals(0, nbd.out.available(), "replies beyond the requests sent");
                assertEquals(0, nbd.unexpectedErrors.get());
            }
            byte[] after = disk.snapshot();
            if (s.readOnly()) assertArrayEquals(before, after, "read-only export changed");
            for (int i = Arrays.mismatch(before, after); i >= 0 && i < SIZE; ) {
                if (!mask.get(i)) fail("byte " + i + " changed outside every write range");
                int next = Arrays.mismatch(before, i + 1, SIZE, after, i + 1, SIZE);
                i = next < 0 ? -1 : i + 1 + next;
            }
        }
        assertExportsClosed();
        assertTrue(packets >= 40_000, "only " + packets + " packets");
    }

    /**
     * Frames a transmission stream the way the protocol defines it (28-byte headers; only WRITE carries a payload
     * of its length); stops at a bad magic, a DISC or the end. Fills {@code parsed} and the write-range
     * {@code mask}; returns how many of {@code parsed} get a reply (a WRITE cut short is answered only if refused).
     */
    private static int frame(byte[] stream, Session s, List<Req> parsed, BitSet mask) {
        ByteBuffer b = ByteBuffer.wrap(stream);
        while (b.remaining() >= REQUEST_HEADER_LENGTH) {
            if (b.getInt() != REQUEST_MAGIC) break;
            Req r = new Req(b.getShort() & 0xffff, b.getShort() & 0xffff, b.getLong(), b.getLong(), b.getInt() & 0xffffffffL);
            if (r.type() == CMD_DISC) break;
            parsed.add(r);
            if (r.type() == CMD_WRITE || r.type() == CMD_TRIM || r.type() == CMD_WRITE_ZEROES) {
                if (r.offset() >= 0 && r.offset() < SIZE) mask.set((int) r.offset(), (int) Math.min(SIZE, r.offset() + r.length()));
            }
            if (r.type() == CMD_WRITE) {
                if (b.remaining() < r.length()) {
                    return expectedError(r, s) != 0 ? parsed.size() : parsed.size() - 1;
                }
                b.position(b.position() + (int) r.length());
            }
        }
        return parsed.size();
    }

    private static byte[] mutate(Random rnd, byte[] in) {
        byte[] b = in;
        int n = rnd.nextInt(4);        // a quarter of sessions stay unmutated
        for (int m = 0; m < n && b.length > 0; m++) {
            int pos = rnd.nextInt(b.length);
            switch (rnd.nextInt(7)) {
                case 0 -> b[pos] ^= (byte) (1 << rnd.nextInt(8));
                case 1 -> b[pos] = (byte) new int[] {0, 0xff, 0x7f, 0x80, 1}[rnd.nextInt(5)];
                case 2 -> {      // insert random bytes
                    byte[] ins = new byte[1 + rnd.nextInt(40)];
                    rnd.nextBytes(ins);
                    b = NbdHandshakeTest.concat(Arrays.copyOf(b, pos), ins, Arrays.copyOfRange(b, pos, b.length));
                }
                case 3 -> b = NbdHandshakeTest.concat(Arrays.copyOf(b, pos),
                        Arrays.copyOfRange(b, Math.min(b.length, pos + 1 + rnd.nextInt(64)), b.length));
                case 4 -> b = Arrays.copyOf(b, pos);                                   // truncate
                case 5 -> {      // duplicate a slice
                    int len = Math.min(b.length - pos, 1 + rnd.nextInt(200));
                    b = NbdHandshakeTest.concat(Arrays.copyOf(b, pos + len), Arrays.copyOfRange(b, pos, b.length));
                }
                default -> {     // overwrite a 32-bit field with an interesting value
                    int v = new int[] {0, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, SIZE, MAX + 1}[rnd.nextInt(6)];
                    for (int k = 0; k < 4 && pos + k < b.length; k++) b[pos + k] = (byte) (v >>> (24 - 8 * k));
                }
            }
        }
        return b;
    }

    private static void feed(EmbeddedNbd nbd, byte[] stream, Random rnd) {
        int pos = 0;
        while (pos < stream.length && nbd.isOpen()) {
            int piece = rnd.nextInt(3) == 0 ? 1 + rnd.nextInt(32) : 1 + rnd.nextInt(stream.length);
            int len = Math.min(piece, stream.length - pos);
            nbd.send(Arrays.copyOfRange(stream, pos, pos + len));
            pos += len;
        }
    }

    @Test
    @Timeout(60)
    void mutatedNegotiationNeverTouchesTheDiskAndAnswersInWellFormedReplies() {
        Random rnd = new Random(0xBEEF);
        byte[] rwBefore = rw.snapshot();
        byte[] roBefore = ro.snapshot();
        long packets = 0;
        for (int session = 0; session < 3000; session++) {
            List<byte[]> parts = new ArrayList<>();
            parts.add(NbdWire.clientFlags(rnd.nextInt(10) == 0 ? rnd.nextInt() : FLAG_C_FIXED_NEWSTYLE
                    | (rnd.nextBoolean() ? FLAG_C_NO_ZEROES : 0)));
            int n = 1 + rnd.nextInt(12);
            for (int i = 0; i < n; i++) parts.add(randomOption(rnd));
            packets += n + 1;
            byte[] stream = mutate(rnd, NbdHandshakeTest.concat(parts.toArray(new byte[0][])));
            try (EmbeddedNbd nbd = new EmbeddedNbd(provider, CONFIG)) {
                nbd.hello();
                feed(nbd, stream, rnd);
                assertWellFormedOptionReplies(nbd.out);
                assertEquals(0, nbd.unexpectedErrors.get());
            }
        }
        assertArrayEquals(rwBefore, rw.snapshot());
        assertArrayEquals(roBefore, ro.snapshot());
        assertExportsClosed();
        assertTrue(packets >= 20_000, "only " + packets + " packets");
    }

    private static byte[] randomOption(Random rnd) {
        String name = switch (rnd.nextInt(5)) {
            case 0 -> "ro";
            case 1 -> "nosuch";
            case 2 -> "";
            default -> "rw";
        };
        return switch (rnd.nextInt(12)) {
            case 0 -> NbdWire.option(OPT_LIST);
            case 1 -> NbdWire.option(OPT_INFO, NbdWire.goData(name, randomInfos(rnd)));
            case 2 -> NbdWire.option(OPT_GO, NbdWire.goData(name, randomInfos(rnd)));
            case 3 -> NbdWire.option(OPT_STRUCTURED_REPLY);
            case 4 -> NbdWire.option(OPT_SET_META_CONTEXT, NbdWire.metaData(name, META_BASE_ALLOCATION));
            case 5 -> NbdWire.option(OPT_LIST_META_CONTEXT, NbdWire.metaData(name, rnd.nextBoolean() ? "base:" : "x:y"));
            case 6 -> NbdWire.option(OPT_EXPORT_NAME, name.getBytes(StandardCharsets.UTF_8));
            case 7 -> NbdWire.option(OPT_ABORT);
            case 8 -> {
                byte[] d = new byte[rnd.nextInt(64)];
                rnd.nextBytes(d);
                yield NbdWire.option(rnd.nextInt(14), d);
            }
            case 9 -> {      // option header claiming more data than follows
                byte[] o = NbdWire.option(OPT_INFO, NbdWire.goData(name));
                ByteBuffer.wrap(o).putInt(12, rnd.nextInt());
                yield o;
            }
            case 10 -> NbdWire.option(OPT_GO, new byte[rnd.nextInt(12)]);
            default -> NbdWire.option(OPT_SET_META_CONTEXT, NbdWire.metaData(name, "base:allocation", "qemu:x", ""));
        };
    }

    private static int[] randomInfos(Random rnd) {
        int[] infos = new int[rnd.nextInt(4)];
        for (int i = 0; i < infos.length; i++) infos[i] = rnd.nextInt(6);
        return infos;
    }

    /** Server output after the greeting: option replies, possibly ending with an EXPORT_NAME answer. */
    private static void assertWellFormedOptionReplies(NbdWire.ArraySource out) {
        try {
            while (out.available() > 0) {
                if (out.available() == 10 || out.available() == 134) return;   // EXPORT_NAME: size, flags[, zeroes]
                NbdWire.OptionReply r = NbdWire.readOptionReply(out);
                assertTrue(r.type() > 0 && r.type() <= REP_META_CONTEXT || r.type() < 0, "reply type " + r.type());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("malformed negotiation output", e);
        }
    }

    private void assertExportsClosed() {
        int opened = rw.openCount.get() + ro.openCount.get();
        assertEquals(opened, provider.closed.get(), "exports opened but not closed");
        assertEquals(0, rw.writers.get());
    }
}
