package io.sheepdog.sheep.cluster.local;

import java.security.SecureRandom;

/**
 * One life of one member: a random id plus the process id. A sheep restarted on the same node id (address and
 * port) is a new incarnation, so the cluster can tell "the old process died" from "the new process joined".
 * Several drivers in one JVM share the pid but never the id.
 */
record Incarnation(long id, long pid) {
    private static final SecureRandom RANDOM = new SecureRandom();

    static Incarnation create() {
        long id;
        do {
            id = RANDOM.nextLong();
        } while (id == 0);
        return new Incarnation(id, ProcessHandle.current().pid());
    }

    /** Name of this incarnation's member file: {@code <pid>-<id in hex>}. */
    String fileStem() { return pid + "-" + Long.toHexString(id); }

    @Override public String toString() { return "pid " + pid + "/" + Long.toHexString(id); }
}
