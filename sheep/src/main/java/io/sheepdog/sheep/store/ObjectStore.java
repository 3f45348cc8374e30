package io.sheepdog.sheep.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * The local object store of one sheep: objects named by a {@link StoreKey} (an oid, or one strip of an erasure-coded
 * object), each a file. The {@code oid} parameters below are such keys. Every mutating call returns only once the
 * bytes are durable (unless the store was opened with sync off). Implementations must make creation atomic: a
 * crash leaves either no object or the whole new object.
 */
public interface ObjectStore extends AutoCloseable {

    /**
     * Checks that the store still works (its directory exists and a file in it can be written and synced) after an
     * I/O error: throws if it does not. A full disk is not a failure (a {@link NoSpaceException} is not thrown).
     */
    default void probe() throws IOException {}

    /**
     * How many of the store's disks failed so far (a store of several disks goes on without a failed one). A request
     * that found an object absent while this moved should wait for recovery and look again.
     */
    default long diskFailures() { return 0; }

    boolean exists(long oid);

    /** Reads {@code len} bytes at {@code offset}; bytes past the end of the file read as zeros. */
    byte[] read(long oid, long offset, int len) throws IOException;

    /** Writes into an existing object. @throws NoSuchObjectException if absent */
    default void write(long oid, long offset, byte[] data) throws IOException {
        write(oid, offset, data, true);
    }

    /**
     * Writes into an existing object; with {@code durable} false it returns before the bytes are synced (the next
     * durable write of the object syncs them too). @throws NoSuchObjectException if absent
     */
    void write(long oid, long offset, byte[] data, boolean durable) throws IOException;

    /**
     * As {@link #write(long, long, byte[], boolean)}, from {@code data}'s remaining bytes (its position is left as it
     * is). An aligned direct buffer from {@link AlignedBuffers} goes to the disk as it is where a direct write may
     * take it (the I/O port reads a replica's payload into one: one buffer from the socket to the disk); anything
     * else is copied into an array first.
     */
    default void write(long oid, long offset, ByteBuffer data, boolean durable) throws IOException {
        byte[] a = new byte[data.remaining()];
        data.duplicate().get(a);
        write(oid, offset, a, durable);
    }

    /**
     * Atomically creates {@code oid} of {@code size} bytes whose content is {@code base} (may be null: zeros) with
     * {@code data} overlaid at {@code offset}. Returns false if the object already exists (nothing changed).
     */
    default boolean create(long oid, long size, byte[] base, long offset, byte[] data) throws IOException {
        return create(oid, size, base, offset, data, null);
    }

    /**
     * As {@link #create(long, long, byte[], long, byte[])}, with {@code tail} (may be null) stored after the object's
     * {@code size} bytes in the same file, made in the same atomic step (a strip's version trailer).
     */
    boolean create(long oid, long size, byte[] base, long offset, byte[] data, byte[] tail) throws IOException;

    /** Removes the object; false if it was absent. */
    boolean remove(long oid) throws IOException;

    /** Every oid stored (not counting stale copies). */
    List<Long> list() throws IOException;

    /** SHA-1 of the whole object (size {@code size}, zero-extended). */
    byte[] sha1(long oid, long size) throws IOException;

    /** Moves the object to the stale area, tagged with {@code epoch}. */
    void moveToStale(long oid, int epoch) throws IOException;

    /** Reads a stale copy kept at {@code epoch} or, if {@code epoch} is 0, the newest stale copy; null if none. */
    byte[] readStale(long oid, int epoch, long offset, int len) throws IOException;

    /** SHA-1 of the newest stale copy of {@code oid} (size {@code size}, zero-extended); null if there is none. */
    byte[] staleSha1(long oid, long size) throws IOException;

    /**
     * Puts the newest stale copy of {@code oid} back in place as the object (a rename: no data is copied). False if
     * there is no stale copy or the object exists.
     */
    boolean restoreStale(long oid) throws IOException;

    /** A stale copy: its store key and the epoch it was kept at (the last epoch in which it was current). */
    record StaleCopy(long key, int epoch) {}

    /** Every stale copy, each with the epoch it was kept at (one key may be kept at several epochs). */
    List<StaleCopy> listStaleCopies() throws IOException;

    /** Drops every stale copy. */
    void purgeStale() throws IOException;

    /** Removes every object and stale copy (format). */
    void wipe() throws IOException;

    /** Bytes used by object files. */
    long usedBytes() throws IOException;

    /** Total and free bytes of the file system holding the store. */
    long totalBytes() throws IOException;

    long freeBytes() throws IOException;

    @Override void close();
}
