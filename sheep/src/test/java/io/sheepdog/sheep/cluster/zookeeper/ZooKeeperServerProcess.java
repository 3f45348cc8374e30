package io.sheepdog.sheep.cluster.zookeeper;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A standalone ZooKeeper server for tests: ZooKeeperServerMain from the ZooKeeper jar in a child JVM, with a
 * generated zoo.cfg on a free port under {@code dir}. Kill and restart keep the port and the data.
 */
public final class ZooKeeperServerProcess implements AutoCloseable {
    private final Path dir;
    private Process server;
    private int port;

    public ZooKeeperServerProcess(Path dir) { this.dir = dir; }

    public int port() { return port; }

    /** Where clients reach it: loopback unless {@link #listenOnAllAddresses} was called before the first start. */
    private String host = "127.0.0.1";

    /** Listens on every address of this host (test hosts in network namespaces reach it), advertised as {@code host}. */
    public ZooKeeperServerProcess listenOnAllAddresses(String host) {
        this.host = host;
        return this;
    }

    /** {@code HOST:PORT}, for the driver spec. */
    public String address() { return host + ":" + port; }

    public synchronized void start() throws Exception {
        if (port == 0) {
            port = io.sheepdog.sheep.TestPorts.free();
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("zoo.cfg"), String.join("\n",
                    "tickTime=1000",
                    "dataDir=" + dir.resolve("data"),
                    "clientPort=" + port,
                    "clientPortAddress=" + (host.equals("127.0.0.1") ? "127.0.0.1" : "0.0.0.0"),
                    "admin.enableServer=false",
                    "maxClientCnxns=200", ""));
            Files.writeString(dir.resolve("logback.xml"), "<configuration><appender name=\"F\" "
                    + "class=\"ch.qos.logback.core.FileAppender\"><file>" + dir.resolve("zookeeper.log")
                    + "</file><encoder><pattern>%d %-5level %logger{20} - %msg%n</pattern></encoder></appender>"
                    + "<root level=\"WARN\"><appender-ref ref=\"F\"/></root></configuration>");
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        server = new ProcessBuilder(java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp",
                System.getProperty("java.class.path"), "-Dzookeeper.admin.enableServer=false",
                "-Dlogback.configurationFile=" + dir.resolve("logback.xml"),
                "org.apache.zookeeper.server.ZooKeeperServerMain", dir.resolve("zoo.cfg").toString())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("zookeeper.out").toFile()))
                .start();
        long deadline = System.currentTimeMillis() + 30_000;
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException e) {
                if (!server.isAlive()) throw new IllegalStateException("ZooKeeper exited: " + Files.readString(dir.resolve("zookeeper.out")));
                if (System.currentTimeMillis() > deadline) throw new IllegalStateException("ZooKeeper did not start in 30 s");
                Thread.sleep(50);
            }
        }
    }

    /** kill -9 of the server process. */
    public synchronized void kill() throws InterruptedException {
        if (server == null) return;
        server.destroyForcibly();
        if (!server.waitFor(10, TimeUnit.SECONDS)) throw new IllegalStateException("ZooKeeper did not die");
    }

    @Override
    public synchronized void close() throws InterruptedException {
        kill();
    }
}
