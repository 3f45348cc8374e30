package io.sheepdog.sheep.cluster.local;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The writers' lock of one rendezvous directory: an exclusive lock on its {@code lock} file, shared by every
 * driver of this JVM that uses the directory.
 *
 * <p>Why one object per directory and JVM: file locks belong to the process, and closing <em>any</em> channel on
 * a file drops all of the process's locks on it. So each JVM keeps a single channel on the lock file, and its
 * drivers take turns through a {@link ReentrantLock} before locking the file.
 */
final class DirectoryLock {
    static final String FILE_NAME = "lock";
    private static final Map<Path, DirectoryLock> OPEN = new HashMap<>();

    private final Path dir;
    private final Path file;
    private final ReentrantLock inJvm = new ReentrantLock();
    private FileChannel channel;
    private int users;
    private boolean released;

    private DirectoryLock(Path dir) {
        this.dir = dir;
        this.file = dir.resolve(FILE_NAME);
    }

    /** The lock of {@code realDir} (a real path, so that two spellings of one directory share one lock). */
    static synchronized DirectoryLock acquire(Path realDir) {
        DirectoryLock l = OPEN.computeIfAbsent(realDir, DirectoryLock::new);
        l.users++;
        return l;
    }

    /**
     * Drops one user; the last one closes the channel. That happens before the directory can be looked up again,
     * so the close never drops the lock of a newer channel on the same file.
     */
    void release() {
        synchronized (DirectoryLock.class) {
            if (--users > 0) return;
            OPEN.remove(dir);
            inJvm.lock(); // a straggling writer finishes first
            try {
                released = true;
                if (channel != null) channel.close();
            } catch (IOException ignored) {
                // closing a lock file nobody uses any more: nothing to recover
            } finally {
                inJvm.unlock();
            }
        }
    }

    interface Action<T> {
        T run() throws IOException;
    }

    /** Runs {@code action} while holding the directory's lock against every other process and driver. */
    <T> T locked(Action<T> action) throws IOException {
        inJvm.lock();
        if (released) {
            inJvm.unlock();
            throw new IOException("the lock of " + dir + " is no longer in use by this driver");
        }
        // A pending interrupt would make lock() close the shared channel; keep it for after.
        boolean interrupted = Thread.interrupted();
        try {
            FileLock fileLock = lockFile();
            try {
                return action.run();
            } finally {
                if (fileLock.isValid()) fileLock.release();
            }
        } finally {
            inJvm.unlock();
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    private FileLock lockFile() throws IOException {
        while (true) {
            if (channel == null || !channel.isOpen()) {
                channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            }
            try {
                return channel.lock();
            } catch (OverlappingFileLockException e) {
                // Only possible if this JVM reached the file by another path; wait for that holder.
                LockSupport.parkNanos(1_000_000);
            }
        }
    }
}
