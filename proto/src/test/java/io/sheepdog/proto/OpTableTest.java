package io.sheepdog.proto;

import static io.sheepdog.proto.Opcodes.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The opcode table: its rules hold for every line, and the sets the daemon depends on are what they were. */
class OpTableTest {
    private static Set<Integer> where(java.util.function.Predicate<OpTable.Op> p) {
        Set<Integer> out = new TreeSet<>();
        for (int op = 0; op < 256; op++) {
            OpTable.Op o = OpTable.of(op);
            if (o != null && p.test(o)) out.add(op);
        }
        return out;
    }

    @Test
    void everyLineKeepsTheRules() {
        for (int op = 0; op < 256; op++) {
            OpTable.Op o = OpTable.of(op);
            if (o == null) continue;
            assertEquals(op, o.code());
            assertNotNull(Opcodes.name(op), "a named opcode: " + op);
            if (o.workPhase()) assertEquals(OpTable.Kind.CLUSTER, o.kind(), o.name() + ": only cluster operations have a work phase");
            if (o.kind() == OpTable.Kind.PEER) {
                assertEquals(OpTable.Sender.MEMBER, o.sender(), o.name() + ": only members send peer I/O");
                assertTrue(o.betweenSheep(), o.name());
                assertTrue(Opcodes.isInternal(op), o.name());
            }
        }
        assertNull(OpTable.of(0x7f));
        assertNull(OpTable.of(-1));
        assertNull(OpTable.of(300));
    }

    @Test
    void theSetsTheDaemonDependsOn() {
        assertEquals(Set.of(CREATE_AND_WRITE_OBJ, READ_OBJ, WRITE_OBJ, REMOVE_OBJ), where(o -> o.kind() == OpTable.Kind.GATEWAY));
        assertEquals(Set.of(CREATE_AND_WRITE_PEER, READ_PEER, WRITE_PEER, REMOVE_PEER), where(o -> o.kind() == OpTable.Kind.PEER));
        assertEquals(Set.of(NEW_VDI, DEL_VDI, LOCK_VDI, RELEASE_VDI, GET_VDI_ATTR, MAKE_FS, SHUTDOWN, FORCE_RECOVER,
                ENABLE_RECOVER, DISABLE_RECOVER, ALTER_CLUSTER_COPY, ALTER_VDI_COPY, CLEANUP, REWEIGHT),
                where(o -> o.kind() == OpTable.Kind.CLUSTER));
        assertEquals(Set.of(NEW_VDI, DEL_VDI, LOCK_VDI, GET_VDI_ATTR, FORCE_RECOVER), where(OpTable.Op::workPhase));
        assertEquals(Set.of(MAKE_FS, SHUTDOWN, KILL_NODE, FORCE_RECOVER, ENABLE_RECOVER, DISABLE_RECOVER, REWEIGHT,
                ALTER_CLUSTER_COPY, ALTER_VDI_COPY, DEL_VDI, CLEANUP, SET_RECOVERY, SET_LOGLEVEL, MD_PLUG, MD_UNPLUG,
                FLUSH_DEL_CACHE), where(o -> o.sender() == OpTable.Sender.ADMIN));
        assertEquals(Set.of(CREATE_AND_WRITE_PEER, READ_PEER, WRITE_PEER, REMOVE_PEER, COMPLETE_RECOVERY, HANDOVER_VDI,
                FENCE_VDI), where(o -> o.sender() == OpTable.Sender.MEMBER));
        assertEquals(Set.of(WRITE_OBJ, CREATE_AND_WRITE_OBJ, WRITE_PEER, CREATE_AND_WRITE_PEER, OIDS_EXIST), where(OpTable.Op::bigPayload));
        assertEquals(Set.of(CREATE_AND_WRITE_PEER, READ_PEER, WRITE_PEER, REMOVE_PEER, GET_OBJ_LIST, GET_EPOCH, OIDS_EXIST,
                GET_HASH, GET_LOGLEVEL, FLUSH_PEER, DECREF_PEER), where(OpTable.Op::betweenSheep));
        // dog looks at a node that is not running (waiting for a format or its nodes) with these
        Set<Integer> force = where(OpTable.Op::force);
        for (int op : new int[] {READ_VDIS, GET_NODE_LIST, MAKE_FS, SHUTDOWN, STAT_CLUSTER, CLUSTER_INFO, STAT_SHEEP,
                GET_EPOCH, MD_INFO, GET_VM_LIST, STAT_RECOVERY, KILL_NODE}) {
            assertTrue(force.contains(op), Opcodes.name(op));
        }
        for (int op : new int[] {NEW_VDI, DEL_VDI, LOCK_VDI, READ_OBJ, WRITE_OBJ, GET_VDI_INFO, SET_VNODES, MD_PLUG}) {
            assertFalse(force.contains(op), Opcodes.name(op));
        }
        assertTrue(Opcodes.isPeerIo(WRITE_PEER));
        assertFalse(Opcodes.isPeerIo(WRITE_OBJ));
    }
}
