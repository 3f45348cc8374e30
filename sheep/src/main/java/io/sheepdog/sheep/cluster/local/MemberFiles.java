package io.sheepdog.sheep.cluster.local;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Liveness of members. Each incarnation holds an exclusive lock on its own file {@code members/<pid>-<id>.member}
 * for its whole life; the kernel drops the lock when the process dies, however it dies. So an incarnation is dead
 * when its file is missing or can be locked by someone else.
 *
 * <p>Files held by this JVM are never opened for probing: closing a probe channel would drop this process's lock
 * on the file (locks belong to the process). They are answered from an in-JVM registry instead.
 */
final class MemberFiles {
    private static final Logger log = LoggerFactory.getLogger(MemberFiles.class);
    static final String DIR_NAME = "members";
    private static final String SUFFIX = ".member";
    private static final String TMP_SUFFIX = ".tmp";
    /** A half-created member file older than this belongs to a process that died while joining. */
    private static final Duration STALE_TMP = Duration.ofMinutes(1);
    private static final Set<Path> HELD_BY_THIS_JVM = ConcurrentHashMap.newKeySet();

    private MemberFiles() {}

    static Path path(Path dir, Incarnation inc) {
        return dir.resolve(DIR_NAME).resolve(inc.fileStem() + SUFFIX);
    }

    /** The locked member file of a live incarnation; closing it announces the death. */
    static final class Held implements AutoCloseable {
        private final Path path;
        private final FileChannel channel;
        private boolean closed;

        private Held(Path path, FileChannel channel) {
            this.path = path;
            this.channel = channel;
        }

        @Override public synchronized void close() {
            if (closed) return;
            closed = true;
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                log.warn("Cannot delete member file {}: {}", path, e.toString());
            }
            HELD_BY_THIS_JVM.remove(path);
            try {
                channel.close(); // releases the lock
            } catch (IOException e) {
                log.warn("Cannot close member file {}: {}", path, e.toString());
            }
        }
    }

    /**
     * Creates and locks the member file of {@code inc}. It is locked under a temporary name and then renamed, so a
     * probe never sees the final name unlocked while its owner is alive.
     */
    static Held create(Path dir, Incarnation inc, String description) throws IOException {
        Path members = Files.createDirectories(dir.resolve(DIR_NAME));
        Path tmp = members.resolve(inc.fileStem() + TMP_SUFFIX);
        Path fin = path(dir, inc);
        FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        try {
            ch.lock();
            ch.write(ByteBuffer.wrap((description + "\n").getBytes(StandardCharsets.UTF_8)));
            HELD_BY_THIS_JVM.add(fin);
            Files.move(tmp, fin, StandardCopyOption.ATOMIC_MOVE);
            return new Held(fin, ch);
        } catch (IOException | RuntimeException e) {
            HELD_BY_THIS_JVM.remove(fin);
            ch.close();
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    /** True while {@code inc}'s process holds its member file. An unreadable file counts as alive. */
    static boolean alive(Path dir, Incarnation inc) {
        Path p = path(dir, inc);
        return HELD_BY_THIS_JVM.contains(p) || locked(p);
    }

    /** True if some member file in {@code dir}, other than {@code self}'s, is still held by a live process. */
    static boolean anyAliveOtherThan(Path dir, Incarnation self) throws IOException {
        Path mine = path(dir, self);
        Path members = dir.resolve(DIR_NAME);
        if (!Files.isDirectory(members)) return false;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(members, "*" + SUFFIX)) {
            for (Path f : files) {
                if (!f.equals(mine) && (HELD_BY_THIS_JVM.contains(f) || locked(f))) return true;
            }
        }
        return false;
    }

    /** Deletes the files of dead members (called when the log is reinitialized, under the directory lock). */
    static void deleteDead(Path dir) {
        Path members = dir.resolve(DIR_NAME);
        try (DirectoryStream<Path> files = Files.newDirectoryStream(members)) {
            Instant staleBefore = Instant.now().minus(STALE_TMP);
            for (Path f : files) {
                String name = f.getFileName().toString();
                if (name.endsWith(SUFFIX) && !HELD_BY_THIS_JVM.contains(f) && !locked(f)) {
                    Files.deleteIfExists(f);
                } else if (name.endsWith(TMP_SUFFIX)
                        && Files.getLastModifiedTime(f).toInstant().isBefore(staleBefore)) {
                    Files.deleteIfExists(f);
                }
            }
        } catch (IOException e) {
            log.warn("Cannot clean up dead member files in {}: {}", members, e.toString());
        }
    }

    /** Probes a member file not held by this JVM: locked by another process, or missing (= dead). */
    private static boolean locked(Path f) {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            FileLock probe = ch.tryLock();
            if (probe == null) return true;
            probe.release();
            return false;
        } catch (NoSuchFileException e) {
            return false;
        } catch (OverlappingFileLockException e) {
            return true;
        } catch (IOException e) {
            log.warn("Cannot probe member file {}, assuming the member is alive: {}", f, e.toString());
            return true;
        }
    }
}
