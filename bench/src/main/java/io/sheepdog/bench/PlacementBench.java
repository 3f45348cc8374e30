package io.sheepdog.bench;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.VnodeRing;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Object placement: building the vnode ring (once per membership change) and looking up an object's replicas (on
 * every gateway request). {@code nodes} storage nodes, each in its own zone, 128 vnodes each.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class PlacementBench {
    @Param({"3", "100", "1000"})
    public int nodes;

    private List<SdNode> members;
    private VnodeRing ring;
    private long[] oids;
    private int next;

    @Setup
    public void setup() {
        members = new ArrayList<>(nodes);
        for (int i = 0; i < nodes; i++) {
            String host = "10." + (i >> 16 & 0xff) + "." + (i >> 8 & 0xff) + "." + (i & 0xff);
            members.add(new SdNode(NodeId.of(host, 7000), Proto.DEFAULT_VNODES, i, 100L << 30));
        }
        ring = VnodeRing.build(members);
        oids = new long[4096];
        for (int i = 0; i < oids.length; i++) oids[i] = Oids.dataOid(0x7c2b25 + (i & 7), i * 31L);
    }

    /** Ring construction for the whole membership. */
    @Benchmark
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public VnodeRing build() {
        return VnodeRing.build(members);
    }

    /** Replica lookup of a data object, 3 copies. */
    @Benchmark
    public List<SdNode> targets3() {
        long oid = oids[next++ & (oids.length - 1)];
        return ring.targets(oid, 3);
    }

    /** Replica lookup of a data object, 1 copy. */
    @Benchmark
    public List<SdNode> targets1() {
        long oid = oids[next++ & (oids.length - 1)];
        return ring.targets(oid, 1);
    }
}
