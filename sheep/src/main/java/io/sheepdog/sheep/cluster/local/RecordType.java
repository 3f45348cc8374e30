package io.sheepdog.sheep.cluster.local;

/** Kinds of entries in the shared event log; the code is the byte stored in the file. */
enum RecordType {
    /** A process asks to join; resolved later by an ACCEPT or REFUSE that refers to it. */
    JOIN(1),
    /** The handler's answer to a JOIN: takes effect at the JOIN's position in the order. */
    ACCEPT(2),
    REFUSE(3),
    /** A member left cleanly (sender == subject) or was found dead by the sender. */
    LEAVE(4),
    NOTIFY(5),
    BLOCK(6),
    /** Releases the sender's block and carries a message delivered like a NOTIFY. */
    UNBLOCK(7),
    UPDATE_NODE(8);

    final int code;

    RecordType(int code) { this.code = code; }

    static RecordType of(int code) {
        for (RecordType t : values()) if (t.code == code) return t;
        return null;
    }
}
