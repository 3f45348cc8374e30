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
 * Lists the VDIs of a cluster the way dog's parse_vdi does (DOG-CLI.md §1.7): READ_VDIS and READ_DEL_VDIS, then the
 * inode header of every VID that is in use and not deleted, in ascending VID order, skipping inodes with an empty
 * name. Headers are fetched with several requests in flight so that a cluster with thousands of VDIs lists quickly.
 */
public final class VdiEnumerator {
    /** Header plus the 8-byte B-tree header that follows it, what dog reads per VDI. */
    public static final int HEADER_READ = Inode.HEADER_SIZE + 8;
    private static final int WINDOW = 32;

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
        int next = 0;
        while (next < vids.size() || !window.isEmpty()) {
            while (next < vids.size() && window.size() < WINDOW) {
                int vid = vids.get(next++);
                window.add(readAsync(c, vid, withTable));
                windowVids.add(vid);
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

    private static CompletableFuture<Inode> readAsync(SheepClient c, int vid, boolean withTable) {
        long oid = Oids.inodeOid(vid);
        return c.readObjAsync(oid, 0, HEADER_READ, 0, 0, 0).thenCompose(h -> {
            Inode n = Inode.decode(java.util.Arrays.copyOf(h, Inode.HEADER_SIZE)); // the table is read below
            int count = n.blockSizeShift == 0 ? 0 : n.objectCount();
            if (!withTable || n.name.isEmpty() || count == 0 || n.storePolicy != 0) {
                return CompletableFuture.completedFuture(n);
            }
            return c.readObjAsync(oid, Inode.DATA_VDI_ID_OFFSET, 4 * count, 0, 0, 0).thenApply(t -> {
                ByteBuffer b = ByteBuffer.wrap(t).order(ByteOrder.LITTLE_ENDIAN);
                n.ensureCapacity(count);
                for (int i = 0; i < count; i++) n.dataVdiId[i] = b.getInt(4 * i);
                return n;
            });
        });
    }
}
