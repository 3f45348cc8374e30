package io.sheepdog.sheep;

import io.sheepdog.sheep.nbd.NbdServer;
import io.sheepdog.sheep.nbd.NbdServerConfig;
import io.sheepdog.sheep.nbd.VdiExportProvider;
import java.io.IOException;

/** Starts the NBD front end of a sheep: every VDI of the cluster, served through this node's gateway. */
final class NbdSupport {
    private NbdSupport() {}

    static AutoCloseable start(Sheep sheep, String bindAddr, int port) throws IOException {
        NbdServerConfig cfg = NbdServerConfig.defaults().withPort(port);
        if (bindAddr != null) cfg = cfg.withBindAddress(bindAddr);
        var access = sheep.options().access();
        cfg = cfg.withTls(access.nbdTls(), access.nbdTlsRequired()).withAllow(access.clients());
        NbdServer server = new NbdServer(cfg, new VdiExportProvider(sheep.processor(), sheep.writerLocks(),
                sheep.options().strictVdiLock()));
        try {
            server.start();
        } catch (IOException e) {
            throw new IOException("cannot start the NBD server on port " + port + ": " + e.getMessage(), e);
        }
        return server;
    }
}
