package io.sheepdog.dog;

/**
 * Ends the command with an exit status, optionally after printing one line to stderr. Thrown instead of calling
 * System.exit so that dog can run in-process (tests) and stdout is always flushed on the way out.
 */
final class DogExit extends RuntimeException {
    final int code;
    final String line;
    final boolean usage;

    DogExit(int code, String line) { this(code, line, false); }

    private DogExit(int code, String line, boolean usage) {
        super(line, null, false, false);
        this.code = code;
        this.line = line;
        this.usage = usage;
    }

    /** A usage error: the optional line, then the subcommand's usage text, exit 64. */
    static DogExit usage(String line) { return new DogExit(ExitCodes.USAGE, line, true); }

    static DogExit failure(String line) { return new DogExit(ExitCodes.FAILURE, line); }

    static DogExit sysfail(String line) { return new DogExit(ExitCodes.SYSFAIL, line); }
}
