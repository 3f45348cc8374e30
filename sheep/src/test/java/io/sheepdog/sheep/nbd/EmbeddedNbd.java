package io.sheepdog.sheep.nbd;

import io.sheepdog.sheep.net.PayloadBudget;
import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One server connection in an {@link EmbeddedChannel}, with requests served synchronously on the calling thread,
 * so a test (or the fuzzer) sees every reply as soon as it has sent the bytes.
 */
final class EmbeddedNbd implements AutoCloseable {
    final EmbeddedChannel ch;
    final NbdWire.ArraySource out = new NbdWire.ArraySource();
    final AtomicLong unexpectedErrors = new AtomicLong();
    private final Map<Long, Integer> readLengths = new HashMap<>();

    /** The server-wide payload budget, this connection's alone here: it must be all given back once closed. */
    final PayloadBudget budget;

    EmbeddedNbd(NbdExportProvider provider, NbdServerConfig config) {
        budget = new PayloadBudget(config.serverInFlightBytes());
        ch = new EmbeddedChannel(new NbdNegotiationHandler(config, provider, Runnable::run, unexpectedErrors, budget));
        pump();
    }

    EmbeddedNbd(NbdExportProvider provider) {
        this(provider, NbdServerConfig.defaults().withPort(0).withMaxPayload(1 << 20));
    }

    /** Feeds client bytes in one buffer. */
    EmbeddedNbd send(byte[] b) {
        if (ch.isOpen()) ch.writeInbound(Unpooled.wrappedBuffer(b));
        pump();
        return this;
    }

    /** Feeds client bytes split at the given sizes (to exercise partial headers and payloads). */
    EmbeddedNbd sendSplit(byte[] b, int piece) {
        for (int i = 0; i < b.length && ch.isOpen(); i += piece) {
            ch.writeInbound(Unpooled.wrappedBuffer(b, i, Math.min(piece, b.length - i)));
            pump();
        }
        return this;
    }

    /** Runs scheduled work (reply flushes) and collects what the server wrote. */
    void pump() {
        ch.runPendingTasks();
        ByteBuf m;
        while ((m = ch.readOutbound()) != null) {
            out.append(ByteBufUtil.getBytes(m));
            m.release();
        }
    }

    NbdWire.Hello hello() { return io(() -> NbdWire.readHello(out)); }

    NbdWire.OptionReply optionReply() { return io(() -> NbdWire.readOptionReply(out)); }

    NbdWire.Reply reply() { return io(() -> NbdWire.readReply(out, h -> readLengths.getOrDefault(h, 0))); }

    /** Sends a request, remembering READ lengths for parsing simple replies. */
    EmbeddedNbd request(int flags, int type, long handle, long offset, long length, byte[] payload) {
        if (type == CMD_READ) readLengths.put(handle, (int) length);
        return send(NbdWire.request(flags, type, handle, offset, length, payload));
    }

    /** Negotiates up to transmission of {@code name}: NO_ZEROES, optional structured replies and base:allocation. */
    EmbeddedNbd go(String name, boolean structured, boolean allocation) {
        hello();
        send(NbdWire.clientFlags(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES));
        if (structured) {
            send(NbdWire.option(OPT_STRUCTURED_REPLY));
            expect(optionReply().type() == REP_ACK, "structured reply refused");
        }
        if (allocation) {
            send(NbdWire.option(OPT_SET_META_CONTEXT, NbdWire.metaData(name, META_BASE_ALLOCATION)));
            expect(optionReply().type() == REP_META_CONTEXT, "no meta context");
            expect(optionReply().type() == REP_ACK, "no ack for meta context");
        }
        send(NbdWire.option(OPT_GO, NbdWire.goData(name, INFO_BLOCK_SIZE)));
        while (true) {
            NbdWire.OptionReply r = optionReply();
            if (r.type() == REP_ACK) return this;
            expect(r.type() == REP_INFO, "GO failed: type " + Integer.toHexString(r.type()) + " " + r.text());
        }
    }

    boolean isOpen() { return ch.isOpen(); }

    @Override
    public void close() {
        ch.finishAndReleaseAll();
        expect(budget.used() == 0, "NBD payload budget not given back after close: " + budget.used() + " bytes");
    }

    private static void expect(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    private interface IoCall<T> {
        T call() throws IOException;
    }

    private static <T> T io(IoCall<T> c) {
        try {
            return c.call();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
