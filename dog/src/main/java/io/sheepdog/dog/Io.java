package io.sheepdog.dog;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * dog's standard streams. stdout is fully buffered and flushed at exit, like C stdio on a pipe, so the relative
 * order of stdout and stderr in a merged log matches the original tool (docs/dog.md §1.3); stderr is unbuffered.
 * Binary output ({@code vdi read}, {@code vdi backup}) goes through {@link #rawOut}, the same buffer.
 */
final class Io {
    final OutputStream rawOut;
    final PrintStream out;
    final PrintStream err;
    final InputStream in;
    final boolean stdoutTty;
    final boolean stderrTty;
    final boolean stdinTty;

    Io(OutputStream stdout, PrintStream stderr, InputStream stdin, boolean stdoutTty, boolean stderrTty, boolean stdinTty) {
        this.rawOut = stdout;
        this.out = new PrintStream(stdout, false, StandardCharsets.UTF_8);
        this.err = stderr;
        this.in = stdin;
        this.stdoutTty = stdoutTty;
        this.stderrTty = stderrTty;
        this.stdinTty = stdinTty;
    }

    /** The process's streams; stdout gets a 4 KiB buffer (what glibc uses on pipes and files) that is only flushed when full or at exit. */
    static Io system() {
        OutputStream stdout = new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 4096);
        PrintStream stderr = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        InputStream stdin = new FileInputStream(FileDescriptor.in);
        return new Io(stdout, stderr, stdin, isTty(1), isTty(2), isTty(0));
    }

    /** Whether file descriptor {@code fd} is a terminal (Linux: /proc/self/fd/N points at a tty device). */
    static boolean isTty(int fd) {
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty") || target.equals("/dev/console");
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return false;
        }
    }

    void flush() {
        out.flush();
        try {
            rawOut.flush();
        } catch (IOException e) {
            // stdout closed (e.g. `dog vdi read | head`): nothing left to do
        }
    }

    /** stdout is flushed before reading an answer from a terminal, as C stdio does for line-buffered streams. */
    void flushIfInteractive() {
        if (stdoutTty) flush();
    }
}
