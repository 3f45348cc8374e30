package io.sheepdog.sheep.cluster;

/** A driver could not start or lost its server; the message is a one-line reason for the operator. */
public class ClusterDriverException extends Exception {
    public ClusterDriverException(String message) { super(message); }
    public ClusterDriverException(String message, Throwable cause) { super(message, cause); }
}
