package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.concurrent.ConcurrentHashMap;

/** A small blocking NBD client over TCP for tests: requests are pipelined, replies read one at a time. */
final class NbdSocketClient implements AutoCloseable {
    final Socket socket;
    private final InputStream in;
    private final OutputStream out;
    private final ConcurrentHashMap<Long, Integer> readLengths = new ConcurrentHashMap<>();
    final NbdWire.Source source;
    long size;
    int transmissionFlags;

    private NbdSocketClient(Socket s) throws IOException {
        socket = s;
        in = new BufferedInputStream(s.getInputStream(), 1 << 16);
        out = s.getOutputStream();
        source = b -> NbdWire.readFully(in, b);
    }

    /** Connects without negotiating. */
    static NbdSocketClient raw(int port) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        s.setSoTimeout(30_000);
        s.setTcpNoDelay(true);
        return new NbdSocketClient(s);
    }

    /** Connects and negotiates (NO_ZEROES, structured replies when asked, base:allocation, GO). */
    static NbdSocketClient connect(int port, String export, boolean structured) throws IOException {
        NbdSocketClient c = raw(port);
        try {
            c.negotiate(export, structured);
            return c;
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    private void negotiate(String export, boolean structured) throws IOException {
        NbdWire.readHello(source);
        send(NbdWire.clientFlags(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES));
        if (structured) {
            send(NbdWire.option(OPT_STRUCTURED_REPLY));
            expect(NbdWire.readOptionReply(source).type() == REP_ACK);
            send(NbdWire.option(OPT_SET_META_CONTEXT, NbdWire.metaData(export, META_BASE_ALLOCATION)));
            expect(NbdWire.readOptionReply(source).type() == REP_META_CONTEXT);
            expect(NbdWire.readOptionReply(source).type() == REP_ACK);
        }
        send(NbdWire.option(OPT_GO, NbdWire.goData(export)));
        while (true) {
            NbdWire.OptionReply r = NbdWire.readOptionReply(source);
            if (r.type() == REP_ACK) return;
            if (r.type() != REP_INFO) throw new IOException("GO refused: " + r.text());
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(r.data());
            if (b.getShort() == INFO_EXPORT) {
                size = b.getLong();
                transmissionFlags = b.getShort() & 0xffff;
            }
        }
    }

    private static void expect(boolean ok) throws IOException {
        if (!ok) throw new IOException("unexpected option reply");
    }

    synchronized void send(byte[] b) throws IOException {
        out.write(b);
        out.flush();
    }

    void request(int flags, int type, long handle, long offset, long length, byte[] payload) throws IOException {
        if (type == CMD_READ) readLengths.put(handle, (int) length);
        send(NbdWire.request(flags, type, handle, offset, length, payload));
    }

    NbdWire.Reply reply() throws IOException {
        return NbdWire.readReply(source, h -> readLengths.getOrDefault(h, 0));
    }

    void flush() throws IOException {
        request(0, CMD_FLUSH, -1, 0, 0, null);
        NbdWire.Reply r = reply();
        if (r.error() != 0) throw new IOException("flush failed: " + r.error());
    }

    /** True when the server has closed the connection (reads EOF within the socket timeout). */
    boolean closedByServer() {
        try {
            return in.read() < 0;
        } catch (IOException e) {
            return true;
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
