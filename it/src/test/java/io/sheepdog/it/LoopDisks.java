package io.sheepdog.it;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Real block devices for multi-disk tests: each disk is a sparse image file on a loop device with its own ext4 file
 * system, mounted at a directory the sheep is given. {@link #fail} makes a disk fail the way a dying one does: the file
 * system is shut down ({@code xfs_io -x -c shutdown}, the ext4 shutdown ioctl), after which every read, write and sync
 * on it returns EIO. {@link #close} unmounts and detaches everything it made, by device name.
 *
 * <p>Where loop devices cannot be had (not root, or a container without them) the disks are plain directories, and a
 * disk fails as under an unmount: its directory is moved away and an empty one takes its place. {@link #kind} says
 * which, for the test's figures.
 */
final class LoopDisks implements AutoCloseable {
    private final Path base;
    private final List<Path> mounts = new ArrayList<>();
    private final List<String> devices = new ArrayList<>();
    private final java.util.Set<Path> frozen = new java.util.HashSet<>();
    private boolean loops;

    LoopDisks(String name) throws IOException {
        this.base = Files.createTempDirectory("sdit-" + name + "-disks-");
        loops = !Boolean.getBoolean("sheepdog.it.dirDisks") && Files.exists(Path.of("/dev/loop-control")) && "root".equals(System.getProperty("user.name"))
                && Commands.installed("losetup") && Commands.installed("mkfs.ext4") && Commands.installed("xfs_io");
        if ("true".equalsIgnoreCase(System.getenv("CI")) && "root".equals(System.getProperty("user.name"))) {
            Tools.require("losetup", "mkfs.ext4", "xfs_io"); // .ci/run installs them: a broken install must not pass
        }
        if (!loops) System.err.println("LoopDisks: no loop devices here; the disks are directories");
    }

    /** "ext4 loop" or "directory" disks. */
    String kind() { return loops ? "ext4 loop" : "directory"; }

    /** A new disk of {@code mib} MiB, mounted; returns its mount point (the directory to give to sheep). */
    Path add(int mib) throws IOException {
        return mountAt(base.resolve("disk" + mounts.size()), mib);
    }

    /**
     * A new disk of {@code mib} MiB mounted at {@code mnt} (created if missing; it should be empty): a directory with a
     * file system of its own, whose free space nothing else moves. Directory disks: just the directory.
     */
    Path mountAt(Path mnt, int mib) throws IOException {
        int n = mounts.size();
        Path img = base.resolve("disk" + n + ".img");
        Files.createDirectories(mnt);
        if (loops && n == 0 && !loopWorks()) {
            loops = false;
            System.err.println("LoopDisks: losetup does not work here; the disks are directories");
        }
        if (!loops) {
            mounts.add(mnt);
            return mnt;
        }
        try (var f = java.nio.channels.FileChannel.open(img, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            f.write(java.nio.ByteBuffer.wrap(new byte[1]), (long) mib * 1024 * 1024 - 1);
        }
        CommandResult lo = Commands.run(List.of("losetup", "-f", "--show", img.toString()));
        if (lo.exitCode() != 0) throw new IOException("losetup: " + lo.stderr());
        String dev = lo.stdout().trim();
        devices.add(dev);
        // a loop device keeps a read-only flag across detach and attach (blockdev --setro by someone before)
        Commands.run(List.of("blockdev", "--setrw", dev));
        run("mkfs.ext4", "-q", "-F", "-m", "0", dev);
        run("mount", "-o", "user_xattr", dev, mnt.toString());
        mounts.add(mnt);
        return mnt;
    }

    /** {@code count} new disks of {@code mib} MiB each. */
    List<Path> add(int count, int mib) throws IOException {
        List<Path> out = new ArrayList<>();
        for (int i = 0; i < count; i++) out.add(add(mib));
        return out;
    }

    /** Whether a loop device can be set up here (some containers have the control file but no devices). */
    private boolean loopWorks() throws IOException {
        Path probe = base.resolve("probe.img");
        try (var f = java.nio.channels.FileChannel.open(probe, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            f.write(java.nio.ByteBuffer.wrap(new byte[1]), (1 << 20) - 1);
        }
        try {
            CommandResult lo = Commands.run(List.of("losetup", "-f", "--show", probe.toString()));
            if (lo.exitCode() != 0) return false;
            Commands.run(List.of("losetup", "-d", lo.stdout().trim()));
            return true;
        } finally {
            Files.deleteIfExists(probe);
        }
    }

    /**
     * The disk mounted at {@code mount} fails: from now on its file system answers EIO (directory disks: it is moved
     * away and an empty directory shows in its place, as a mount point does after an unmount).
     */
    void fail(Path mount) throws IOException {
        if (loops) {
            run("xfs_io", "-x", "-c", "shutdown", mount.toString());
        } else {
            Files.move(mount, mount.resolveSibling(mount.getFileName() + ".failed"));
            Files.createDirectories(mount);
        }
    }

    /**
     * The disk loses its power: the file system is shut down without flushing anything ({@code xfs_io -x -c shutdown},
     * the ext4 shutdown ioctl's NOLOGFLUSH: the running journal transaction is aborted and dirty pages are never
     * written), unmounted and mounted again (the journal replayed), so that it holds what had reached the device
     * (everything synced) and maybe some of what had not, as after a power cut. Whoever had files open on it must be
     * gone (killed). Loop disks only: false (and nothing done) for directory disks.
     */
    boolean powerLoss(Path mount) throws IOException {
        if (!loops) return false;
        int i = mounts.indexOf(mount);
        if (i < 0) throw new IllegalArgumentException("not a disk of these: " + mount);
        run("xfs_io", "-x", "-c", "shutdown", mount.toString());
        run("umount", mount.toString());
        run("mount", "-o", "user_xattr", devices.get(i), mount.toString());
        return true;
    }

    /**
     * The disk hangs: {@code fsfreeze -f} holds every write and sync on its file system until {@link #thaw} (reads of
     * what is cached still work), as a disk or controller that stopped answering does. Loop disks only: false (and
     * nothing done) for directory disks.
     */
    boolean freeze(Path mount) throws IOException {
        if (!loops) return false;
        run("fsfreeze", "-f", mount.toString());
        frozen.add(mount);
        return true;
    }

    /** The frozen disk works again. */
    void thaw(Path mount) throws IOException {
        if (frozen.remove(mount)) run("fsfreeze", "-u", mount.toString());
    }

    /**
     * {@code rm -rf} of the disk's directory while the sheep uses it: on a loop disk the mount point itself stays (it
     * is busy) and everything in it goes, file by file; a directory disk goes altogether.
     */
    void removeAll(Path mount) {
        Commands.run(List.of("rm", "-rf", mount.toString()));
    }

    /**
     * The disk is unmounted under the sheep ({@code umount -l}: it goes at once, the files the sheep has open keep the
     * file system alive, and the empty mount point shows in its place); a directory disk is replaced by an empty one.
     * True if it was an unmount.
     */
    boolean unmount(Path mount) throws IOException {
        if (!loops) {
            fail(mount);
            return false;
        }
        run("umount", "-l", mount.toString());
        return true;
    }

    /** Object files (16 hex digits, or an erasure-coded strip) directly in {@code mount}. */
    static long objectFiles(Path mount) throws IOException {
        try (var s = Files.list(mount)) {
            return s.filter(p -> p.getFileName().toString().matches("[0-9a-f]{16}(_[0-9]+)?")).count();
        }
    }

    private static void run(String... cmd) throws IOException {
        CommandResult r = Commands.run(List.of(cmd));
        if (r.exitCode() != 0) throw new IOException(String.join(" ", cmd) + ": " + r.stderr());
    }

    @Override
    public void close() {
        for (Path m : List.copyOf(frozen)) Commands.run(List.of("fsfreeze", "-u", m.toString())); // an unmount would wait for ever
        frozen.clear();
        for (int i = mounts.size() - 1; i >= 0; i--) {
            CommandResult r = Commands.run(List.of("umount", mounts.get(i).toString()));
            if (r.exitCode() != 0) Commands.run(List.of("umount", "-l", mounts.get(i).toString()));
        }
        for (String d : devices) Commands.run(List.of("losetup", "-d", d));
        try (var s = Files.list(base)) {
            for (Path p : s.toList()) {
                if (p.getFileName().toString().endsWith(".img")) Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            System.err.println("cannot remove the disk images under " + base + ": " + e);
        }
        // the mount points made here, and the directory itself, if nothing is left in them (directory disks keep
        // what a failed test wrote, for its diagnosis)
        for (Path m : mounts) {
            if (m.startsWith(base)) deleteIfEmpty(m);
        }
        deleteIfEmpty(base);
    }

    private static void deleteIfEmpty(Path dir) {
        try {
            Files.deleteIfExists(dir);
        } catch (IOException notEmpty) {
            // kept
        }
    }
}
