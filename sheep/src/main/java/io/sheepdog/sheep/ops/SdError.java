package io.sheepdog.sheep.ops;

import io.sheepdog.proto.SdResult;

/** An operation failed with a protocol result code; the front end turns it into that result. */
public class SdError extends Exception {
    private final int result;

    public SdError(int result) { this(result, SdResult.message(result)); }

    public SdError(int result, String detail) {
        super(detail, null, false, false);
        this.result = result;
    }

    public int result() { return result; }
}
