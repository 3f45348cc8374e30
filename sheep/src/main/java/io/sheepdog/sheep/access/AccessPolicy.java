package io.sheepdog.sheep.access;

import io.sheepdog.proto.OpTable;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdNode;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * The decisions {@link AccessOptions} asks for on the Sheepdog port, made against the addresses of the current
 * cluster members: which connections are let in, who may send sheep-to-sheep requests, and who may change the
 * cluster. With open options (the default) everything is allowed, as in the original.
 */
public final class AccessPolicy {
    private final AccessOptions options;
    private final Supplier<List<SdNode>> members;

    public AccessPolicy(AccessOptions options, Supplier<List<SdNode>> members) {
        this.options = options;
        this.members = members;
    }

    /** Whether a connection from {@code addr} (16-byte wire form) is let in on the Sheepdog port. */
    public boolean letsIn(byte[] addr) {
        return options.clients().allowsAll() || options.clients().allows(AddressAllowList.inetOf(addr)) || isMember(addr);
    }

    /**
     * Null if a request with opcode {@code op} from {@code addr} may run, else the reason it may not: requests
     * that only sheep send each other need a member's address once access is restricted, and cluster-changing
     * requests need an admin address (a member's address is not enough: dog on a member's host is still a
     * client; the sheep themselves send cluster changes through the cluster driver, never over this port).
     */
    public String refusal(int op, byte[] addr) {
        if (!options.restricted()) return null;
        if (isPeerOnly(op)) return isMember(addr) ? null : "only cluster members may send " + Opcodes.name(op);
        if (isAdmin(op) && !options.admins().allows(AddressAllowList.inetOf(addr))) {
            return Opcodes.name(op) + " is for the addresses of sheep --admin-allow (" + options.admins() + ")";
        }
        return null;
    }

    private boolean isMember(byte[] addr) {
        for (SdNode n : members.get()) if (Arrays.equals(n.nid().addr(), addr)) return true;
        return false;
    }

    /** Object I/O between sheep and recovery's bookkeeping: what a client never needs ({@link OpTable}). */
    static boolean isPeerOnly(int op) { return OpTable.senderOf(op) == OpTable.Sender.MEMBER; }

    /** Requests that change or stop the cluster, or destroy data ({@link OpTable}). */
    static boolean isAdmin(int op) { return OpTable.senderOf(op) == OpTable.Sender.ADMIN; }
}
