package io.sheepdog.sheep.nbd;

import io.netty.buffer.ByteBuf;

/**
 * A transmission reply as the serving side builds it; {@link NbdReplyEncoder} turns it into bytes (simple or
 * structured, as the connection negotiated).
 */
sealed interface NbdReply {
    long handle();

    /** Success without data (WRITE, FLUSH, TRIM, WRITE_ZEROES). */
    record Done(long handle) implements NbdReply {}

    /** A failure; {@code message} goes to the client when structured replies were negotiated. */
    record Failed(long handle, int errno, String message) implements NbdReply {}

    /** A READ's data (owned by the reply until it is encoded), read at {@code offset}. */
    record Data(long handle, long offset, ByteBuf data) implements NbdReply {}

    /** BLOCK_STATUS extents of one meta context: {@code lengths[i]} bytes with {@code flags[i]}, for i below count. */
    record Extents(long handle, int contextId, long[] lengths, int[] flags, int count) implements NbdReply {}
}
