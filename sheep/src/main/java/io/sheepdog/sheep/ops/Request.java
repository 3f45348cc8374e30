package io.sheepdog.sheep.ops;

import io.sheepdog.proto.SdRequest;

/** A decoded request, whichever front end it came from. {@code data} is the payload (WRITE) or empty. */
public record Request(SdRequest hdr, byte[] data, ClientInfo client) {
    public static final byte[] NO_DATA = new byte[0];

    public static Request internal(SdRequest hdr, byte[] data) {
        return new Request(hdr, data == null ? NO_DATA : data, ClientInfo.INTERNAL);
    }
}
