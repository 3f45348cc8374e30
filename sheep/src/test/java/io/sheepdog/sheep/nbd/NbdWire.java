package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.function.LongToIntFunction;

/** The client side of the NBD wire, written independently of the server for tests: frames out, replies in. */
final class NbdWire {
    private NbdWire() {}

    /** Something replies are read from: an embedded channel's output or a socket. */
    interface Source {
        void readFully(byte[] b) throws IOException;
    }

    record Hello(long magic, long ihaveopt, int flags) {}

    record OptionReply(int option, int type, byte[] data) {
        String text() { return new String(data, StandardCharsets.UTF_8); }
    }

    /**
     * A transmission reply: a simple reply (chunkType -1) or one structured chunk.
     * For OFFSET_DATA chunks {@code data} excludes the 8-byte offset, which is in {@code offset}.
     */
    record Reply(long handle, int error, int chunkType, int flags, long offset, byte[] data) {
        boolean done() { return chunkType < 0 || (flags & REPLY_FLAG_DONE) != 0; }
        String message() {       // of a structured error chunk
            ByteBuffer b = ByteBuffer.wrap(data);
            b.getInt();
            int len = b.getShort() & 0xffff;
            return new String(data, 6, len, StandardCharsets.UTF_8);
        }
    }

    static byte[] bytes(IoWriter w) {
        try {
            ByteArrayOutputStream bo = new ByteArrayOutputStream();
            DataOutputStream o = new DataOutputStream(bo);
            w.write(o);
            o.flush();
            return bo.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    interface IoWriter {
        void write(DataOutputStream o) throws IOException;
    }

    static byte[] clientFlags(int flags) { return bytes(o -> o.writeInt(flags)); }

    static byte[] option(int opt, byte[] data) {
        return bytes(o -> {
            o.writeLong(IHAVEOPT);
            o.writeInt(opt);
            o.writeInt(data.length);
            o.write(data);
        });
    }

    static byte[] option(int opt) { return option(opt, new byte[0]); }

    /** Data of NBD_OPT_GO / NBD_OPT_INFO. */
    static byte[] goData(String name, int... infos) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        return bytes(o -> {
            o.writeInt(n.length);
            o.write(n);
            o.writeShort(infos.length);
            for (int i : infos) o.writeShort(i);
        });
    }

    /** Data of NBD_OPT_SET_META_CONTEXT / LIST_META_CONTEXT. */
    static byte[] metaData(String name, String... queries) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        return bytes(o -> {
            o.writeInt(n.length);
            o.write(n);
            o.writeInt(queries.length);
            for (String q : queries) {
                byte[] b = q.getBytes(StandardCharsets.UTF_8);
                o.writeInt(b.length);
                o.write(b);
            }
        });
    }

    static byte[] request(int flags, int type, long handle, long offset, long length, byte[] payload) {
        return bytes(o -> {
            o.writeInt(REQUEST_MAGIC);
            o.writeShort(flags);
            o.writeShort(type);
            o.writeLong(handle);
            o.writeLong(offset);
            o.writeInt((int) length);
            if (payload != null) o.write(payload);
        });
    }

    static byte[] read(Source s, int n) throws IOException {
        byte[] b = new byte[n];
        s.readFully(b);
        return b;
    }

    static Hello readHello(Source s) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(read(s, 18));
        return new Hello(b.getLong(), b.getLong(), b.getShort() & 0xffff);
    }

    static OptionReply readOptionReply(Source s) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(read(s, 20));
        long magic = b.getLong();
        if (magic != OPTION_REPLY_MAGIC) throw new IOException("bad option reply magic " + Long.toHexString(magic));
        int opt = b.getInt();
        int type = b.getInt();
        int len = b.getInt();
        if (len < 0 || len > 1 << 20) throw new IOException("bad option reply length " + len);
        return new OptionReply(opt, type, read(s, len));
    }

    /**
     * Reads one reply. {@code simpleReadLength} tells, for a handle, how many data bytes follow a successful simple
     * reply (the request's length for a READ, else 0).
     */
    static Reply readReply(Source s, LongToIntFunction simpleReadLength) throws IOException {
        ByteBuffer h = ByteBuffer.wrap(read(s, 4));
        int magic = h.getInt();
        if (magic == SIMPLE_REPLY_MAGIC) {
            ByteBuffer b = ByteBuffer.wrap(read(s, 12));
            int error = b.getInt();
            long handle = b.getLong();
            byte[] data = error == 0 ? read(s, simpleReadLength.applyAsInt(handle)) : new byte[0];
            return new Reply(handle, error, -1, 0, -1, data);
        }
        if (magic != STRUCTURED_REPLY_MAGIC) throw new IOException("bad reply magic " + Integer.toHexString(magic));
        ByteBuffer b = ByteBuffer.wrap(read(s, 16));
        int flags = b.getShort() & 0xffff;
        int type = b.getShort() & 0xffff;
        long handle = b.getLong();
        int len = b.getInt();
        if (len < 0 || len > (64 << 20)) throw new IOException("bad chunk length " + len);
        byte[] payload = read(s, len);
        int error = 0;
        long offset = -1;
        byte[] data = payload;
        if (type == REPLY_TYPE_OFFSET_DATA) {
            offset = ByteBuffer.wrap(payload).getLong();
            data = java.util.Arrays.copyOfRange(payload, 8, payload.length);
        } else if ((type & 0x8000) != 0) {
            error = ByteBuffer.wrap(payload).getInt();
        }
        return new Reply(handle, error, type, flags, offset, data);
    }

    /** A Source over a growing byte array, for embedded channels; EOFException when the bytes run out. */
    static final class ArraySource implements Source {
        private byte[] buf = new byte[4096];
        private int start;
        private int end;

        void append(byte[] more) {
            if (end + more.length > buf.length) {
                int live = end - start;
                byte[] n = live + more.length > buf.length / 2 ? new byte[Math.max(buf.length * 2, live + more.length)] : buf;
                System.arraycopy(buf, start, n, 0, live);
                buf = n;
                start = 0;
                end = live;
            }
            System.arraycopy(more, 0, buf, end, more.length);
            end += more.length;
        }

        int available() { return end - start; }

        @Override
        public void readFully(byte[] b) throws IOException {
            if (available() < b.length) throw new EOFException("need " + b.length + " bytes, have " + available());
            System.arraycopy(buf, start, b, 0, b.length);
            start += b.length;
        }
    }

    static void readFully(java.io.InputStream in, byte[] b) throws IOException {
        int off = 0;
        while (off < b.length) {
            int n = in.read(b, off, b.length - off);
            if (n < 0) throw new EOFException("connection closed after " + off + " of " + b.length + " bytes");
            off += n;
        }
    }
}
