package io.sheepdog.sheep;

import io.sheepdog.sheep.access.AccessOptions;
import io.sheepdog.sheep.store.FileObjectStore;
import java.nio.file.Path;
import java.util.List;

/** What {@code sheep} was started with, after validation. */
public record SheepOptions(
        Path storeDir,
        int port,
        long zone,            // -1: derive from the address
        String bindAddr,      // null: all addresses
        String myAddr,        // address advertised to the other nodes
        String cluster,
        boolean foreground,
        Path pidFile,
        Path logDir,
        String logLevel,
        boolean logToStdout,
        boolean noSync,
        int nbdPort,          // 0: NBD off
        boolean gateway,
        int vnodes,           // 0: auto vnodes (from the node's space); 1..65535: fixed (-V)
        int recoveryMax,      // -R max=N,interval=MS: at most N objects recovered per interval (0: no throttle)
        long recoveryIntervalMs,
        long failureTimeoutMs, // a member that answers no heartbeat for this long is evicted (0: never)
        boolean strictVdiLock, // --vdi-lock strict: a second NBD writer is refused at open (default: handover)
        AccessOptions access, // --nbd-tls, --allow, --admin-allow
        List<Path> disks,     // PATH,DISK1,DISK2,...: the object disks (empty: PATH/obj)
        long journalBytes,    // --journal: the write journal of each disk (0: none)
        boolean directWrites, // -D/--directio (default) or --no-directio: whole-block durable writes past the page cache
        String ioAddr,        // -i host=: the I/O port's address (null: the node's own address)
        int ioPort,           // -i port=: the I/O port, where peers send data (0: any free port; NO_IO_PORT: none)
        long diskTimeoutMs) { // --disk-timeout: a store check that runs this long means a hung disk: the node leaves (0: never)

    /** {@code -i off}: no I/O port; the other sheep send data to the main port. */
    public static final int NO_IO_PORT = -1;

    public SheepOptions {
        if (access == null) access = AccessOptions.OPEN;
        disks = disks == null ? List.of() : List.copyOf(disks);
    }

    /** The object directories: the disks given, else {@code storeDir/obj}. */
    public List<Path> objectDirs() {
        return disks.isEmpty() ? List.of(storeDir.resolve("obj")) : disks;
    }

    /** The default of {@code --failure-timeout}: five seconds without an answer. */
    public static final long DEFAULT_FAILURE_TIMEOUT_MS = 5000;

    /** The default of {@code --disk-timeout}: a store check (a write and a sync) still running after 15 s. */
    public static final long DEFAULT_DISK_TIMEOUT_MS = 15_000;

    /** Options named one by one, starting from sheep's defaults for a node whose store is {@code storeDir}. */
    public static Builder builder(Path storeDir) { return new Builder(storeDir); }

    /** Named construction of {@link SheepOptions}; every option not set keeps sheep's default. */
    public static final class Builder {
        private final Path storeDir;
        private int port = 7000;
        private long zone = -1;
        private String bindAddr;
        private String myAddr;
        private String cluster = "local";
        private boolean foreground;
        private Path pidFile;
        private Path logDir;
        private String logLevel = "info";
        private boolean logToStdout;
        private boolean noSync;
        private int nbdPort;
        private boolean gateway;
        private int vnodes;
        private int recoveryMax;
        private long recoveryIntervalMs;
        private long failureTimeoutMs = DEFAULT_FAILURE_TIMEOUT_MS;
        private boolean strictVdiLock;
        private AccessOptions access;
        private List<Path> disks = List.of();
        private long journalBytes = FileObjectStore.DEFAULT_JOURNAL_BYTES;
        private boolean directWrites = FileObjectStore.DIRECT_WRITES;
        private String ioAddr;
        private int ioPort;
        private long diskTimeoutMs = DEFAULT_DISK_TIMEOUT_MS;

        private Builder(Path storeDir) { this.storeDir = storeDir; }

        public Builder port(int v) { port = v; return this; }
        public Builder zone(long v) { zone = v; return this; }
        public Builder bindAddr(String v) { bindAddr = v; return this; }
        public Builder myAddr(String v) { myAddr = v; return this; }
        /** The cluster driver spec ({@code -c}). */
        public Builder cluster(String v) { cluster = v; return this; }
        public Builder foreground(boolean v) { foreground = v; return this; }
        public Builder pidFile(Path v) { pidFile = v; return this; }
        public Builder logDir(Path v) { logDir = v; return this; }
        public Builder logLevel(String v) { logLevel = v; return this; }
        public Builder logToStdout(boolean v) { logToStdout = v; return this; }
        public Builder noSync(boolean v) { noSync = v; return this; }
        /** 0: NBD off. */
        public Builder nbdPort(int v) { nbdPort = v; return this; }
        public Builder gateway(boolean v) { gateway = v; return this; }
        /** 0: auto vnodes; 1..65535: fixed ({@code -V}). */
        public Builder vnodes(int v) { vnodes = v; return this; }
        public Builder recoveryThrottle(int max, long intervalMs) { recoveryMax = max; recoveryIntervalMs = intervalMs; return this; }
        /** 0: never evict. */
        public Builder failureTimeoutMs(long v) { failureTimeoutMs = v; return this; }
        public Builder strictVdiLock(boolean v) { strictVdiLock = v; return this; }
        public Builder access(AccessOptions v) { access = v; return this; }
        public Builder disks(List<Path> v) { disks = v; return this; }
        /** The size of each disk's write journal; 0: none (every write synced in its object file). */
        public Builder journalBytes(long v) { journalBytes = v; return this; }
        /** Whether durable writes of whole 4 KiB blocks bypass the page cache (store/DirectWrites). */
        public Builder directWrites(boolean v) { directWrites = v; return this; }

        /** The I/O port ({@code -i}): address (null: the node's own) and port (0: any free; {@link #NO_IO_PORT}: none). */
        public Builder ioPort(String addr, int port) { ioAddr = addr; ioPort = port; return this; }

        /** 0: never take the node out for a hung disk. */
        public Builder diskTimeoutMs(long v) { diskTimeoutMs = v; return this; }

        public SheepOptions build() {
            return new SheepOptions(storeDir, port, zone, bindAddr, myAddr, cluster, foreground, pidFile,
                    logDir == null ? storeDir : logDir, logLevel, logToStdout, noSync, nbdPort, gateway, vnodes,
                    recoveryMax, recoveryIntervalMs, failureTimeoutMs, strictVdiLock, access, disks, journalBytes,
                    directWrites, ioAddr, ioPort, diskTimeoutMs);
        }
    }

    public boolean fixedVnodes() { return vnodes > 0; }
}
