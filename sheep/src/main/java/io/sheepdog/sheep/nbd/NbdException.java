package io.sheepdog.sheep.nbd;

import java.io.IOException;

/**
 * A failure an export or provider reports to the NBD client. During negotiation {@link #optionReply()} is the
 * NBD_REP_ERR_* sent back (its message travels with it, so qemu and nbdinfo show it); during transmission
 * {@link #errno()} is the NBD error value of the reply. Any other {@link IOException} from an export becomes EIO.
 */
public class NbdException extends IOException {
    private final int errno;
    private final int optionReply;

    public NbdException(int errno, int optionReply, String message) {
        super(message);
        this.errno = errno;
        this.optionReply = optionReply;
    }

    public NbdException(int errno, int optionReply, String message, Throwable cause) {
        super(message, cause);
        this.errno = errno;
        this.optionReply = optionReply;
    }

    /** NBD error value for transmission replies (NbdProtocol.EIO, EINVAL, ...). */
    public int errno() { return errno; }

    /** NBD_REP_ERR_* value for negotiation replies. */
    public int optionReply() { return optionReply; }

    /** No export of that name: NBD_REP_ERR_UNKNOWN. */
    public static NbdException unknownExport(String name) {
        return new NbdException(NbdProtocol.EINVAL, NbdProtocol.REP_ERR_UNKNOWN, "no export named '" + name + "'");
    }

    /** The export exists but may not be opened now, e.g. another writer holds its lock: NBD_REP_ERR_POLICY. */
    public static NbdException refused(String message) {
        return new NbdException(NbdProtocol.EPERM, NbdProtocol.REP_ERR_POLICY, message);
    }

    /** The server is going away: NBD_REP_ERR_SHUTDOWN / ESHUTDOWN. */
    public static NbdException shutdown(String message) {
        return new NbdException(NbdProtocol.ESHUTDOWN, NbdProtocol.REP_ERR_SHUTDOWN, message);
    }

    public static NbdException io(String message) {
        return new NbdException(NbdProtocol.EIO, NbdProtocol.REP_ERR_PLATFORM, message);
    }

    public static NbdException io(String message, Throwable cause) {
        return new NbdException(NbdProtocol.EIO, NbdProtocol.REP_ERR_PLATFORM, message, cause);
    }

    public static NbdException noSpace(String message) {
        return new NbdException(NbdProtocol.ENOSPC, NbdProtocol.REP_ERR_PLATFORM, message);
    }

    public static NbdException invalid(String message) {
        return new NbdException(NbdProtocol.EINVAL, NbdProtocol.REP_ERR_INVALID, message);
    }

    public static NbdException notPermitted(String message) {
        return new NbdException(NbdProtocol.EPERM, NbdProtocol.REP_ERR_POLICY, message);
    }

    public static NbdException notSupported(String message) {
        return new NbdException(NbdProtocol.ENOTSUP, NbdProtocol.REP_ERR_UNSUP, message);
    }
}
