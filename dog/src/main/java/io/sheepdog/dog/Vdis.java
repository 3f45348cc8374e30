package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** VDI helpers shared by the vdi commands: the -s option, lookups, reading inodes and deleting a VDI. */
final class Vdis {
    private Vdis() {}

    /** A snapshot selection: id > 0, or a tag, or neither (the working VDI). */
    record Snap(int id, String tag) {
        static final Snap WORKING = new Snap(0, "");
        boolean given() { return id != 0 || !tag.isEmpty(); }
    }

    /**
     * The -s option as the original parses it: leading digits make a snapshot id (0 is refused), anything else
     * is a tag.
     */
    static Snap snapOption(Ctx c) {
        String s = c.opt('s');
        return s == null ? Snap.WORKING : parseSnap(s);
    }

    /** A snapshot id or tag given on the command line (-s, or -F of backup). */
    static Snap parseSnap(String s) {
        int i = 0;
        long v = 0;
        while (i < s.length() && Character.isDigit(s.charAt(i)) && v < Integer.MAX_VALUE) v = v * 10 + (s.charAt(i++) - '0');
        if (i == 0) {
            // The inode keeps the tag in a NUL-terminated 256-byte field. The original truncated a longer tag
            // silently, so `snapshot -s <300 bytes>` made a snapshot under a tag nobody typed and no QEMU could
            // name; refuse it instead, like a VDI name that is too long.
            if (Strings.utf8Length(s) >= Proto.MAX_VDI_TAG_LEN) {
                throw DogExit.usage("Snapshot tag is too long (at most " + (Proto.MAX_VDI_TAG_LEN - 1) + " bytes)");
            }
            return new Snap(0, s);
        }
        if (v == 0) throw DogExit.failure("The snapshot id must be larger than zero");
        return new Snap((int) Math.min(v, Integer.MAX_VALUE), "");
    }

    static String openFailure(String name, Snap s, String why) {
        return "Failed to open VDI " + name + " (snapshot id: " + s.id() + " snapshot tag: " + s.tag() + "): " + why;
    }

    /** GET_VDI_INFO; a failure ends dog with the original's "Failed to open VDI" line. */
    static int lookup(Ctx c, String name, Snap s) throws IOException {
        try {
            return c.client().getVdiInfo(name, s.id(), s.tag()).vid();
        } catch (SheepdogException e) {
            throw DogExit.failure(openFailure(name, s, e.getMessage()));
        }
    }

    /** The inode of {@code vid}, with its data_vdi_id table if {@code table}. */
    static Inode read(Ctx c, int vid, boolean table) throws IOException {
        try {
            return table ? c.client().readInode(vid) : c.client().readInodeHeader(vid);
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to read an inode: " + e.getMessage());
        }
    }

    /**
     * Deletes a VDI the way dog does: zero its allocated data_vdi_id entries in batches (the gateway then drops or
     * dereferences the objects), then DEL_VDI. Returns the SdResult of the deletion ({@link SdResult#SUCCESS} when
     * {@code maxReclaim} stopped it early without deleting the inode).
     *
     * @param batch       indexes zeroed per inode write (-B, default 128)
     * @param intervalSec pause between batches (-I)
     * @param maxReclaim  stop after this many objects and keep the inode (-m), 0 = no limit
     */
    static int delete(Ctx c, String name, Snap s, int vid, int batch, long intervalSec, long maxReclaim) throws IOException {
        SheepClient cl = c.client();
        Inode n = cl.readInode(vid);
        long reclaimed = 0;
        boolean stopped = false;
        if (n.storePolicy == 0) {
            int count = n.objectCount();
            int i = 0;
            while (i < count) {
                int first = -1, last = -1, inBatch = 0;
                for (; i < count && inBatch < batch; i++) {
                    if (n.dataVdiId[i] == 0) continue;
                    if (maxReclaim > 0 && reclaimed + inBatch >= maxReclaim) { stopped = true; break; }
                    if (first < 0) first = i;
                    last = i;
                    inBatch++;
                }
                if (first >= 0) {
                    // everything between first and last that was not allocated is zero already
                    byte[] zeros = new byte[4 * (last - first + 1)];
                    cl.writeObj(Oids.inodeOid(vid), Inode.dataVdiIdOffset(first), zeros);
                    reclaimed += inBatch;
                    if (intervalSec > 0 && i < count) sleep(intervalSec);
                }
                if (stopped) break;
            }
        }
        if (stopped) return SdResult.SUCCESS;
        try {
            cl.delVdi(name, s.id(), s.tag());
            return SdResult.SUCCESS;
        } catch (SheepdogException e) {
            return e.result();
        }
    }

    private static void sleep(long sec) {
        try {
            Thread.sleep(sec * 1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Objects owned by the VDI itself and objects shared with (owned by) other VDIs. */
    static long[] usage(Inode n) {
        long own = 0, shared = 0;
        int count = Math.min(n.dataVdiId.length, n.blockSizeShift == 0 ? 0 : n.objectCount());
        for (int i = 0; i < count; i++) {
            int v = n.dataVdiId[i];
            if (v == n.vdiId) own++;
            else if (v != 0) shared++;
        }
        return new long[] {own, shared};
    }

    static byte[] le32(int v) {
        byte[] b = new byte[4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(0, v);
        return b;
    }
}
