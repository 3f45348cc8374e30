package io.sheepdog.dog;

import java.util.ArrayList;
import java.util.List;

/** Entry point of the {@code dog} command. */
public final class DogMain {
    private DogMain() {}

    /**
     * The read-only commands a training run of the launcher's AOT cache also runs (see bin/dog), so that the cache
     * holds the classes of each of them, whichever one the user ran first.
     */
    static final List<List<String>> TRAINING_COMMANDS = List.of(
            List.of("node", "list"), List.of("cluster", "info"), List.of("vdi", "list"), List.of("node", "info"),
            List.of("vm", "list"));

    public static void main(String[] args) {
        Io io = Io.system();
        int rc = new Dog(io, System.getenv()).run(args);
        if (Boolean.getBoolean("dog.aot.training") && rc == ExitCodes.SUCCESS) {
            // output of the extra commands is of no interest (the launcher discards the training run's output)
            for (List<String> cmd : TRAINING_COMMANDS) new Dog(io, System.getenv()).run(trainingArgs(cmd, args));
        }
        io.flush();
        System.err.flush();
        // halt: everything is flushed and there is nothing to clean up; System.exit would also start the
        // platform logger to log the exit, which costs a noticeable part of a short command's run time
        Runtime.getRuntime().halt(rc);
    }

    /** {@code cmd} with the address and port options of {@code userArgs} (-a/-p, long forms, attached values). */
    static String[] trainingArgs(List<String> cmd, String[] userArgs) {
        List<String> out = new ArrayList<>(cmd);
        for (int i = 2; i < userArgs.length; i++) {
            String a = userArgs[i];
            if ((a.equals("-a") || a.equals("-p") || a.equals("--address") || a.equals("--port")) && i + 1 < userArgs.length) {
                out.add(a);
                out.add(userArgs[++i]);
            } else if (a.startsWith("--address=") || a.startsWith("--port=")
                    || (a.length() > 2 && (a.startsWith("-a") || a.startsWith("-p")))) {
                out.add(a);
            }
        }
        return out.toArray(String[]::new);
    }
}
