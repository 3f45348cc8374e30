package io.sheepdog.sheep.nbd;

/**
 * One run of the {@code base:allocation} map: {@code length} bytes that are all allocated data, or all a hole.
 * {@code zero} means the bytes read as zeroes (a hole that reads as zeroes is {@code hole && zero}).
 */
public record NbdExtent(long length, boolean hole, boolean zero) {
    public NbdExtent {
        if (length <= 0) throw new IllegalArgumentException("extent length must be positive: " + length);
    }

    public static NbdExtent data(long length) { return new NbdExtent(length, false, false); }

    public static NbdExtent hole(long length) { return new NbdExtent(length, true, true); }

    /** The NBD_STATE_* bits of this extent. */
    int flags() { return (hole ? NbdProtocol.STATE_HOLE : 0) | (zero ? NbdProtocol.STATE_ZERO : 0); }
}
