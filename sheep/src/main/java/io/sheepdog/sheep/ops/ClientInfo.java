package io.sheepdog.sheep.ops;

import io.sheepdog.proto.NodeId;

/**
 * Who sent a request: the client's address and port and the connection it came on. VDI locks are owned by a
 * connection, so that a client that goes away releases them.
 */
public record ClientInfo(byte[] addr, int port, long connectionId) {
    /** Requests that the daemon makes to itself. */
    public static final ClientInfo INTERNAL = new ClientInfo(new byte[16], 0, 0);

    public String display() { return NodeId.hostOf(addr) + ":" + port; }
}
