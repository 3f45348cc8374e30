package io.sheepdog.it;

import java.nio.charset.StandardCharsets;
import java.util.List;

/** What an external command did: its exit code and everything it wrote. */
public record CommandResult(List<String> command, int exitCode, byte[] stdoutBytes, String stderr) {

    public String stdout() { return new String(stdoutBytes, StandardCharsets.UTF_8); }

    public boolean ok() { return exitCode == 0; }

    /** Throws with the command, exit code and both outputs unless the command exited 0. */
    public CommandResult assertOk() {
        if (exitCode != 0) throw new AssertionError("command failed: " + this);
        return this;
    }

    @Override public String toString() {
        String out = stdoutBytes.length > 4096 ? "<" + stdoutBytes.length + " bytes>" : stdout();
        return String.join(" ", command) + " -> exit " + exitCode + "\n--- stdout:\n" + out + "\n--- stderr:\n" + stderr;
    }
}
