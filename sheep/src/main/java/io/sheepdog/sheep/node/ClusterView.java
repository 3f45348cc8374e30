package io.sheepdog.sheep.node;

import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.VnodeRing;
import java.util.List;

/**
 * An immutable picture of the cluster as this node sees it at one moment: status, epoch, the members of that epoch
 * and the vnode ring built from them. Replaced as a whole on every change, so a request sees one consistent view.
 */
public record ClusterView(int status, int epoch, List<SdNode> epochNodes, List<SdNode> members, VnodeRing ring) {
    public static ClusterView initial() {
        return new ClusterView(Proto.STATUS_WAIT, 0, List.of(), List.of(), VnodeRing.build(List.of()));
    }
}
