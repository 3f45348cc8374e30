package io.sheepdog.sheep.cluster.local;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collection;

/**
 * A member's read cursor: tails the event log from its first record, without taking the lock. A record that is
 * incomplete or fails its CRC is left for the next poll (it is being written, or it is a torn tail that the next
 * writer cuts off and overwrites).
 */
final class LogReader implements Closeable {
    private final Path file;
    private final FileChannel channel;
    private long offset = EventLog.HEADER_SIZE;
    private long nextSeq = 1;

    LogReader(Path file, long generation) throws IOException {
        this.file = file;
        this.channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            if (EventLog.readGeneration(channel, file) != generation) {
                throw new IOException("the event log " + file + " was replaced while joining");
            }
        } catch (IOException e) {
            channel.close();
            throw e;
        }
    }

    /** Appends up to {@code max} new records to {@code out}; returns how many. */
    int readInto(Collection<LogRecord> out, int max) throws IOException {
        long size = channel.size();
        if (size < offset) throw new IOException("the event log " + file + " was truncated under a live member");
        int n = 0;
        while (n < max && offset < size) {
            LogRecord r = EventLog.readAt(channel, offset, size);
            if (r == null) break;
            if (r.seq() != nextSeq) {
                throw new IOException("the event log " + file + " is out of sequence: record " + r.seq()
                        + " where " + nextSeq + " was expected");
            }
            out.add(r);
            offset += r.size();
            nextSeq++;
            n++;
        }
        return n;
    }

    @Override public void close() throws IOException { channel.close(); }
}
