package io.sheepdog.client;

import static org.junit.jupiter.api.Assertions.*;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** VDI enumeration: one READ_OBJ per VDI whose table fits in the first read, a second one for bigger tables. */
class VdiEnumeratorTest extends ModelSheepFixture {
    static final long MB = 1 << 20;
    /** data_vdi_id entries the first read holds. */
    static final int FIRST_ENTRIES = (VdiEnumerator.FIRST_READ - Inode.DATA_VDI_ID_OFFSET) / 4;


    /** Sets data_vdi_id[idx] of {@code vid}'s inode to {@code value} (what a write to that object would record). */
    void setEntry(int vid, int idx, int value) throws Exception {
        byte[] b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).array();
        client.writeObj(Oids.inodeOid(vid), Inode.dataVdiIdOffset(idx), b);
    }

    @Test
    void firstReadHoldsTheTableOfVdisUpToThreeGiB() {
        assertEquals(882, FIRST_ENTRIES);
    }

    @Test
    void smallVdisCostOneReadEachAndComeInVidOrder() throws Exception {
        List<Integer> vids = new ArrayList<>();
        for (int i = 0; i < 40; i++) vids.add(sheep.createVdi("small-" + i, 4 * MB + i * MB));
        int gone = sheep.createVdi("gone", 4 * MB);
        client.delVdi("gone", 0, "");
        setEntry(vids.get(3), 0, vids.get(3));
        setEntry(vids.get(5), 7, vids.get(5)); // 11 MiB: index 7 is its last object
        sheep.maxDelayMs = 5; // replies come back out of order
        int before = sheep.opCount(Opcodes.READ_OBJ);

        List<Inode> all = VdiEnumerator.list(client, true, null);

        assertEquals(40, sheep.opCount(Opcodes.READ_OBJ) - before, "one READ_OBJ per live VDI");
        List<Integer> expect = new ArrayList<>(vids);
        expect.sort(null);
        assertEquals(expect, all.stream().map(n -> n.vdiId).toList());
        assertFalse(all.stream().anyMatch(n -> n.vdiId == gone));
        for (Inode n : all) {
            assertEquals(n.objectCount(), n.dataVdiId.length, n.name);
            for (int i = 0; i < n.dataVdiId.length; i++) {
                boolean set = (n.vdiId == vids.get(3) && i == 0) || (n.vdiId == vids.get(5) && i == 7);
                assertEquals(set ? n.vdiId : 0, n.dataVdiId[i], n.name + " entry " + i);
            }
        }
    }

    @Test
    void aTableLargerThanTheFirstReadIsReadInTwoParts() throws Exception {
        int vid = sheep.createVdi("big", 8192 * MB); // 2048 objects of 4 MiB
        int[] set = {0, FIRST_ENTRIES - 1, FIRST_ENTRIES, 1500, 2047};
        for (int idx : set) setEntry(vid, idx, vid);
        int before = sheep.opCount(Opcodes.READ_OBJ);

        List<Inode> all = VdiEnumerator.list(client, true, null);

        assertEquals(2, sheep.opCount(Opcodes.READ_OBJ) - before, "the first read, then the rest of the table");
        assertEquals(1, all.size());
        Inode n = all.get(0);
        assertEquals(2048, n.dataVdiId.length);
        int nonZero = 0;
        for (int i = 0; i < n.dataVdiId.length; i++) if (n.dataVdiId[i] != 0) nonZero++;
        assertEquals(set.length, nonZero);
        for (int idx : set) assertEquals(vid, n.dataVid(idx), "entry " + idx);

        // without the table: the header only, one request
        before = sheep.opCount(Opcodes.READ_OBJ);
        Inode h = VdiEnumerator.list(client, false, null).get(0);
        assertEquals(1, sheep.opCount(Opcodes.READ_OBJ) - before);
        assertEquals("big", h.name);
        assertEquals(0, h.dataVid(0), "the table is not read");
    }

    @Test
    void anUnreadableInodeIsReportedAndTheOthersListed() throws Exception {
        int a = sheep.createVdi("a", 4 * MB);
        int b = sheep.createVdi("b", 4 * MB);
        int c = sheep.createVdi("c", 4 * MB);
        client.removeObj(Oids.inodeOid(b)); // in use in the bitmap, but its inode is gone
        List<Integer> failed = new ArrayList<>();

        List<Inode> all = VdiEnumerator.list(client, true, failed::add);

        assertEquals(List.of(b), failed);
        List<Integer> expect = new ArrayList<>(List.of(a, c));
        expect.sort(null);
        assertEquals(expect, all.stream().map(n -> n.vdiId).toList());
    }
}
