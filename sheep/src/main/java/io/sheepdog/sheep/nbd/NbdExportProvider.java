package io.sheepdog.sheep.nbd;

import java.util.List;

/**
 * The set of block devices the NBD server offers, by name. Methods are called from virtual threads (never from a
 * network event loop), so they may block, e.g. to look a VDI up in the cluster.
 */
public interface NbdExportProvider {

    /**
     * Opens {@code exportName} for one client connection; the server calls {@link NbdExport#close()} when the
     * connection ends. Throw {@link NbdException#unknownExport} for an unknown name, {@link NbdException#refused}
     * (with a message saying why, e.g. "VDI 'x' is locked by another writer") when it may not be opened now.
     *
     * @param readOnlyRequested the server is configured read-only: open without taking a writer lock and return an
     *                          export whose {@link NbdExport#readOnly()} is true
     */
    NbdExport open(String exportName, boolean readOnlyRequested) throws NbdException;

    /**
     * Opens {@code exportName} only to describe it (NBD_OPT_INFO, used by {@code nbdinfo}): the server reads
     * size, flags and description and closes it at once, without I/O. Override to avoid taking a writer lock just
     * for that (a VDI that qemu has open should still be describable); the flags should match what {@link #open}
     * would give.
     */
    default NbdExport openForInfo(String exportName, boolean readOnlyRequested) throws NbdException {
        return open(exportName, readOnlyRequested);
    }

    /** Names shown to NBD_OPT_LIST (e.g. {@code nbdinfo --list}). */
    List<String> list();

    /** Like {@link #open(String, boolean)}, for the client at {@code peer} (for locks and {@code dog vm list}). */
    default NbdExport open(String exportName, boolean readOnlyRequested, String peer) throws NbdException {
        return open(exportName, readOnlyRequested);
    }

    /** Whether {@code exportName} exists, for meta-context negotiation; override when {@link #list()} is costly. */
    default boolean exists(String exportName) { return list().contains(exportName); }

    /** Optional human-readable description shown by NBD_OPT_LIST; null for none. */
    default String description(String exportName) { return null; }
}
