package io.sheepdog.dog;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/** Runs dog in-process with captured streams. */
record DogRun(int code, byte[] stdout, String err) {

    String out() { return new String(stdout, StandardCharsets.UTF_8); }

    static DogRun run(int port, byte[] stdin, String... args) {
        Map<String, String> env = new HashMap<>();
        if (port > 0) env.put("SHEEPDOG_DOG_PORT", Integer.toString(port));
        return runEnv(env, stdin, args);
    }

    static DogRun run(int port, String... args) { return run(port, new byte[0], args); }

    static DogRun runEnv(Map<String, String> env, byte[] stdin, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Io io = new Io(out, new PrintStream(err, true, StandardCharsets.UTF_8), new ByteArrayInputStream(stdin), false, false, false);
        int rc = new Dog(io, env).run(args);
        io.flush();
        return new DogRun(rc, out.toByteArray(), err.toString(StandardCharsets.UTF_8));
    }

    @Override public String toString() { return "rc=" + code + "\n--- stdout\n" + out() + "--- stderr\n" + err; }
}
