package io.sheepdog.sheep.nbd;

import io.sheepdog.sheep.access.AddressAllowList;
import io.sheepdog.sheep.access.TlsCredentials;
import io.sheepdog.sheep.net.PayloadBudget;
import java.time.Duration;

/**
 * Settings of the NBD front door.
 *
 * @param enabled             start the listener at all
 * @param bindAddress         address to listen on ("0.0.0.0", "127.0.0.1", "::")
 * @param port                TCP port; 0 picks a free one (see {@link NbdServer#port()})
 * @param readOnly            open every export read-only
 * @param maxPayload          largest READ/WRITE length accepted; longer requests get EOVERFLOW, and a write's
 *                            payload is discarded as it streams in, never buffered
 * @param maxInFlight         per connection: stop reading requests while this many are being served
 * @param maxInFlightBytes    per connection: stop reading while this many payload bytes are being served
 * @param serverInFlightBytes all connections together: READ and WRITE payload bytes in flight at once (see
 *                            {@link PayloadBudget}); it bounds what the NBD front end holds in memory
 * @param ioThreads           event-loop threads (network only; requests run on virtual threads)
 * @param handshakeTimeout    close connections that have not finished negotiation by then
 * @param tls                 credentials for NBD_OPT_STARTTLS, or null: STARTTLS is answered "unsupported"
 * @param tlsRequired         with {@code tls}: a client must switch to TLS before anything else (plain refused)
 * @param allow               client addresses let in; others are closed at once
 */
public record NbdServerConfig(boolean enabled, String bindAddress, int port, boolean readOnly, int maxPayload,
                              int maxInFlight, long maxInFlightBytes, long serverInFlightBytes, int ioThreads,
                              Duration handshakeTimeout, TlsCredentials tls, boolean tlsRequired,
                              AddressAllowList allow) {

    public static final int DEFAULT_PORT = 10809;
    public static final int DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
    /** Sized for the sheep's default heap (bin/sheep), which holds one copy of every payload in flight. */
    public static final long DEFAULT_SERVER_IN_FLIGHT_BYTES = 48L << 20;

    public NbdServerConfig {
        if (port < 0 || port > 65535) throw new IllegalArgumentException("NBD port out of range: " + port);
        if (maxPayload < 512 || Integer.bitCount(maxPayload) != 1)
            throw new IllegalArgumentException("NBD max payload must be a power of two >= 512: " + maxPayload);
        if (maxInFlight < 1) throw new IllegalArgumentException("NBD max in-flight must be positive");
        if (maxInFlightBytes < maxPayload) throw new IllegalArgumentException("NBD in-flight bytes below max payload");
        if (serverInFlightBytes < 1) throw new IllegalArgumentException("NBD server in-flight bytes must be positive");
        if (ioThreads < 1) throw new IllegalArgumentException("NBD io threads must be positive");
        if (bindAddress == null || bindAddress.isBlank()) throw new IllegalArgumentException("NBD bind address empty");
        if (tlsRequired && tls == null) throw new IllegalArgumentException("NBD TLS required without credentials");
        if (allow == null) allow = AddressAllowList.ALL;
    }

    /**
     * Enabled, all interfaces, port 10809, read-write, 32 MiB requests, 64 requests / 32 MiB in flight per connection
     * (enough for one request of the largest size) and 48 MiB over all connections.
     */
    public static NbdServerConfig defaults() {
        return new NbdServerConfig(true, "0.0.0.0", DEFAULT_PORT, false, DEFAULT_MAX_PAYLOAD, 64, 32L << 20,
                DEFAULT_SERVER_IN_FLIGHT_BYTES, Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors())),
                Duration.ofSeconds(30), null, false, AddressAllowList.ALL);
    }

    public NbdServerConfig withEnabled(boolean v) {
        return new NbdServerConfig(v, bindAddress, port, readOnly, maxPayload, maxInFlight, maxInFlightBytes,
                serverInFlightBytes, ioThreads, handshakeTimeout, tls, tlsRequired, allow);
    }

    public NbdServerConfig withBindAddress(String v) {
        return new NbdServerConfig(enabled, v, port, readOnly, maxPayload, maxInFlight, maxInFlightBytes,
                serverInFlightBytes, ioThreads, handshakeTimeout, tls, tlsRequired, allow);
    }

    public NbdServerConfig withPort(int v) {
        return new NbdServerConfig(enabled, bindAddress, v, readOnly, maxPayload, maxInFlight, maxInFlightBytes,
                serverInFlightBytes, ioThreads, handshakeTimeout, tls, tlsRequired, allow);
    }

    public NbdServerConfig withReadOnly(boolean v) {
        return new NbdServerConfig(enabled, bindAddress, port, v, maxPayload, maxInFlight, maxInFlightBytes,
                serverInFlightBytes, ioThreads, handshakeTimeout, tls, tlsRequired, allow);
    }

    public NbdServerConfig withMaxPayload(int v) {
        return new NbdServerConfig(enabled, bindAddress, port, readOnly, v, maxInFlight, Math.max(maxInFlightBytes, v),
                serverInFlightBytes, ioThreads, handshakeTimeout, tls, tlsRequired, allow);
    }

    public NbdServerConfig withMaxInFlight(int requests, long bytes) {
        return new NbdServerConfig(enabled, bindAddress, port, readOnly, maxPayload, requests, bytes,
                serverInFlightBytes, ioThreads, handshakeTimeout, tls, tlsRequired, allow);
    }

    public NbdServerConfig withServerInFlightBytes(long v) {
        return new NbdServerConfig(enabled, bindAddress, port, readOnly, maxPayload, maxInFlight, maxInFlightBytes,
                v, ioThreads, handshakeTimeout, tls, tlsRequired, allow);
    }

    public NbdServerConfig withIoThreads(int v) {
        return new NbdServerConfig(enabled, bindAddress, port, readOnly, maxPayload, maxInFlight, maxInFlightBytes,
                serverInFlightBytes, v, handshakeTimeout, tls, tlsRequired, allow);
    }

    public NbdServerConfig withHandshakeTimeout(Duration v) {
        return new NbdServerConfig(enabled, bindAddress, port, readOnly, maxPayload, maxInFlight, maxInFlightBytes,
                serverInFlightBytes, ioThreads, v, tls, tlsRequired, allow);
    }

    /** TLS through STARTTLS with {@code creds} (null: none); {@code required}: plain clients are refused. */
    public NbdServerConfig withTls(TlsCredentials creds, boolean required) {
        return new NbdServerConfig(enabled, bindAddress, port, readOnly, maxPayload, maxInFlight, maxInFlightBytes,
                serverInFlightBytes, ioThreads, handshakeTimeout, creds, required, allow);
    }

    public NbdServerConfig withAllow(AddressAllowList v) {
        return new NbdServerConfig(enabled, bindAddress, port, readOnly, maxPayload, maxInFlight, maxInFlightBytes,
                serverInFlightBytes, ioThreads, handshakeTimeout, tls, tlsRequired, v);
    }
}
