package io.sheepdog.client;

import io.sheepdog.proto.SdResult;
import java.io.IOException;

/**
 * A request was answered with a result other than SUCCESS. The message is the text dog prints for the code
 * ({@link SdResult#message(int)}), so callers can show it to a user as is.
 */
public final class SheepdogException extends IOException {
    private final int result;

    public SheepdogException(int result) {
        super(SdResult.message(result));
        this.result = result;
    }

    /** The {@link SdResult} code. */
    public int result() { return result; }

    /** Throws a {@link SheepdogException} unless {@code reply} is SUCCESS. */
    public static Reply check(Reply reply) throws SheepdogException {
        if (reply.result() != SdResult.SUCCESS) throw new SheepdogException(reply.result());
        return reply;
    }
}
