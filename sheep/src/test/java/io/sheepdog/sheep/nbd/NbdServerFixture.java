package io.sheepdog.sheep.nbd;

import java.io.IOException;

/** A real {@link NbdServer} on 127.0.0.1 and a free port, serving memory disks. */
final class NbdServerFixture implements AutoCloseable {
    final MemoryExportProvider provider = new MemoryExportProvider();
    final NbdServer server;

    NbdServerFixture(NbdServerConfig config) {
        server = new NbdServer(config, provider);
    }

    NbdServerFixture() {
        this(NbdServerConfig.defaults().withBindAddress("127.0.0.1").withPort(0).withIoThreads(2));
    }

    NbdServerFixture add(MemoryDisk d) {
        provider.add(d);
        return this;
    }

    NbdServerFixture start() throws IOException {
        server.start();
        return this;
    }

    int port() { return server.port(); }

    String uri(String export) { return "nbd://127.0.0.1:" + port() + "/" + export; }

    @Override
    public void close() {
        server.close();
        if (server.unexpectedErrors() != 0) throw new AssertionError(server.unexpectedErrors() + " internal errors in the NBD server");
    }
}
