package io.sheepdog.sheep.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Whether a directory's disk still works: a one-byte file written, synced and removed. A disk that fails answers with
 * an I/O error (thrown); one that hung never returns (the caller's watchdog tells). A full disk is not a failed one.
 */
public final class DirProbe {
    private DirProbe() {}

    /**
     * @throws IOException if the directory cannot be written and synced (never for a full disk)
     *
     * <p>A pending interrupt of the calling thread is set aside for the probe and restored after: a file channel
     * used by an interrupted thread closes at once (ClosedByInterruptException), and the probe that follows an
     * I/O error (itself perhaps that exception) would then condemn a healthy disk.
     */
    public static void probe(Path dir) throws IOException {
        boolean interrupted = Thread.interrupted();
        try {
            probeOnce(dir);
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    private static void probeOnce(Path dir) throws IOException {
        Path p = dir.resolve(".probe-" + ProcessHandle.current().pid());
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(ByteBuffer.wrap(new byte[] {1}));
            ch.force(false);
        } catch (IOException e) {
            if (FileObjectStore.isNoSpace(e)) return; // full, not failed
            throw e;
        } finally {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // the failure to report is the one above
            }
        }
    }
}
