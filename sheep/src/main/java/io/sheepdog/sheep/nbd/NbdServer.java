package io.sheepdog.sheep.nbd;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.net.PayloadBudget;
import io.sheepdog.sheep.net.SlowReaderGuard;
import java.io.IOException;
import java.net.InetSocketAddress;
import io.sheepdog.sheep.threads.PlatformFirstExecutor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The NBD front door: serves the exports of an {@link NbdExportProvider} to QEMU, qemu-img, nbdinfo, nbdcopy, fio
 * and the Linux nbd client, as {@code nbd://host:port/NAME}.
 *
 * <p>Network I/O runs on a few event-loop threads (epoll where available); every request runs on its own virtual
 * thread, so a connection has many requests in flight and replies go out as they complete. The READ and WRITE
 * payloads in flight are bounded per connection and, over all connections, by one {@link PayloadBudget}.
 */
public final class NbdServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(NbdServer.class);

    private final NbdServerConfig config;
    private final RateLimitedLog refused = new RateLimitedLog(log);
    private final NbdExportProvider provider;
    private final AtomicLong unexpectedErrors = new AtomicLong();
    private final PayloadBudget budget;
    private EventLoopGroup group;
    private ExecutorService workers;
    private ChannelGroup channels;
    private Channel listener;
    private int port = -1;

    public NbdServer(NbdServerConfig config, NbdExportProvider provider) {
        this.config = config;
        this.provider = provider;
        this.budget = new PayloadBudget(config.serverInFlightBytes());
    }

    /** Starts listening, unless the config disables the server. Fails with a one-line reason (e.g. port in use). */
    @SuppressWarnings("deprecation") // RCVBUF_ALLOCATOR: deprecated in 4.2 without a replacement yet
    public synchronized void start() throws IOException {
        if (!config.enabled()) {
            log.info("NBD server disabled");
            return;
        }
        if (listener != null) throw new IllegalStateException("NBD server already started");
        boolean epoll = Epoll.isAvailable();
        IoHandlerFactory io = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
        Class<? extends ServerChannel> channelType = epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
        group = new MultiThreadIoEventLoopGroup(config.ioThreads(), new DefaultThreadFactory("nbd-loop", true), io);
        // platform threads while few requests are in flight (a write's fdatasync and its peers' replies wake them
        // directly), virtual ones past that
        workers = new PlatformFirstExecutor("nbd-req", PlatformFirstExecutor.PLATFORM_THREADS, 60_000);
        channels = new DefaultChannelGroup("nbd", GlobalEventExecutor.INSTANCE);
        ServerBootstrap b = new ServerBootstrap()
                .group(group)
                .channel(channelType)
                .option(ChannelOption.SO_BACKLOG, 128)
                .option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childOption(ChannelOption.SO_KEEPALIVE, true)
                // Large reads so a 1 MiB write arrives in few buffers (each becomes one payload component).
                .childOption(ChannelOption.RCVBUF_ALLOCATOR, new AdaptiveRecvByteBufAllocator(4096, 65536, 1 << 20))
                .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(4 << 20, 16 << 20))
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        if (!config.allow().allows(ch.remoteAddress())) {
                            refused.warn("nbd-allow", "NBD connection from {} refused: not in the allowed addresses ({})",
                                    ch.remoteAddress(), config.allow());
                            ch.close();
                            return;
                        }
                        channels.add(ch);
                        // a read's reply holds its budget until written: a client that reads none is closed
                        ch.pipeline().addLast("unread", new SlowReaderGuard("NBD"));
                        ch.pipeline().addLast("nbd", newConnectionHandler());
                    }
                });
        try {
            listener = b.bind(new InetSocketAddress(config.bindAddress(), config.port())).syncUninterruptibly().channel();
        } catch (Exception e) {
            shutdownResources();
            throw new IOException("cannot listen for NBD on " + config.bindAddress() + ":" + config.port() + ": "
                    + e.getMessage(), e);
        }
        port = ((InetSocketAddress) listener.localAddress()).getPort();
        log.info("NBD server listening on {}:{} ({}{}{}{})", config.bindAddress(), port, epoll ? "epoll" : "nio",
                config.readOnly() ? ", read-only" : "",
                config.tls() == null ? "" : config.tlsRequired() ? ", TLS required" : ", TLS offered",
                config.allow().allowsAll() ? "" : ", clients from " + config.allow());
    }

    /** The handler for one connection; package-private so tests can drive it in an EmbeddedChannel. */
    NbdNegotiationHandler newConnectionHandler() {
        return new NbdNegotiationHandler(config, provider, workers, unexpectedErrors, budget);
    }

    /** The bound port (useful with port 0), or -1 when not running. */
    public synchronized int port() { return port; }

    public synchronized boolean isRunning() { return listener != null; }

    /** READ and WRITE payload bytes in flight over all connections now (tests check it returns to 0). */
    public long inFlightBytes() { return budget.used(); }

    /** Internal errors caught (bugs, not client mistakes); tests assert it stays 0. */
    public long unexpectedErrors() { return unexpectedErrors.get(); }

    /** Stops listening, closes every connection, waits (bounded) for requests in flight, closes their exports. */
    @Override
    public synchronized void close() {
        if (listener == null) return;
        listener.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        listener = null;
        port = -1;
        shutdownResources();
        log.info("NBD server stopped");
    }

    private void shutdownResources() {
        if (channels != null) channels.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        if (workers != null) {
            workers.shutdown();
            try {
                if (!workers.awaitTermination(10, TimeUnit.SECONDS)) log.warn("NBD requests still running at shutdown");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (group != null) group.shutdownGracefully(0, 5, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
        group = null;
        workers = null;
        channels = null;
    }
}
