package io.sheepdog.sheep;

import java.nio.file.Path;

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
        boolean gateway) {
}
