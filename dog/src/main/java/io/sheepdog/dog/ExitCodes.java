package io.sheepdog.dog;

/** dog's exit statuses (docs/dog.md §1.4). */
final class ExitCodes {
    private ExitCodes() {}
    static final int SUCCESS = 0;
    static final int FAILURE = 1;
    /** The cluster or the host failed (network errors, daemon unreachable). */
    static final int SYSFAIL = 2;
    static final int EXISTS = 3;
    static final int FULL = 4;
    static final int MISSING = 5;
    static final int USAGE = 64;
}
