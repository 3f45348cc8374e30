package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Negotiation phase of the connection state machine, in an EmbeddedChannel. */
class NbdHandshakeTest {
    private MemoryExportProvider provider;
    private EmbeddedNbd nbd;

    @BeforeEach
    void setUp() {
        provider = new MemoryExportProvider()
                .add(MemoryDisk.of("disk", 1 << 20))
                .add(new MemoryDisk("ro", 8192, true, false, false))
                .add(new MemoryDisk("locked", 8192, false, false, true));
        nbd = new EmbeddedNbd(provider);
    }

    @AfterEach
    void tearDown() {
        nbd.close();
        assertEquals(0, nbd.unexpectedErrors.get(), "internal errors in the handler");
    }

    private void flags() {
        NbdWire.Hello h = nbd.hello();
        assertEquals(NBDMAGIC, h.magic());
        assertEquals(IHAVEOPT, h.ihaveopt());
        assertEquals(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, h.flags());
        nbd.send(NbdWire.clientFlags(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES));
    }

    @Test
    void goWithInfoRequestsReportsSizeFlagsNameAndBlockSizes() {
        flags();
        nbd.send(NbdWire.option(OPT_GO, NbdWire.goData("disk", INFO_NAME, INFO_BLOCK_SIZE, INFO_DESCRIPTION)));
        List<NbdWire.OptionReply> infos = new ArrayList<>();
        NbdWire.OptionReply r;
        while ((r = nbd.optionReply()).type() != REP_ACK) {
            assertEquals(REP_INFO, r.type());
            assertEquals(OPT_GO, r.option());
            infos.add(r);
        }
        ByteBuffer export = ByteBuffer.wrap(find(infos, INFO_EXPORT));
        export.getShort();
        assertEquals(1 << 20, export.getLong());
        int tflags = export.getShort() & 0xffff;
        assertEquals(TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_FUA | TFLAG_SEND_TRIM | TFLAG_SEND_WRITE_ZEROES
                | TFLAG_CAN_MULTI_CONN, tflags);
        assertEquals("disk", new String(find(infos, INFO_NAME), 2, 4, StandardCharsets.UTF_8));
        ByteBuffer bs = ByteBuffer.wrap(find(infos, INFO_BLOCK_SIZE));
        bs.getShort();
        assertEquals(1, bs.getInt());
        assertEquals(4096, bs.getInt());
        assertEquals(1 << 20, bs.getInt());       // the test config's max payload
        assertTrue(new String(find(infos, INFO_DESCRIPTION), StandardCharsets.UTF_8).contains("memory disk"));
        // now in transmission: a flush is answered with a simple reply
        nbd.request(0, CMD_FLUSH, 7, 0, 0, null);
        NbdWire.Reply fr = nbd.reply();
        assertEquals(7, fr.handle());
        assertEquals(0, fr.error());
    }

    private static byte[] find(List<NbdWire.OptionReply> infos, int type) {
        for (NbdWire.OptionReply r : infos) if (ByteBuffer.wrap(r.data()).getShort() == type) return r.data();
        throw new AssertionError("no NBD_INFO " + type);
    }

    @Test
    void readOnlyExportAdvertisesReadOnlyAndNoTrim() {
        flags();
        nbd.send(NbdWire.option(OPT_INFO, NbdWire.goData("ro")));
        ByteBuffer export = ByteBuffer.wrap(nbd.optionReply().data());
        export.getShort();
        assertEquals(8192, export.getLong());
        int tflags = export.getShort() & 0xffff;
        assertEquals(TFLAG_READ_ONLY, tflags & TFLAG_READ_ONLY);
        assertEquals(0, tflags & (TFLAG_SEND_TRIM | TFLAG_SEND_WRITE_ZEROES | TFLAG_CAN_MULTI_CONN));
        NbdWire.OptionReply r;
        while ((r = nbd.optionReply()).type() != REP_ACK) assertEquals(REP_INFO, r.type());
        // INFO stays in negotiation and closes the export it opened
        assertEquals(1, provider.closed.get());
        nbd.send(NbdWire.option(OPT_LIST));
        assertEquals(REP_SERVER, nbd.optionReply().type());
    }

    @Test
    void unknownExportIsRefusedWithErrUnknownAndNegotiationContinues() {
        flags();
        nbd.send(NbdWire.option(OPT_GO, NbdWire.goData("nosuch")));
        NbdWire.OptionReply r = nbd.optionReply();
        assertEquals(REP_ERR_UNKNOWN, r.type());
        assertTrue(r.text().contains("nosuch"), r.text());
        nbd.send(NbdWire.option(OPT_GO, NbdWire.goData("disk")));
        while ((r = nbd.optionReply()).type() != REP_ACK) assertEquals(REP_INFO, r.type());
        assertTrue(nbd.isOpen());
    }

    @Test
    void secondWriterOfLockedExportGetsPolicyErrorWithMessage() {
        try (EmbeddedNbd first = new EmbeddedNbd(provider)) {
            first.go("locked", false, false);
            flags();
            nbd.send(NbdWire.option(OPT_GO, NbdWire.goData("locked")));
            NbdWire.OptionReply r = nbd.optionReply();
            assertEquals(REP_ERR_POLICY, r.type());
            assertEquals("export 'locked' is locked by another writer", r.text());
        }
    }

    @Test
    void infoDescribesAnExportWhoseWriterLockIsHeld() {
        try (EmbeddedNbd writer = new EmbeddedNbd(provider)) {
            writer.go("locked", false, false);
            flags();
            nbd.send(NbdWire.option(OPT_INFO, NbdWire.goData("locked")));
            NbdWire.OptionReply r = nbd.optionReply();
            assertEquals(REP_INFO, r.type(), r.text());
            ByteBuffer export = ByteBuffer.wrap(r.data());
            export.getShort();
            assertEquals(8192, export.getLong());
            assertEquals(0, export.getShort() & TFLAG_READ_ONLY);
            while (nbd.optionReply().type() != REP_ACK) { }
            // GO still refuses the second writer
            nbd.send(NbdWire.option(OPT_GO, NbdWire.goData("locked")));
            assertEquals(REP_ERR_POLICY, nbd.optionReply().type());
        }
    }

    @Test
    void listNamesEveryExport() {
        flags();
        nbd.send(NbdWire.option(OPT_LIST));
        List<String> names = new ArrayList<>();
        NbdWire.OptionReply r;
        while ((r = nbd.optionReply()).type() == REP_SERVER) {
            ByteBuffer b = ByteBuffer.wrap(r.data());
            int len = b.getInt();
            names.add(new String(r.data(), 4, len, StandardCharsets.UTF_8));
        }
        assertEquals(REP_ACK, r.type());
        assertEquals(List.of("disk", "ro", "locked"), names);
        nbd.send(NbdWire.option(OPT_LIST, new byte[3]));
        assertEquals(REP_ERR_INVALID, nbd.optionReply().type());
    }

    @Test
    void unknownOptionsAndStartTlsAreUnsupported() {
        flags();
        for (int opt : new int[] {OPT_STARTTLS, OPT_EXTENDED_HEADERS, 99, 0x7fffffff}) {
            nbd.send(NbdWire.option(opt, new byte[] {1, 2, 3}));
            NbdWire.OptionReply r = nbd.optionReply();
            assertEquals(opt, r.option());
            assertEquals(REP_ERR_UNSUP, r.type());
        }
        assertTrue(nbd.isOpen());
    }

    @Test
    void metaContextNeedsStructuredRepliesAndAnExistingExport() {
        flags();
        nbd.send(NbdWire.option(OPT_SET_META_CONTEXT, NbdWire.metaData("disk", META_BASE_ALLOCATION)));
        assertEquals(REP_ERR_INVALID, nbd.optionReply().type());
        nbd.send(NbdWire.option(OPT_STRUCTURED_REPLY));
        assertEquals(REP_ACK, nbd.optionReply().type());
        nbd.send(NbdWire.option(OPT_SET_META_CONTEXT, NbdWire.metaData("nosuch", META_BASE_ALLOCATION)));
        assertEquals(REP_ERR_UNKNOWN, nbd.optionReply().type());
        // LIST with no queries lists base:allocation; unknown namespaces are ignored
        nbd.send(NbdWire.option(OPT_LIST_META_CONTEXT, NbdWire.metaData("disk")));
        NbdWire.OptionReply ctx = nbd.optionReply();
        assertEquals(REP_META_CONTEXT, ctx.type());
        assertEquals(META_BASE_ALLOCATION, new String(ctx.data(), 4, ctx.data().length - 4, StandardCharsets.US_ASCII));
        assertEquals(REP_ACK, nbd.optionReply().type());
        nbd.send(NbdWire.option(OPT_SET_META_CONTEXT, NbdWire.metaData("disk", "qemu:dirty-bitmap:x", META_BASE_ALLOCATION)));
        NbdWire.OptionReply set = nbd.optionReply();
        assertEquals(REP_META_CONTEXT, set.type());
        int id = ByteBuffer.wrap(set.data()).getInt();
        assertEquals(REP_ACK, nbd.optionReply().type());
        // malformed meta data: query length beyond the option
        nbd.send(NbdWire.option(OPT_SET_META_CONTEXT, new byte[] {0, 0, 0, 4, 'd', 'i', 's', 'k', 0, 0, 0, 1, 0, 0, 1, 0}));
        assertEquals(REP_ERR_INVALID, nbd.optionReply().type());
        // GO: block status uses the context id announced
        nbd.send(NbdWire.option(OPT_SET_META_CONTEXT, NbdWire.metaData("disk", META_BASE_ALLOCATION)));
        nbd.optionReply();
        nbd.optionReply();
        nbd.send(NbdWire.option(OPT_GO, NbdWire.goData("disk")));
        while (nbd.optionReply().type() != REP_ACK) { }
        nbd.request(0, CMD_BLOCK_STATUS, 1, 0, 4096, null);
        NbdWire.Reply r = nbd.reply();
        assertEquals(REPLY_TYPE_BLOCK_STATUS, r.chunkType());
        assertEquals(id, ByteBuffer.wrap(r.data()).getInt());
    }

    @Test
    void exportNameOptionSendsSizeFlagsAndZeroPaddingUnlessNoZeroes() {
        nbd.hello();
        nbd.send(NbdWire.clientFlags(FLAG_C_FIXED_NEWSTYLE));
        nbd.send(NbdWire.option(OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8)));
        ByteBuffer b = ByteBuffer.wrap(NbdWire.bytes(o -> { }));
        assertEquals(10 + 124, nbd.out.available());
        byte[] all = new byte[134];
        try {
            nbd.out.readFully(all);
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        b = ByteBuffer.wrap(all);
        assertEquals(1 << 20, b.getLong());
        assertEquals(TFLAG_HAS_FLAGS, b.getShort() & TFLAG_HAS_FLAGS);
        for (int i = 10; i < 134; i++) assertEquals(0, all[i]);
        nbd.request(0, CMD_READ, 5, 0, 16, null);
        assertEquals(16, nbd.reply().data().length);
    }

    @Test
    void exportNameOfUnknownExportClosesTheConnection() {
        flags();
        nbd.send(NbdWire.option(OPT_EXPORT_NAME, "nosuch".getBytes(StandardCharsets.UTF_8)));
        assertFalse(nbd.isOpen());
        assertEquals(0, nbd.out.available());
    }

    @Test
    void abortIsAcknowledgedThenClosed() {
        flags();
        nbd.send(NbdWire.option(OPT_ABORT));
        assertEquals(REP_ACK, nbd.optionReply().type());
        assertFalse(nbd.isOpen());
    }

    @Test
    void unknownClientFlagsClose() {
        nbd.hello();
        nbd.send(NbdWire.clientFlags(0x100));
        assertFalse(nbd.isOpen());
    }

    @Test
    void badOptionMagicCloses() {
        flags();
        byte[] opt = NbdWire.option(OPT_LIST);
        opt[0] ^= 1;
        nbd.send(opt);
        assertFalse(nbd.isOpen());
    }

    @Test
    void tooLongOptionIsDiscardedWithoutBufferingAndAnsweredTooBig() {
        flags();
        byte[] big = new byte[NbdNegotiationHandler.MAX_OPTION_LENGTH + 1];
        nbd.sendSplit(NbdWire.option(OPT_GO, big), 7000);
        NbdWire.OptionReply r = nbd.optionReply();
        assertEquals(REP_ERR_TOO_BIG, r.type());
        nbd.send(NbdWire.option(OPT_STRUCTURED_REPLY));
        assertEquals(REP_ACK, nbd.optionReply().type());
    }

    @Test
    void malformedGoDataIsInvalid() {
        flags();
        nbd.send(NbdWire.option(OPT_GO, new byte[] {0, 0, 0, 9, 'd'}));
        assertEquals(REP_ERR_INVALID, nbd.optionReply().type());
        byte[] d = NbdWire.goData("disk", INFO_NAME);
        nbd.send(NbdWire.option(OPT_GO, java.util.Arrays.copyOf(d, d.length + 1)));
        assertEquals(REP_ERR_INVALID, nbd.optionReply().type());
        nbd.send(NbdWire.option(OPT_STRUCTURED_REPLY, new byte[1]));
        assertEquals(REP_ERR_INVALID, nbd.optionReply().type());
        assertTrue(nbd.isOpen());
    }

    @Test
    void negotiationWorksWhenFedOneByteAtATime() {
        nbd.hello();
        byte[] all = concat(NbdWire.clientFlags(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES),
                NbdWire.option(OPT_STRUCTURED_REPLY),
                NbdWire.option(OPT_GO, NbdWire.goData("disk")),
                NbdWire.request(0, CMD_READ, 99, 100, 10, null));
        nbd.sendSplit(all, 1);
        assertEquals(REP_ACK, nbd.optionReply().type());
        while (nbd.optionReply().type() != REP_ACK) { }
        NbdWire.Reply r = nbd.reply();
        assertEquals(99, r.handle());
        assertEquals(REPLY_TYPE_OFFSET_DATA, r.chunkType());
        assertEquals(100, r.offset());
        assertEquals(10, r.data().length);
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) n += p.length;
        byte[] out = new byte[n];
        int o = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }
}
