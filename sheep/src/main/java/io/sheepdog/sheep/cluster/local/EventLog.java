package io.sheepdog.sheep.cluster.local;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.security.SecureRandom;

/**
 * The append-only event log file shared by every member on the host: a 16-byte header ({@code "SDLOCAL1"}
 * magic and a random generation), then {@link LogRecord}s. Its order is the cluster's total order.
 *
 * <p>Writers append only while holding the {@link DirectoryLock}; readers poll the file without any lock and
 * accept a record only once it is complete and its CRC matches.
 */
final class EventLog {
    static final String FILE_NAME = "events.log";
    static final int HEADER_SIZE = 16;
    static final long FILE_MAGIC = 0x314C41434F4C4453L; // "SDLOCAL1" read little-endian
    private static final SecureRandom RANDOM = new SecureRandom();

    private EventLog() {}

    static Path file(Path dir) { return dir.resolve(FILE_NAME); }

    /** Reads the generation from the header, or throws if the file is not an event log. Needs size >= HEADER_SIZE. */
    static long readGeneration(FileChannel ch, Path file) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        if (!readFully(ch, h, 0)) throw new IOException(file + " is too short to be an event log");
        if (h.getLong(0) != FILE_MAGIC) throw new NotAnEventLogException(file);
        return h.getLong(8);
    }

    /** Empties the file and writes a fresh header with a new generation; returns the generation. */
    static long initialize(FileChannel ch) throws IOException {
        long generation = RANDOM.nextLong();
        ch.truncate(0);
        ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        h.putLong(FILE_MAGIC).putLong(generation).flip();
        writeFully(ch, h, 0);
        return generation;
    }

    /**
     * Reads the record at {@code offset} of a file of {@code size} bytes, or null if there is no complete, intact
     * record there (yet).
     */
    static LogRecord readAt(FileChannel ch, long offset, long size) throws IOException {
        if (size - offset < 8) return null;
        ByteBuffer h = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        if (!readFully(ch, h, offset)) return null;
        int magic = h.getInt(0), bodyLen = h.getInt(4);
        if (magic != LogRecord.MAGIC || bodyLen < LogRecord.minBody() || bodyLen > LogRecord.MAX_BODY) return null;
        if (size - offset < 8L + bodyLen + 4) return null;
        byte[] rest = new byte[bodyLen + 4];
        if (!readFully(ch, ByteBuffer.wrap(rest), offset + 8)) return null;
        return LogRecord.decode(rest, bodyLen);
    }

    static boolean readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, pos);
            if (n < 0) return false;
            pos += n;
        }
        return true;
    }

    static void writeFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) pos += ch.write(b, pos);
    }

    /** The file exists but holds something else; it is only replaced when no member is alive. */
    static final class NotAnEventLogException extends IOException {
        private static final long serialVersionUID = 1L;

        NotAnEventLogException(Path file) { super(file + " is not a sheepdog local cluster event log"); }
    }
}
