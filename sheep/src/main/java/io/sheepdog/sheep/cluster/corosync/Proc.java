package io.sheepdog.sheep.cluster.corosync;

/** A process in the CPG group: corosync node id and pid, the identity corosync itself uses. */
record Proc(int nodeid, int pid) {
    @Override public String toString() { return nodeid + "/" + pid; }
}
