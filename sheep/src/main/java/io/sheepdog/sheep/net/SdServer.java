package io.sheepdog.sheep.net;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.sheepdog.sheep.access.AccessPolicy;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.RequestProcessor;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import io.sheepdog.sheep.threads.PlatformFirstExecutor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The Sheepdog protocol listeners of a sheep: TCP on the node's port and the Unix socket {@code STORE_DIR/sock}. */
public final class SdServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SdServer.class);
    /** Flushes at the latest after this many replies even while more are queued (bounds the delay of the first). */
    private static final int FLUSH_AFTER = 64;
    private final EventLoopGroup boss;
    private final EventLoopGroup workers;
    private final boolean epoll = Epoll.isAvailable();
    private final List<Channel> channels = new ArrayList<>();
    private final RequestProcessor processor;
    private final Consumer<ClientInfo> onClose;
    private final AccessPolicy access;
    /**
     * Payloads and read replies in flight over all client connections, and apart those of requests from other sheep
     * (see {@link SdFrameDecoder#SdFrameDecoder(PayloadBudget, PayloadBudget)}): with the 96 MiB heap bin/sheep
     * gives, room for the NBD server's budget beside them.
     */
    private final PayloadBudget clientBudget = new PayloadBudget(Long.getLong("sheepdog.sdInFlightBytes", 32L << 20));
    /** The requests' threads: platform threads while few are in flight, virtual ones past that. */
    private final ExecutorService requests = new PlatformFirstExecutor("sd-req", PlatformFirstExecutor.PLATFORM_THREADS, 60_000);
    private final PayloadBudget peerBudget = new PayloadBudget(Long.getLong("sheepdog.peerInFlightBytes", 24L << 20));

    /** What requests between sheep may hold in flight (the I/O port shares it). */
    public PayloadBudget peerBudget() { return peerBudget; }

    public SdServer(RequestProcessor processor, Consumer<ClientInfo> onClose) {
        this(processor, onClose, null);
    }

    /** {@code access}: who is let in (null: everybody). */
    public SdServer(RequestProcessor processor, Consumer<ClientInfo> onClose, AccessPolicy access) {
        this.access = access;
        this.processor = processor;
        this.onClose = onClose;
        var factory = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
        boss = new MultiThreadIoEventLoopGroup(1, factory);
        workers = new MultiThreadIoEventLoopGroup(Math.max(2, Runtime.getRuntime().availableProcessors()), factory);
    }

    private ChannelInitializer<Channel> init() {
        return new ChannelInitializer<>() {
            @Override protected void initChannel(Channel ch) {
                // Replies are written from the requests' virtual threads, each with a flush; consolidating the flushes
                // lets the event loop send the replies that are ready in one write instead of one each.
                // A reply holds its budget until written: a client that reads none of them is closed (SlowReaderGuard).
                ch.pipeline().addLast(new SlowReaderGuard("Sheepdog port"), new FlushConsolidationHandler(FLUSH_AFTER, true),
                        new SdFrameDecoder(clientBudget, peerBudget), new SdServerHandler(processor, onClose, access, requests));
            }
        };
    }

    /** Binds TCP; throws with a one-line reason if the port is busy. */
    public void listenTcp(String bindAddr, int port) throws IOException {
        ServerBootstrap b = new ServerBootstrap().group(boss, workers)
                .channel(epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class)
                .option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(init());
        InetSocketAddress addr = bindAddr == null ? new InetSocketAddress(port) : new InetSocketAddress(bindAddr, port);
        try {
            channels.add(b.bind(addr).sync().channel());
        } catch (Exception e) {
            throw new IOException("cannot listen on " + (bindAddr == null ? "*" : bindAddr) + ":" + port + ": " + e.getMessage(), e);
        }
        LOG.info("listening on {}", addr);
    }

    /** Binds the Unix-domain socket (epoll transport only). */
    public void listenUnix(Path socket) throws IOException {
        if (!epoll) {
            LOG.warn("no epoll transport: not listening on {}", socket);
            return;
        }
        Files.deleteIfExists(socket);
        ServerBootstrap b = new ServerBootstrap().group(boss, workers).channel(EpollServerDomainSocketChannel.class).childHandler(init());
        try {
            channels.add(b.bind(new DomainSocketAddress(socket.toFile())).sync().channel());
        } catch (Exception e) {
            throw new IOException("cannot listen on " + socket + ": " + e.getMessage(), e);
        }
    }

    /** Stops accepting new connections (shutdown); existing ones finish. */
    public void stopListening() {
        for (Channel c : channels) c.close();
    }

    @Override
    public void close() {
        stopListening();
        boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        requests.shutdown();
        workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
}
