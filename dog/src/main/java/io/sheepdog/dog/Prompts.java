package io.sheepdog.dog;

/** The confirmation texts (docs/dog.md §1.6). */
final class Prompts {
    private Prompts() {}

    /** The five-line sheep picture with one line of text; the answer is typed after the last line. */
    static String sheep(String caution) {
        return "    __\n"
             + "   ()'`;\n"
             + "   /\\|`\n"
             + "  /  |   " + caution + "\n"
             + "(/_)_|_  Are you sure you want to continue? [yes/no]: ";
    }

    /** The sheep picture with two lines of text (redundancy changes). */
    static String sheep2(String line1, String line2) {
        return "    __\n"
             + "   ()'`;\n"
             + "   /\\|`  " + line1 + "\n"
             + "  /  |   " + line2 + "\n"
             + "(/_)_|_  Are you sure you want to continue? [yes/no]: ";
    }

    static final String FORCE_RECOVER =
            "Caution! Please try starting all the cluster nodes normally before\n"
            + "running this command.\n\n"
            + "The cluster may need to be force recovered if:\n"
            + "  - the master node fails to start because of epoch mismatch; or\n"
            + "  - some nodes fail to start after a cluster shutdown.\n\n"
            + "Are you sure you want to continue? [yes/no]: ";

    static final String ROLLBACK =
            "This operation discards any changes made since the previous\n"
            + "snapshot was taken.  Continue? [yes/no]: ";
}
