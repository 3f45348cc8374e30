package io.sheepdog.it;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.sheepdog.sheep.cluster.corosync.CorosyncProcess;
import io.sheepdog.sheep.cluster.zookeeper.ZooKeeperServerProcess;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The server a cluster driver needs, started for a test: nothing for {@code local}, a standalone ZooKeeper server
 * process for {@code zookeeper}, a private corosync for {@code corosync}. {@link #spec} is what {@code sheep -c}
 * takes ({@code null}: the MiniCluster's own local directory); {@link #close} stops the server.
 */
final class DriverServer implements AutoCloseable {
    private final String spec;
    private final ZooKeeperServerProcess zk;
    private final CorosyncProcess corosync;
    private final FileLock corosyncLock;

    private DriverServer(String spec, ZooKeeperServerProcess zk, CorosyncProcess corosync, FileLock corosyncLock) {
        this.spec = spec;
        this.zk = zk;
        this.corosync = corosync;
        this.corosyncLock = corosyncLock;
    }

    /**
     * Starts the server of {@code driver} under {@code dir}; {@code zkOptions} is appended to a ZooKeeper spec (e.g.
     * {@code ",timeout=5000"}, or "" for the default session timeout). Skips the test when corosync cannot run here.
     */
    static DriverServer start(String driver, Path dir, String zkOptions) throws Exception {
        switch (driver) {
            case "zookeeper" -> {
                ZooKeeperServerProcess zk = new ZooKeeperServerProcess(dir.resolve("zk"));
                zk.start();
                return new DriverServer("zookeeper:" + zk.address() + zkOptions, zk, null, null);
            }
            case "corosync" -> {
                Tools.require("corosync");
                FileLock lock = CorosyncProcess.lock();
                if (CorosyncProcess.anyRunning()) lock.channel().close();
                assumeTrue(lock.channel().isOpen(), "another corosync runs on this machine");
                Files.createDirectories(dir.resolve("corosync"));
                CorosyncProcess corosync = new CorosyncProcess(dir.resolve("corosync"));
                corosync.start();
                return new DriverServer("corosync", null, corosync, lock);
            }
            default -> {
                return new DriverServer(null, null, null, null);
            }
        }
    }

    String spec() { return spec; }

    /** The corosync daemon (to kill and start it under a cluster); null for the other drivers. */
    CorosyncProcess corosync() { return corosync; }

    /** The ZooKeeper server (to stop and start it under a cluster); null for the other drivers. */
    ZooKeeperServerProcess zooKeeper() { return zk; }

    @Override
    public void close() throws Exception {
        if (zk != null) zk.close();
        if (corosync != null) corosync.close();
        if (corosyncLock != null) corosyncLock.channel().close();
    }
}
