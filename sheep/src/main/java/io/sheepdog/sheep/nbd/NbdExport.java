package io.sheepdog.sheep.nbd;

import io.netty.buffer.ByteBuf;
import java.io.IOException;
import java.util.List;

/**
 * One opened block device, as the NBD server sees it, for one client connection.
 *
 * <p><b>Concurrency.</b> The server runs every request on its own virtual thread, so many calls (up to the
 * server's in-flight limit, e.g. the 16 of fio's iodepth=16) run at the same time on one export, including calls
 * for overlapping ranges; the export must be thread-safe and may block. NBD gives no ordering between requests in
 * flight together, with one exception which the export must honour: {@link #flush()} makes durable every write
 * that had <em>returned</em> before flush() was called (the server only calls flush after those writes returned,
 * and coalesces concurrent flushes so that one flush() call can answer several FLUSH requests).
 *
 * <p><b>Errors.</b> Throw {@link NbdException} with an NBD error value (EIO, ENOSPC, EINVAL, EPERM, ...); any other
 * {@link IOException} or runtime exception is reported as EIO. Ranges passed in are already checked against
 * {@link #size()} by the server, and lengths against its maximum payload.
 */
public interface NbdExport extends AutoCloseable {

    /** Size in bytes; constant while the export is open. */
    long size();

    /** No writes, trims or write-zeroes: the server refuses them with EPERM and advertises READ_ONLY. */
    boolean readOnly();

    /**
     * Whether clients may open several connections to this export and rely on a flush on one covering writes
     * completed on any (NBD_FLAG_CAN_MULTI_CONN). Only say yes if all connections share one coherent cache.
     */
    default boolean canMultiConn() { return false; }

    /** Advertise NBD_CMD_TRIM. */
    default boolean supportsTrim() { return true; }

    /** Advertise NBD_CMD_WRITE_ZEROES. */
    default boolean supportsWriteZeroes() { return true; }

    /** Preferred I/O size for clients (NBD_INFO_BLOCK_SIZE); a power of two, at most the server's max payload. */
    default int preferredBlockSize() { return 4096; }

    /** Optional human-readable description (NBD_INFO_DESCRIPTION); null for none. */
    default String description() { return null; }

    /**
     * Appends exactly {@code length} bytes at {@code offset} to {@code dst} (its writerIndex must advance by
     * {@code length}; the buffer has room). {@code dst} belongs to the server: do not keep it.
     */
    void read(long offset, int length, ByteBuf dst) throws IOException;

    /**
     * Writes the readable bytes of {@code data} at {@code offset}. {@code data} is lent for the duration of the
     * call (it may be a composite of network buffers): read it, do not release it, {@code retain()} it to keep it.
     * With {@code fua} the data must be durable when the call returns.
     */
    void write(long offset, ByteBuf data, boolean fua) throws IOException;

    /** Makes every write that returned before this call durable. */
    void flush() throws IOException;

    /** Discards a range; afterwards it may read as anything until written (zeroes for Sheepdog). */
    void trim(long offset, long length, boolean fua) throws IOException;

    /**
     * Makes a range read as zeroes. With {@code noHole} false the export may deallocate it; with true it must stay
     * allocated.
     */
    void writeZeroes(long offset, long length, boolean noHole, boolean fua) throws IOException;

    /**
     * The allocation map for {@code [offset, offset+length)}: consecutive extents starting at {@code offset}. They
     * should cover the range (the server clips anything beyond it and merges neighbours of the same kind); at
     * least one extent is required.
     */
    List<NbdExtent> allocation(long offset, long length) throws IOException;

    /** Called once when the client's connection ends, after all its requests have finished. */
    @Override
    void close();
}
