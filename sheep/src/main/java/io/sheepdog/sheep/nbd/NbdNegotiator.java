package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The option-haggling half of a connection: turns one complete option (code and data) into its replies and says
 * what happens next. It holds what earlier options agreed on (structured replies, the selected meta context). One
 * option is handled at a time, off the event loop, because opening an export may block.
 */
final class NbdNegotiator {
    private static final Logger log = LoggerFactory.getLogger(NbdNegotiator.class);

    /** The server's id for {@code base:allocation} in BLOCK_STATUS replies. */
    static final int ALLOCATION_CONTEXT_ID = 1;

    /** What the connection does after an option. */
    sealed interface Outcome permits Continue, Close, Transmit, StartTls {}

    /** The ACK went into the replies; switch the connection to TLS before anything else is read or written. */
    record StartTls() implements Outcome {}

    record Continue() implements Outcome {}

    record Close(String reason) implements Outcome {}

    /** Negotiation is over; serve {@code session}. */
    record Transmit(NbdSession session) implements Outcome {}

    static final Continue CONTINUE = new Continue();

    private final NbdExportProvider provider;
    private final NbdServerConfig config;
    private final String peer;
    private boolean clientNoZeroes;
    private boolean structured;
    /** STARTTLS was agreed: what follows runs over TLS. */
    private boolean secure;
    /** Export for which SET_META_CONTEXT selected base:allocation, or null. */
    private String allocationExport;

    NbdNegotiator(NbdExportProvider provider, NbdServerConfig config, String peer) {
        this.provider = provider;
        this.config = config;
        this.peer = peer;
    }

    void clientFlags(int flags) { clientNoZeroes = (flags & FLAG_C_NO_ZEROES) != 0; }

    boolean structured() { return structured; }

    /**
     * Handles one option whose data is complete in {@code data} (not released here). Replies are appended to
     * {@code out} in order.
     */
    Outcome handle(int option, ByteBuf data, ByteBufAllocator alloc, List<ByteBuf> out) {
        if (option == OPT_STARTTLS) return startTls(data, alloc, out);
        if (config.tlsRequired() && !secure && option != OPT_ABORT) {
            // the protocol: until the client switched, every option but ABORT and STARTTLS is refused TLS_REQD
            // (EXPORT_NAME has no error reply: the connection is closed)
            if (option == OPT_EXPORT_NAME) return new Close("EXPORT_NAME without TLS, which this server requires");
            out.add(error(alloc, option, REP_ERR_TLS_REQD, "TLS is required: use STARTTLS first"));
            return CONTINUE;
        }
        return switch (option) {
            case OPT_EXPORT_NAME -> exportName(data, alloc, out);
            case OPT_ABORT -> {
                out.add(reply(alloc, option, REP_ACK, null));
                yield new Close("client aborted negotiation");
            }
            case OPT_LIST -> list(data, alloc, out);
            case OPT_INFO, OPT_GO -> infoOrGo(option, data, alloc, out);
            case OPT_STRUCTURED_REPLY -> {
                if (data.isReadable()) {
                    out.add(error(alloc, option, REP_ERR_INVALID, "STRUCTURED_REPLY takes no data"));
                } else {
                    structured = true;
                    out.add(reply(alloc, option, REP_ACK, null));
                }
                yield CONTINUE;
            }
            case OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT -> metaContext(option, data, alloc, out);
            default -> {
                out.add(error(alloc, option, REP_ERR_UNSUP, "unsupported option " + optionName(option)));
                yield CONTINUE;
            }
        };
    }

    private Outcome startTls(ByteBuf data, ByteBufAllocator alloc, List<ByteBuf> out) {
        if (config.tls() == null) {
            out.add(error(alloc, OPT_STARTTLS, REP_ERR_UNSUP, "TLS is not configured on this server (sheep --nbd-tls)"));
            return CONTINUE;
        }
        if (secure) {
            out.add(error(alloc, OPT_STARTTLS, REP_ERR_INVALID, "TLS is already in use"));
            return CONTINUE;
        }
        if (data.isReadable()) {
            out.add(error(alloc, OPT_STARTTLS, REP_ERR_INVALID, "STARTTLS takes no data"));
            return CONTINUE;
        }
        // what was agreed in plain text does not carry over (the protocol asks the server to forget it)
        structured = false;
        allocationExport = null;
        secure = true;
        out.add(reply(alloc, OPT_STARTTLS, REP_ACK, null));
        return new StartTls();
    }

    /** Reply to an option whose data was too long to accept (already discarded). */
    static ByteBuf tooBig(ByteBufAllocator alloc, int option) {
        return error(alloc, option, REP_ERR_TOO_BIG, "option data too long");
    }

    // ---------------------------------------------------------------------------------------------------------

    private Outcome exportName(ByteBuf data, ByteBufAllocator alloc, List<ByteBuf> out) {
        // No way to report an error for this option: the protocol says close the connection.
        if (data.readableBytes() > MAX_STRING) return new Close("export name too long");
        String name = data.toString(StandardCharsets.UTF_8);
        NbdExport export;
        try {
            export = provider.open(name, config.readOnly(), peer);
        } catch (NbdException e) {
            return new Close("EXPORT_NAME '" + name + "': " + e.getMessage());
        } catch (RuntimeException e) {
            log.warn("NBD: opening export '{}' failed", name, e);
            return new Close("EXPORT_NAME '" + name + "': " + e);
        }
        NbdSession session = session(name, export);
        ByteBuf b = alloc.buffer(10 + (clientNoZeroes ? 0 : 124));
        b.writeLong(export.size());
        b.writeShort(session.transmissionFlags());
        if (!clientNoZeroes) b.writeZero(124);
        out.add(b);
        return new Transmit(session);
    }

    private Outcome list(ByteBuf data, ByteBufAllocator alloc, List<ByteBuf> out) {
        if (data.isReadable()) {
            out.add(error(alloc, OPT_LIST, REP_ERR_INVALID, "LIST takes no data"));
            return CONTINUE;
        }
        List<String> names;
        try {
            names = provider.list();
        } catch (RuntimeException e) {
            log.warn("NBD: listing exports failed", e);
            out.add(error(alloc, OPT_LIST, REP_ERR_PLATFORM, "cannot list exports: " + e.getMessage()));
            return CONTINUE;
        }
        for (String name : names) {
            byte[] n = name.getBytes(StandardCharsets.UTF_8);
            String desc = provider.description(name);
            byte[] d = desc == null ? new byte[0] : desc.getBytes(StandardCharsets.UTF_8);
            ByteBuf body = alloc.buffer(4 + n.length + d.length);
            body.writeInt(n.length).writeBytes(n).writeBytes(d);
            out.add(reply(alloc, OPT_LIST, REP_SERVER, body));
        }
        out.add(reply(alloc, OPT_LIST, REP_ACK, null));
        return CONTINUE;
    }

    private Outcome infoOrGo(int option, ByteBuf data, ByteBufAllocator alloc, List<ByteBuf> out) {
        // u32 name length, name, u16 number of info requests, u16 each
        if (data.readableBytes() < 6) return invalid(option, alloc, out, "option data too short");
        long nameLen = data.readUnsignedInt();
        if (nameLen > MAX_STRING || nameLen + 2 > data.readableBytes())
            return invalid(option, alloc, out, "bad export name length");
        String name = data.readCharSequence((int) nameLen, StandardCharsets.UTF_8).toString();
        int nInfo = data.readUnsignedShort();
        if (data.readableBytes() != 2L * nInfo) return invalid(option, alloc, out, "bad information request count");
        boolean wantName = false, wantDescription = false;
        for (int i = 0; i < nInfo; i++) {
            int info = data.readUnsignedShort();
            if (info == INFO_NAME) wantName = true;
            else if (info == INFO_DESCRIPTION) wantDescription = true;
        }
        NbdExport export;
        try {
            export = option == OPT_GO ? provider.open(name, config.readOnly(), peer)
                    : provider.openForInfo(name, config.readOnly());
        } catch (NbdException e) {
            out.add(error(alloc, option, e.optionReply(), e.getMessage()));
            return CONTINUE;
        } catch (RuntimeException e) {
            log.warn("NBD: opening export '{}' failed", name, e);
            out.add(error(alloc, option, REP_ERR_PLATFORM, "cannot open export '" + name + "': " + e));
            return CONTINUE;
        }
        boolean handedOver = false;
        try {
            NbdSession session = session(name, export);
            ByteBuf info = alloc.buffer(12);
            info.writeShort(INFO_EXPORT).writeLong(export.size()).writeShort(session.transmissionFlags());
            out.add(reply(alloc, option, REP_INFO, info));
            if (wantName) {
                byte[] n = name.getBytes(StandardCharsets.UTF_8);
                out.add(reply(alloc, option, REP_INFO, alloc.buffer(2 + n.length).writeShort(INFO_NAME).writeBytes(n)));
            }
            String desc = export.description();
            if (wantDescription && desc != null) {
                byte[] d = truncate(desc.getBytes(StandardCharsets.UTF_8));
                out.add(reply(alloc, option, REP_INFO, alloc.buffer(2 + d.length).writeShort(INFO_DESCRIPTION).writeBytes(d)));
            }
            // Sent even when not requested: minimum 1 means any alignment is fine, so this only informs.
            ByteBuf bs = alloc.buffer(14);
            bs.writeShort(INFO_BLOCK_SIZE).writeInt(1).writeInt(preferredBlockSize(export)).writeInt(config.maxPayload());
            out.add(reply(alloc, option, REP_INFO, bs));
            out.add(reply(alloc, option, REP_ACK, null));
            if (option == OPT_GO) {
                handedOver = true;
                return new Transmit(session);
            }
            return CONTINUE;
        } finally {
            if (!handedOver) closeQuietly(export);
        }
    }

    private Outcome metaContext(int option, ByteBuf data, ByteBufAllocator alloc, List<ByteBuf> out) {
        // u32 export name length, name, u32 number of queries, each: u32 length, query
        if (data.readableBytes() < 8) return invalid(option, alloc, out, "option data too short");
        long nameLen = data.readUnsignedInt();
        if (nameLen > MAX_STRING || nameLen + 4 > data.readableBytes())
            return invalid(option, alloc, out, "bad export name length");
        String name = data.readCharSequence((int) nameLen, StandardCharsets.UTF_8).toString();
        long nQueries = data.readUnsignedInt();
        String[] queries = new String[(int) Math.min(nQueries, 1024)];
        if (nQueries > queries.length) return invalid(option, alloc, out, "too many queries");
        for (int i = 0; i < queries.length; i++) {
            if (data.readableBytes() < 4) return invalid(option, alloc, out, "truncated query");
            long qLen = data.readUnsignedInt();
            if (qLen > MAX_STRING || qLen > data.readableBytes()) return invalid(option, alloc, out, "bad query length");
            queries[i] = data.readCharSequence((int) qLen, StandardCharsets.UTF_8).toString();
        }
        if (data.isReadable()) return invalid(option, alloc, out, "trailing bytes after queries");
        if (option == OPT_SET_META_CONTEXT && !structured)
            return invalid(option, alloc, out, "SET_META_CONTEXT needs STRUCTURED_REPLY first");
        boolean exists;
        try {
            exists = provider.exists(name);
        } catch (RuntimeException e) {
            log.warn("NBD: looking up export '{}' failed", name, e);
            exists = false;
        }
        if (!exists) {
            out.add(error(alloc, option, REP_ERR_UNKNOWN, "no export named '" + name + "'"));
            return CONTINUE;
        }
        boolean select = false;
        if (option == OPT_LIST_META_CONTEXT && queries.length == 0) {
            select = true;                      // empty list query: list every context we have
        } else {
            for (String q : queries) {
                if (q.equals(META_BASE_ALLOCATION)) select = true;
                else if (option == OPT_LIST_META_CONTEXT && q.equals("base:")) select = true;
            }
        }
        if (option == OPT_SET_META_CONTEXT) allocationExport = select ? name : null;
        if (select) {
            byte[] n = META_BASE_ALLOCATION.getBytes(StandardCharsets.US_ASCII);
            ByteBuf body = alloc.buffer(4 + n.length).writeInt(ALLOCATION_CONTEXT_ID).writeBytes(n);
            out.add(reply(alloc, option, REP_META_CONTEXT, body));
        }
        out.add(reply(alloc, option, REP_ACK, null));
        return CONTINUE;
    }

    private NbdSession session(String name, NbdExport export) {
        boolean readOnly = export.readOnly() || config.readOnly();
        int flags = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_FUA;
        if (readOnly) flags |= TFLAG_READ_ONLY;
        else {
            if (export.supportsTrim()) flags |= TFLAG_SEND_TRIM;
            if (export.supportsWriteZeroes()) flags |= TFLAG_SEND_WRITE_ZEROES;
        }
        if (structured) flags |= TFLAG_SEND_DF;
        if (export.canMultiConn()) flags |= TFLAG_CAN_MULTI_CONN;
        boolean allocation = structured && name.equals(allocationExport);
        log.debug("NBD {}: serving export '{}' ({} bytes, {}, structured={}, base:allocation={})", peer, name,
                export.size(), readOnly ? "read-only" : "read-write", structured, allocation);
        return new NbdSession(name, export, readOnly, flags, structured, allocation);
    }

    private int preferredBlockSize(NbdExport export) {
        int p = export.preferredBlockSize();
        if (p < 512 || Integer.bitCount(p) != 1) p = 4096;
        return Math.min(p, config.maxPayload());
    }

    private static Outcome invalid(int option, ByteBufAllocator alloc, List<ByteBuf> out, String message) {
        out.add(error(alloc, option, REP_ERR_INVALID, message));
        return CONTINUE;
    }

    static ByteBuf reply(ByteBufAllocator alloc, int option, int type, ByteBuf body) {
        int len = body == null ? 0 : body.readableBytes();
        ByteBuf b = alloc.buffer(20 + len);
        b.writeLong(OPTION_REPLY_MAGIC).writeInt(option).writeInt(type).writeInt(len);
        if (body != null) {
            b.writeBytes(body);
            body.release();
        }
        return b;
    }

    static ByteBuf error(ByteBufAllocator alloc, int option, int type, String message) {
        byte[] m = truncate(message.getBytes(StandardCharsets.UTF_8));
        return reply(alloc, option, type, alloc.buffer(m.length).writeBytes(m));
    }

    private static byte[] truncate(byte[] s) {
        return s.length <= MAX_STRING ? s : Arrays.copyOf(s, MAX_STRING);
    }

    static void closeQuietly(NbdExport export) {
        try {
            export.close();
        } catch (RuntimeException e) {
            log.warn("NBD: closing export failed", e);
        }
    }
}
