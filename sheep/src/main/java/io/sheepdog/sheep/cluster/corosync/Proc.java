package io.sheepdog.sheep.cluster.corosync;

/** A process in the CPG group: corosync node id and pid, the identity corosync itself uses. */
record Proc(int nodeid, int pid) {

    /** The member key of this process in {@link io.sheepdog.sheep.cluster.common.Member}. */
    long key() { return ((long) nodeid << 32) | (pid & 0xffffffffL); }

    static Proc ofKey(long key) { return new Proc((int) (key >>> 32), (int) key); }

    @Override public String toString() { return nodeid + "/" + pid; }
}
