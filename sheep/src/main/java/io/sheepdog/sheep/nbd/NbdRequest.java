package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.CMD_FLAG_FUA;

import io.netty.buffer.ByteBuf;

/**
 * One transmission request as {@link NbdRequestDecoder} hands it on: its header, a WRITE's payload (retained slices
 * of the received buffers, released by whoever serves it), and either the room it holds or why it was refused.
 *
 * @param payload  a WRITE's data, or null
 * @param admitted payload bytes held in the server's budget and the connection's limit until the reply is built
 * @param errno    0, or the NBD error to answer with, unserved (the request failed {@link NbdRequestCheck})
 * @param refusal  why, for the structured error reply and the log
 */
record NbdRequest(int flags, int type, long handle, long offset, long length, ByteBuf payload, long admitted,
                  int errno, String refusal) {

    /** A request as its header says, before it is checked and admitted. */
    static NbdRequest header(int flags, int type, long handle, long offset, long length) {
        return new NbdRequest(flags, type, handle, offset, length, null, 0, 0, null);
    }

    NbdRequest admitted(long bytes, ByteBuf data) {
        return new NbdRequest(flags, type, handle, offset, length, data, bytes, 0, null);
    }

    NbdRequest refused(int error, String why) {
        return new NbdRequest(flags, type, handle, offset, length, null, 0, error, why);
    }

    boolean fua() { return (flags & CMD_FLAG_FUA) != 0; }

    boolean isRefused() { return errno != 0; }
}
