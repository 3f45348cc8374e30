package io.sheepdog.dog;

/** Entry point of the {@code dog} command. */
public final class DogMain {
    private DogMain() {}

    public static void main(String[] args) {
        Io io = Io.system();
        int rc = new Dog(io, System.getenv()).run(args);
        io.flush();
        System.err.flush();
        // halt: everything is flushed and there is nothing to clean up; System.exit would also start the
        // platform logger to log the exit, which costs a noticeable part of a short command's run time
        Runtime.getRuntime().halt(rc);
    }
}
