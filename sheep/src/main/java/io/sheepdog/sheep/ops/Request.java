package io.sheepdog.sheep.ops;

import io.sheepdog.client.ObjectTransport;
import io.sheepdog.proto.SdRequest;
import java.nio.ByteBuffer;

/**
 * A decoded request, whichever front end it came from. {@code data} is the payload (WRITE) or empty; or, for an object
 * write of whole aligned blocks, the payload is {@code body} instead: an aligned direct buffer that the store writes to
 * the disk as it is and the gateway sends to the other copies from (one buffer from the socket to the disk): a
 * replica's write read by the I/O port, or a client's write from the NBD front end. Such a request has no
 * {@code data}: asking for it is a bug, said loudly, never an empty payload written ({@link #bytes()} copies).
 */
public record Request(SdRequest hdr, byte[] data, ClientInfo client, ByteBuffer body) {
    public static final byte[] NO_DATA = new byte[0];

    public Request(SdRequest hdr, byte[] data, ClientInfo client) {
        this(hdr, data, client, null);
    }

    /** A request whose payload is {@code body} (see above); the caller keeps it until the reply is built. */
    public static Request withBody(SdRequest hdr, ByteBuffer body, ClientInfo client) {
        return new Request(hdr, NO_DATA, client, body);
    }

    public static Request internal(SdRequest hdr, byte[] data) {
        return new Request(hdr, data == null ? NO_DATA : data, ClientInfo.INTERNAL);
    }

    @Override
    public byte[] data() {
        if (body != null) throw new IllegalStateException("the payload of " + hdr + " is in a direct buffer");
        return data;
    }

    /**
     * The payload as an array, wherever it is: {@code data}, or a copy of {@code body}'s remaining bytes (for the paths
     * that take no direct buffer: erasure coding, object tables, creations).
     */
    public byte[] bytes() {
        return body == null ? data : ObjectTransport.arrayOf(body);
    }

    /** The payload's length, wherever it is. */
    public int payloadLength() {
        return body != null ? body.remaining() : data.length;
    }
}
