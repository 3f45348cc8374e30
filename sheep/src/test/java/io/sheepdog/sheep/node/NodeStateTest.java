package io.sheepdog.sheep.node;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** When a node serves writes while its cluster driver has lost its server. */
class NodeStateTest {

    private static NodeState state() {
        return new NodeState(new SdNode(NodeId.of("127.0.0.1", 7000), Proto.DEFAULT_VNODES, 0, 1L << 30));
    }

    @Test
    void writesGoOnOnlyWithinTheLeaseAndWhileEveryMemberAnswers() throws Exception {
        NodeState s = state();
        assertTrue(s.driverAllowsWrites(), "healthy");

        s.setDriverHealth(false, "lost the connection");
        assertFalse(s.driverAllowsWrites(), "unhealthy without a lease (corosync, the local driver)");

        s.setDriverHealth(false, "lost the connection", System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(300));
        assertTrue(s.driverAllowsWrites(), "within the lease");
        s.setEveryMemberHeard(false);
        assertFalse(s.driverAllowsWrites(), "a member that does not answer could evict this node meanwhile");
        s.setEveryMemberHeard(true);
        assertTrue(s.driverAllowsWrites());
        Thread.sleep(400);
        assertFalse(s.driverAllowsWrites(), "the lease ran out");

        s.setDriverHealth(false, "lost the connection", System.nanoTime() + TimeUnit.SECONDS.toNanos(30));
        s.setDriverHealth(false, "session expired; re-joining the cluster");
        assertFalse(s.driverAllowsWrites(), "a later report without a lease ends it");

        s.setDriverHealth(true, "back");
        assertTrue(s.driverAllowsWrites());
        s.setEveryMemberHeard(false);
        assertTrue(s.driverAllowsWrites(), "a healthy driver follows the membership itself: the failure detector evicts");
    }
}
