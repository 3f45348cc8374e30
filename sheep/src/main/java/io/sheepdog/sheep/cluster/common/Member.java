package io.sheepdog.sheep.cluster.common;

import io.sheepdog.proto.SdNode;

/**
 * A cluster member as a driver tracks it: a driver-specific identity {@code key} (a random incarnation id for
 * ZooKeeper, nodeid/pid for corosync) and the node info the daemon gave. The key, not the node id, identifies the
 * member: a sheep that restarts or re-joins with the same address is a new member.
 */
public record Member(long key, SdNode node) {}
