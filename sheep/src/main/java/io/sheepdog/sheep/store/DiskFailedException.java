package io.sheepdog.sheep.store;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The disk that held (or was to hold) an object failed during the operation and is out of the store now. The object
 * is not lost to the cluster: its other copies (or strips) remain, and this node recovers it onto its other disks, so
 * the operation is worth retrying once that recovery has it (see {@code PeerService}).
 */
public final class DiskFailedException extends IOException {
    private final Path disk;

    public DiskFailedException(Path disk, long key, IOException cause) {
        super("disk " + disk + " failed (object " + StoreKey.display(key) + "): " + cause.getMessage(), cause);
        this.disk = disk;
    }

    public Path disk() { return disk; }
}
