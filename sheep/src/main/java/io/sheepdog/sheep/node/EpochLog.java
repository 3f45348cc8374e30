package io.sheepdog.sheep.node;

import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.SdNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/** The {@code epoch/%08u} files: the member list of every epoch and when it was logged. */
public final class EpochLog {
    private final Path dir;

    public EpochLog(Path dir) throws IOException {
        this.dir = dir;
        Files.createDirectories(dir);
    }

    private Path file(int epoch) { return dir.resolve(String.format("%08d", epoch)); }

    public synchronized void write(int epoch, List<SdNode> members, long timeSec) throws IOException {
        // kept in node order (address, then port), as the original logs them and dog prints them
        List<SdNode> nodes = new ArrayList<>(members);
        nodes.sort(null);
        Path tmp = dir.resolve(String.format("%08d.tmp", epoch));
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(EpochRecord.encodeFile(nodes, timeSec)));
            ch.force(true);
        }
        Files.move(tmp, file(epoch), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** The record of {@code epoch}, or null if this node never logged it. */
    public synchronized EpochRecord read(int epoch) throws IOException {
        Path f = file(epoch);
        if (!Files.exists(f)) return null;
        return EpochRecord.decodeFile(epoch, Files.readAllBytes(f));
    }

    public synchronized byte[] readRaw(int epoch) throws IOException {
        Path f = file(epoch);
        return Files.exists(f) ? Files.readAllBytes(f) : null;
    }

    public synchronized void writeRaw(int epoch, byte[] raw) throws IOException {
        EpochRecord r = EpochRecord.decodeFile(epoch, raw);
        write(epoch, r.nodes, r.time);
    }

    /** Highest epoch logged, 0 if none. */
    public synchronized int latest() throws IOException {
        int max = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                if (n.length() == 8) {
                    try { max = Math.max(max, Integer.parseInt(n)); } catch (NumberFormatException ignored) { }
                }
            }
        }
        return max;
    }

    public synchronized void clear() throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) Files.deleteIfExists(p);
        }
    }
}
