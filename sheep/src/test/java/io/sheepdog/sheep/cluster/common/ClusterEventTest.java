package io.sheepdog.sheep.cluster.common;

import static io.sheepdog.sheep.cluster.common.RecordingListener.node;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.cluster.common.ClusterEvent.Kind;
import io.sheepdog.sheep.cluster.common.ClusterEvent.Pending;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClusterEventTest {

    @Test
    void roundTripWithEveryField() {
        List<Member> members = List.of(new Member(1, node(7000)), new Member(-2, node(7001)));
        ClusterEvent e = new ClusterEvent(Kind.ACCEPT, 42, node(7002), 7, new byte[] {1, 2, 3}, members,
                List.of(new BlockFifo.Block(1, 9), new BlockFifo.Block(-2, 10)),
                List.of(new Pending(new Member(42, node(7002)), new byte[] {4})));
        ClusterEvent d = ClusterEvent.decode(e.encode());
        assertEquals(Kind.ACCEPT, d.kind());
        assertEquals(42, d.senderKey());
        assertEquals(node(7002), d.sender());
        assertEquals(7, d.arg());
        assertArrayEquals(new byte[] {1, 2, 3}, d.message());
        assertEquals(members, d.members());
        assertEquals(e.blocks(), d.blocks());
        assertEquals(1, d.pending().size());
        assertArrayEquals(new byte[] {4}, d.pending().getFirst().message());
    }

    @Test
    void largeEventsAreDeflated() {
        byte[] info = new byte[491_568];
        info[100] = 9;
        List<Member> many = new ArrayList<>();
        for (int i = 0; i < 1000; i++) many.add(new Member(i, node(7000 + i)));
        ClusterEvent e = new ClusterEvent(Kind.ACCEPT, 1, node(7000), 0, info, many, null, null);
        byte[] wire = e.encode();
        assertTrue(wire.length < 200_000, "deflated to " + wire.length);
        ClusterEvent d = ClusterEvent.decode(wire);
        assertArrayEquals(info, d.message());
        assertEquals(many, d.members());
    }

    @Test
    void garbageIsRejected() {
        byte[] good = ClusterEvent.simple(Kind.NOTIFY, new Member(1, node(7000)), 0, new byte[] {5}).encode();
        assertThrows(IllegalArgumentException.class, () -> ClusterEvent.decode(new byte[] {1, 2}));
        assertThrows(IllegalArgumentException.class, () -> ClusterEvent.decode(Arrays.copyOf(good, good.length - 3)));
        byte[] badCount = good.clone();
        badCount[4 + 8 + 80 + 8] = (byte) 0xff; // message length
        assertThrows(IllegalArgumentException.class, () -> ClusterEvent.decode(badCount));
        byte[] deflated = new ClusterEvent(Kind.NOTIFY, 1, node(7000), 0, new byte[100_000], null, null, null).encode();
        byte[] cut = Arrays.copyOf(deflated, deflated.length / 2);
        assertThrows(IllegalArgumentException.class, () -> ClusterEvent.decode(cut));
    }
}
