package io.sheepdog.sheep.store;

import java.io.IOException;

/** The object is not in this store. */
public class NoSuchObjectException extends IOException {
    public NoSuchObjectException(long oid) { super(String.format("no object %016x", oid)); }
}
