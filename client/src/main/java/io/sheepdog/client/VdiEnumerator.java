package io.sheepdog.client;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Proto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.IntConsumer;

/**
 * Lists the VDIs of a cluster the way dog's parse_vdi does (docs/dog.md §1.7): READ_VDIS and READ_DEL_VDIS, then the
 * inode header of every VID that is in use and not deleted, in ascending VID order, skipping inodes with an empty
 * name. Inodes are fetched with many requests in flight, one per VDI unless its table is large, so that a cluster
 * with thousands of VDIs lists quickly.
 */
public final class VdiEnumerator {
    /** Header plus the 8-byte B-tree header that follows it, what the original dog reads per VDI. */
    public static final int HEADER_READ = Inode.HEADER_SIZE + 8;
    /**
     * What is read of every inode when its table is wanted: the first two pages, the header and the first 882
     * data_vdi_id entries, the whole table of a VDI of up to 3.4 GiB with 4 MiB objects. So most VDIs cost one
     * request instead of two (header, then table), and only bigger ones a second for the rest of their table.
     */
    public static final int FIRST_READ = 8192;
    /** Requests in flight; the sheep stops reading a connection at 256, and the pool spreads them over several. */
    private static final int WINDOW = 128;
    /** Requests sent together when the window has room for them. */
    private static final int BATCH = 32;

    private VdiEnumerator() {}

    /**
     * @param withTable also read each inode's {@code data_vdi_id} entries (4 bytes per object of its size)
     * @param onError   called with the VID of every inode that could not be read (dog prints
     *                  {@code Failed to read inode header} and goes on); may be null
     */
    public static List<Inode> list(SheepClient c, boolean withTable, IntConsumer onError) throws IOException {
        VdiBitmap inuse = c.readVdis();
        VdiBitmap deleted = c.readDelVdis();
        List<Integer> vids = new ArrayList<>();
        for (int vid = inuse.nextSet(0); vid >= 0 && vid < Proto.NR_VDIS; vid = inuse.nextSet(vid + 1)) {
            if (!deleted.test(vid)) vids.add(vid);
        }
        return readAll(c, vids, withTable, onError);
    }

    /** Reads the inodes of {@code vids} (in the given order), skipping deleted (nameless) ones. */
    public static List<Inode> readAll(SheepClient c, List<Integer> vids, boolean withTable, IntConsumer onError)
            throws IOException {
        List<Inode> out = new ArrayList<>(vids.size());
        ArrayDeque<CompletableFuture<Inode>> window = new ArrayDeque<>();
        ArrayDeque<Integer> windowVids = new ArrayDeque<>();
        int first = withTable ? FIRST_READ : HEADER_READ;
        int next = 0;
        while (next < vids.size() || !window.isEmpty()) {
            // top the window up in batches, which go out in one write
            if (next < vids.size() && window.size() <= WINDOW - BATCH) {
                int n = Math.min(WINDOW - window.size(), vids.size() - next);
                long[] oids = new long[n];
                for (int i = 0; i < n; i++) oids[i] = Oids.inodeOid(vids.get(next + i));
                List<CompletableFuture<byte[]>> reads = c.readObjsAsync(oids, 0, first);
                for (int i = 0; i < n; i++) {
                    long oid = oids[i];
                    window.add(reads.get(i).thenCompose(b -> decode(c, oid, b, withTable)));
                    windowVids.add(vids.get(next + i));
                }
                next += n;
            }
            CompletableFuture<Inode> f = window.poll();
            int vid = windowVids.poll();
            Inode n;
            try {
                n = SheepClient.join(f);
            } catch (SheepdogException e) {
                if (onError != null) onError.accept(vid);
                continue;
            }
            if (n != null && !n.name.isEmpty()) out.add(n);
        }
        return out;
    }

    /**
     * Decodes the first read of an inode ({@link #FIRST_READ} bytes, or only {@link #HEADER_READ} when the table is
     * not wanted) and, when the VDI has more table entries than those bytes hold, reads the rest of its data_vdi_id
     * table with a second request.
     */
    private static CompletableFuture<Inode> decode(SheepClient c, long oid, byte[] b, boolean withTable) {
        // the header alone: what follows it is the table only for the plain store policy
        Inode n = Inode.decode(ByteBuffer.wrap(b, 0, Inode.HEADER_SIZE));
        int count = n.blockSizeShift == 0 ? 0 : n.objectCount();
        if (!withTable || n.name.isEmpty() || count == 0 || n.storePolicy != 0) {
            return CompletableFuture.completedFuture(n);
        }
        n.ensureCapacity(count);
        int have = Math.min(count, (b.length - Inode.DATA_VDI_ID_OFFSET) / 4);
        fillTable(n, b, Inode.DATA_VDI_ID_OFFSET, 0, have);
        if (have == count) return CompletableFuture.completedFuture(n);
        return c.readObjAsync(oid, Inode.dataVdiIdOffset(have), 4 * (count - have), 0, 0, 0).thenApply(t -> {
            fillTable(n, t, 0, have, count - have);
            return n;
        });
    }

    /** Copies {@code entries} little-endian data_vdi_id entries from {@code b} at {@code off} to index {@code from}. */
    private static void fillTable(Inode n, byte[] b, int off, int from, int entries) {
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < entries; i++) n.dataVdiId[from + i] = bb.getInt(off + 4 * i);
    }
}
