package io.sheepdog.sheep.nbd;

/**
 * What negotiation agreed on for the transmission phase of one connection.
 *
 * @param transmissionFlags NBD_FLAG_* sent to the client
 * @param structured        structured replies were negotiated
 * @param allocation        {@code base:allocation} was selected, so BLOCK_STATUS is allowed
 * @param flusher           coalesces this connection's FLUSH requests
 */
record NbdSession(String name, NbdExport export, boolean readOnly, int transmissionFlags, boolean structured,
                  boolean allocation, FlushCoalescer flusher) {

    NbdSession(String name, NbdExport export, boolean readOnly, int transmissionFlags, boolean structured,
               boolean allocation) {
        this(name, export, readOnly, transmissionFlags, structured, allocation, new FlushCoalescer(export));
    }
}
