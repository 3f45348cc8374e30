package io.sheepdog.sheep.access;

/**
 * Who may do what on a sheep (README "Securing a cluster"): NBD over TLS with client certificates, the client
 * addresses let in on the Sheepdog and NBD ports, and the addresses that may change the cluster.
 *
 * @param nbdTls         credentials for NBD STARTTLS, or null (no TLS)
 * @param nbdTlsRequired with nbdTls: plain-text NBD clients are refused
 * @param clients        addresses let in on the Sheepdog port (cluster members always are) and the NBD port
 * @param admins         addresses whose cluster-changing requests (format, shutdown, node kill, recovery
 *                       control, reweight, VDI deletion, ...) are carried out; others get "access denied"
 */
public record AccessOptions(TlsCredentials nbdTls, boolean nbdTlsRequired, AddressAllowList clients,
                            AddressAllowList admins) {
    /** As the original: no TLS, everybody in, everybody may change the cluster. */
    public static final AccessOptions OPEN = new AccessOptions(null, false, AddressAllowList.ALL, AddressAllowList.ALL);

    public AccessOptions {
        if (clients == null) clients = AddressAllowList.ALL;
        if (admins == null) admins = AddressAllowList.ALL;
        if (nbdTlsRequired && nbdTls == null) throw new IllegalArgumentException("TLS required without credentials");
    }

    /** Whether peers must be cluster members: on as soon as client addresses are restricted. */
    public boolean restricted() { return !clients.allowsAll() || !admins.allowsAll(); }
}
