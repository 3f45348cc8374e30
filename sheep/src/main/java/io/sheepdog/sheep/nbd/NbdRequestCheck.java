package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;

/**
 * Whether a transmission request may be served on this connection, from its header alone: its command is known and
 * negotiated, its flags are valid for it, its range lies in the export, its length within the server's limit, and
 * the export is writable if it writes. A refused request is answered with the error and never reaches the export.
 */
final class NbdRequestCheck {
    private final NbdSession session;
    private final long maxPayload;

    NbdRequestCheck(NbdSession session, long maxPayload) {
        this.session = session;
        this.maxPayload = maxPayload;
    }

    /** The request as it is, or refused with the NBD error a client expects and the reason. */
    NbdRequest check(NbdRequest r) {
        long size = session.export().size();
        boolean inRange = r.offset() >= 0 && r.length() <= size - r.offset();
        int allowed = CMD_FLAG_FUA;
        switch (r.type()) {
            case CMD_READ -> {
                if (session.structured()) allowed |= CMD_FLAG_DF;
                if (r.length() > maxPayload) return r.refused(EOVERFLOW, "read longer than " + maxPayload);
                if (!inRange) return r.refused(EINVAL, "read past the end of the export");
            }
            case CMD_WRITE -> {
                if (session.readOnly()) return r.refused(EPERM, "export is read-only");
                if (r.length() > maxPayload) return r.refused(EOVERFLOW, "write longer than " + maxPayload);
                if (!inRange) return r.refused(ENOSPC, "write past the end of the export");
            }
            case CMD_DISC, CMD_FLUSH -> { }
            case CMD_TRIM -> {
                if (session.readOnly()) return r.refused(EPERM, "export is read-only");
                if ((session.transmissionFlags() & TFLAG_SEND_TRIM) == 0) return r.refused(EINVAL, "trim not supported");
                if (!inRange) return r.refused(EINVAL, "trim past the end of the export");
            }
            case CMD_WRITE_ZEROES -> {
                allowed |= CMD_FLAG_NO_HOLE;
                if (session.readOnly()) return r.refused(EPERM, "export is read-only");
                if ((session.transmissionFlags() & TFLAG_SEND_WRITE_ZEROES) == 0) {
                    return r.refused(EINVAL, "write zeroes not supported");
                }
                if (!inRange) return r.refused(ENOSPC, "write zeroes past the end of the export");
            }
            case CMD_BLOCK_STATUS -> {
                allowed |= CMD_FLAG_REQ_ONE;
                if (!session.allocation()) return r.refused(EINVAL, "no metadata context negotiated");
                if (r.length() == 0) return r.refused(EINVAL, "block status of zero length");
                if (!inRange) return r.refused(EINVAL, "block status past the end of the export");
            }
            default -> {
                return r.refused(EINVAL, "unknown " + commandName(r.type()));
            }
        }
        if (r.type() != CMD_DISC && (r.flags() & ~allowed) != 0) {
            return r.refused(EINVAL, "flags 0x" + Integer.toHexString(r.flags()) + " not valid for " + commandName(r.type()));
        }
        return r;
    }
}
