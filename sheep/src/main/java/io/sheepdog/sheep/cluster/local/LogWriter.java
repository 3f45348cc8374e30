package io.sheepdog.sheep.cluster.local;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One driver's write cursor on the event log. Every method must be called with the {@link DirectoryLock} held:
 * then no other writer is active, so anything after the last intact record is the torn tail of a writer that
 * died mid-append, and is cut off before the next record is written.
 *
 * <p>While scanning, it remembers who joined (to decide whether the log may be reinitialized) and who has been
 * reported gone (so a death is appended once, not once per survivor).
 */
final class LogWriter implements Closeable {
    private static final Logger log = LoggerFactory.getLogger(LogWriter.class);

    private final Path file;
    private FileChannel channel;
    private boolean headerRead;
    private long generation;
    private long end;
    private long lastSeq;
    private final Map<Long, Incarnation> joiners = new LinkedHashMap<>();
    private final Set<Long> reportedGone = new HashSet<>();

    LogWriter(Path file) { this.file = file; }

    /** Reopens the channel if a thread interrupt closed it: the writer is used from the caller's threads. */
    private FileChannel channel() throws IOException {
        if (channel == null || !channel.isOpen()) {
            channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
        }
        return channel;
    }

    /** Moves the cursor to the end of the log, cutting off a torn tail. Creates the header of a new file. */
    void catchUp() throws IOException {
        FileChannel ch = channel();
        long size = ch.size();
        if (!headerRead) {
            if (size < EventLog.HEADER_SIZE) {
                reinitialize();
                return;
            }
            generation = EventLog.readGeneration(ch, file);
            end = EventLog.HEADER_SIZE;
            headerRead = true;
        } else if (size < end || EventLog.readGeneration(ch, file) != generation) {
            throw new IOException("the event log " + file + " was reset or truncated while this member was alive");
        }
        while (end < size) {
            LogRecord r = EventLog.readAt(ch, end, size);
            if (r == null) {
                log.warn("Cutting off {} bytes torn by a writer that died, at offset {} of {}", size - end, end, file);
                ch.truncate(end);
                return;
            }
            if (r.seq() != lastSeq + 1) {
                throw new IOException("the event log " + file + " is out of sequence at record " + r.seq());
            }
            note(r);
            end += r.size();
            lastSeq = r.seq();
        }
    }

    /** Starts a new, empty log (a fresh cluster): only when no member recorded in the old one is alive. */
    void reinitialize() throws IOException {
        generation = EventLog.initialize(channel());
        end = EventLog.HEADER_SIZE;
        lastSeq = 0;
        headerRead = true;
        joiners.clear();
        reportedGone.clear();
    }

    /** Appends {@code r} after the last record and returns its sequence number. */
    long append(LogRecord r) throws IOException {
        catchUp();
        long seq = lastSeq + 1;
        var bytes = r.encode(seq);
        int size = bytes.remaining();
        EventLog.writeFully(channel(), bytes, end);
        end += size;
        lastSeq = seq;
        note(r);
        return seq;
    }

    private void note(LogRecord r) {
        switch (r.type()) {
            case JOIN -> joiners.put(r.sender().id(), r.sender());
            case LEAVE -> reportedGone.add(r.subject());
            default -> { }
        }
    }

    /** Every incarnation that ever asked to join since the log was initialized. */
    Collection<Incarnation> joiners() { return joiners.values(); }

    /** True if a LEAVE for {@code id} is already in the log (as of the last catch-up). */
    boolean reportedGone(long id) { return reportedGone.contains(id); }

    long generation() { return generation; }

    long lastSeq() { return lastSeq; }

    @Override public void close() throws IOException {
        if (channel != null) channel.close();
    }
}
