package io.sheepdog.dog;

/** Entry point of the {@code dog} command. */
public final class DogMain {
    private DogMain() {}

    public static void main(String[] args) {
        Io io = Io.system();
        int rc = new Dog(io, System.getenv()).run(args);
        io.flush();
        System.exit(rc);
    }
}
