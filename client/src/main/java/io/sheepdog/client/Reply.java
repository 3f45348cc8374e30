package io.sheepdog.client;

import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;

/** A response header and its payload ({@code header.dataLength()} bytes). */
public record Reply(SdResponse header, byte[] data) {
    public int result() { return header.result(); }
    public boolean ok() { return header.result() == SdResult.SUCCESS; }
}
