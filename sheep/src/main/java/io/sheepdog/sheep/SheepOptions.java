package io.sheepdog.sheep;

import java.nio.file.Path;
import io.sheepdog.sheep.access.AccessOptions;
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
        List<Path> disks) { // PATH,DISK1,DISK2,...: the object disks (empty: PATH/obj)

    public SheepOptions {
        if (access == null) access = AccessOptions.OPEN;
        disks = disks == null ? List.of() : List.copyOf(disks);
    }

    /** One object directory, {@code storeDir/obj}. */
    public SheepOptions(Path storeDir, int port, long zone, String bindAddr, String myAddr, String cluster,
                        boolean foreground, Path pidFile, Path logDir, String logLevel, boolean logToStdout,
                        boolean noSync, int nbdPort, boolean gateway, int vnodes, int recoveryMax,
                        long recoveryIntervalMs, long failureTimeoutMs, boolean strictVdiLock,
                        AccessOptions access) {
        this(storeDir, port, zone, bindAddr, myAddr, cluster, foreground, pidFile, logDir, logLevel, logToStdout, noSync,
                nbdPort, gateway, vnodes, recoveryMax, recoveryIntervalMs, failureTimeoutMs, strictVdiLock, access, null);
    }

    /** The object directories: the disks given, else {@code storeDir/obj}. */
    public List<Path> objectDirs() {
        return disks.isEmpty() ? List.of(storeDir.resolve("obj")) : disks;
    }

    /** Open access (no TLS, no allow-lists). */
    public SheepOptions(Path storeDir, int port, long zone, String bindAddr, String myAddr, String cluster,
                        boolean foreground, Path pidFile, Path logDir, String logLevel, boolean logToStdout,
                        boolean noSync, int nbdPort, boolean gateway, int vnodes, int recoveryMax,
                        long recoveryIntervalMs, long failureTimeoutMs, boolean strictVdiLock) {
        this(storeDir, port, zone, bindAddr, myAddr, cluster, foreground, pidFile, logDir, logLevel, logToStdout, noSync,
                nbdPort, gateway, vnodes, recoveryMax, recoveryIntervalMs, failureTimeoutMs, strictVdiLock, null, null);
    }

    /** The default of {@code --failure-timeout}: five seconds without an answer. */
    public static final long DEFAULT_FAILURE_TIMEOUT_MS = 5000;

    /** Auto vnodes, no recovery throttle. */
    public SheepOptions(Path storeDir, int port, long zone, String bindAddr, String myAddr, String cluster,
                        boolean foreground, Path pidFile, Path logDir, String logLevel, boolean logToStdout,
                        boolean noSync, int nbdPort, boolean gateway) {
        this(storeDir, port, zone, bindAddr, myAddr, cluster, foreground, pidFile, logDir, logLevel, logToStdout, noSync,
                nbdPort, gateway, 0, 0, 0, DEFAULT_FAILURE_TIMEOUT_MS, false);
    }

    /** With the default lock model (handover). */
    public SheepOptions(Path storeDir, int port, long zone, String bindAddr, String myAddr, String cluster,
                        boolean foreground, Path pidFile, Path logDir, String logLevel, boolean logToStdout,
                        boolean noSync, int nbdPort, boolean gateway, int vnodes, int recoveryMax,
                        long recoveryIntervalMs, long failureTimeoutMs) {
        this(storeDir, port, zone, bindAddr, myAddr, cluster, foreground, pidFile, logDir, logLevel, logToStdout, noSync,
                nbdPort, gateway, vnodes, recoveryMax, recoveryIntervalMs, failureTimeoutMs, false);
    }

    public boolean fixedVnodes() { return vnodes > 0; }
}
