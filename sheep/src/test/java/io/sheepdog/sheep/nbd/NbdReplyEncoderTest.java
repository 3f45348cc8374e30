package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** {@link NbdReplyEncoder} alone in an EmbeddedChannel: the bytes of every reply, simple and structured. */
class NbdReplyEncoderTest {

    /** Everything the encoder wrote for {@code reply}, and that every buffer it wrote was released after reading. */
    private static ByteBuffer encode(boolean structured, NbdReply reply) {
        EmbeddedChannel ch = new EmbeddedChannel(new NbdReplyEncoder(structured));
        assertTrue(ch.writeOutbound(reply));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuf b;
        while ((b = ch.readOutbound()) != null) {
            out.writeBytes(ByteBufUtil.getBytes(b));
            assertTrue(b.release(), "the channel holds the only reference to what the encoder wrote");
        }
        assertFalse(ch.finish());
        return ByteBuffer.wrap(out.toByteArray());
    }

    @Test
    void simpleRepliesCarryTheErrorAndTheHandle() {
        ByteBuffer ok = encode(false, new NbdReply.Done(0x1122334455667788L));
        assertEquals(16, ok.remaining());
        assertEquals(SIMPLE_REPLY_MAGIC, ok.getInt());
        assertEquals(0, ok.getInt());
        assertEquals(0x1122334455667788L, ok.getLong());

        // without structured replies an error is a simple reply and its message is not sent
        ByteBuffer err = encode(false, new NbdReply.Failed(7, EIO, "disk on fire"));
        assertEquals(16, err.remaining());
        assertEquals(SIMPLE_REPLY_MAGIC, err.getInt());
        assertEquals(EIO, err.getInt());
        assertEquals(7, err.getLong());
    }

    @Test
    void aSimpleReadReplyIsTheHeaderThenTheData() {
        byte[] data = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
        ByteBuf payload = Unpooled.directBuffer().writeBytes(data);
        ByteBuffer r = encode(false, new NbdReply.Data(9, 4096, payload));
        assertEquals(16 + data.length, r.remaining());
        assertEquals(SIMPLE_REPLY_MAGIC, r.getInt());
        assertEquals(0, r.getInt());
        assertEquals(9, r.getLong());
        byte[] got = new byte[data.length];
        r.get(got);
        assertArrayEquals(data, got);
        assertEquals(0, payload.refCnt(), "the data buffer went out and was released once");
    }

    @Test
    void aStructuredReadIsOneOffsetDataChunkAndAnEmptyOneIsANoneChunk() {
        byte[] data = new byte[100];
        for (int i = 0; i < data.length; i++) data[i] = (byte) i;
        ByteBuffer r = encode(true, new NbdReply.Data(3, 1L << 33, Unpooled.wrappedBuffer(data)));
        assertEquals(STRUCTURED_REPLY_MAGIC, r.getInt());
        assertEquals(REPLY_FLAG_DONE, r.getShort());
        assertEquals(REPLY_TYPE_OFFSET_DATA, Short.toUnsignedInt(r.getShort()));
        assertEquals(3, r.getLong());
        assertEquals(8 + data.length, r.getInt());
        assertEquals(1L << 33, r.getLong());
        byte[] got = new byte[data.length];
        r.get(got);
        assertArrayEquals(data, got);
        assertFalse(r.hasRemaining());

        ByteBuf empty = Unpooled.directBuffer(0);
        ByteBuffer none = encode(true, new NbdReply.Data(4, 0, empty));
        assertEquals(STRUCTURED_REPLY_HEADER_LENGTH, none.remaining());
        assertEquals(STRUCTURED_REPLY_MAGIC, none.getInt());
        assertEquals(REPLY_FLAG_DONE, none.getShort());
        assertEquals(REPLY_TYPE_NONE, Short.toUnsignedInt(none.getShort()));
        assertEquals(4, none.getLong());
        assertEquals(0, none.getInt());
        assertEquals(0, empty.refCnt());
    }

    @Test
    void aStructuredErrorCarriesItsMessageCutAt1KiB() {
        ByteBuffer e = encode(true, new NbdReply.Failed(5, ENOSPC, "write past the end of the export"));
        assertEquals(STRUCTURED_REPLY_MAGIC, e.getInt());
        assertEquals(REPLY_FLAG_DONE, e.getShort());
        assertEquals(REPLY_TYPE_ERROR, Short.toUnsignedInt(e.getShort()));
        assertEquals(5, e.getLong());
        String msg = "write past the end of the export";
        assertEquals(6 + msg.length(), e.getInt());
        assertEquals(ENOSPC, e.getInt());
        assertEquals(msg.length(), e.getShort());
        byte[] m = new byte[msg.length()];
        e.get(m);
        assertEquals(msg, new String(m, StandardCharsets.UTF_8));
        assertFalse(e.hasRemaining());

        ByteBuffer longOne = encode(true, new NbdReply.Failed(6, EIO, "x".repeat(5000)));
        assertEquals(STRUCTURED_REPLY_HEADER_LENGTH + 6 + NbdReplyEncoder.MAX_ERROR_MESSAGE, longOne.remaining());
        ByteBuffer noMessage = encode(true, new NbdReply.Failed(8, EIO, null));
        assertEquals(STRUCTURED_REPLY_HEADER_LENGTH + 6, noMessage.remaining());
    }

    @Test
    void blockStatusListsTheExtentsOfItsContext() {
        long[] lengths = {65536, 4096, 99};
        int[] flags = {STATE_HOLE | STATE_ZERO, 0, STATE_ZERO};
        ByteBuffer b = encode(true, new NbdReply.Extents(11, 1, lengths, flags, 2));
        assertEquals(STRUCTURED_REPLY_MAGIC, b.getInt());
        assertEquals(REPLY_FLAG_DONE, b.getShort());
        assertEquals(REPLY_TYPE_BLOCK_STATUS, Short.toUnsignedInt(b.getShort()));
        assertEquals(11, b.getLong());
        assertEquals(4 + 8 * 2, b.getInt());
        assertEquals(1, b.getInt());
        assertEquals(65536, b.getInt());
        assertEquals(STATE_HOLE | STATE_ZERO, b.getInt());
        assertEquals(4096, b.getInt());
        assertEquals(0, b.getInt());
        assertFalse(b.hasRemaining(), "only the first count extents are sent");
    }
}
