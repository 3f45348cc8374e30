package io.sheepdog.sheep.store;

import java.io.IOException;

/** The file system holding the store is full. */
public class NoSpaceException extends IOException {
    public NoSpaceException(String what, Throwable cause) { super("no space left for " + what, cause); }
}
