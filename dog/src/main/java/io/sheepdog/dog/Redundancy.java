package io.sheepdog.dog;

import io.sheepdog.proto.Proto;

/** The {@code -c} argument: {@code n} replicas (1..31) or {@code d:p} erasure coding (docs/dog.md §2). */
record Redundancy(int copies, int copyPolicy) {

    static Redundancy parse(String s) {
        int colon = s.indexOf(':');
        try {
            if (colon < 0) {
                int n = parseInt(s);
                if (n >= 1 && n <= Proto.MAX_COPIES) return new Redundancy(n, 0);
            } else {
                int d = parseInt(s.substring(0, colon));
                int p = parseInt(s.substring(colon + 1));
                boolean okD = d == 2 || d == 4 || d == 8 || d == 16;
                if (okD && p >= 1 && p <= 15 && d + p <= Proto.MAX_COPIES) return new Redundancy(d + p, (d / 2) << 4 | p);
            }
        } catch (NumberFormatException e) {
            // falls through to the message
        }
        throw new DogExit(ExitCodes.FAILURE, "Invalid parameter " + s + "\n"
                + "To create replicated vdi, set -c x\n"
                + "  x(1 to 31)   - number of replicated copies\n"
                + "To create erasure coded vdi, set -c x:y\n"
                + "  x(2,4,8,16)  - number of data strips\n"
                + "  y(1 to 15)   - number of parity strips");
    }

    private static int parseInt(String s) {
        if (s.isEmpty() || s.length() > 9) throw new NumberFormatException(s);
        for (int i = 0; i < s.length(); i++) if (!Character.isDigit(s.charAt(i))) throw new NumberFormatException(s);
        return Integer.parseInt(s);
    }

    boolean erasureCoded() { return copyPolicy != 0; }

    /** -z argument: 20..31. */
    static int parseShift(String s) {
        int z;
        try {
            z = parseInt(s);
        } catch (NumberFormatException e) {
            throw DogExit.usage("Invalid block_size_shift '" + s + "'");
        }
        if (z > Proto.MAX_BLOCK_SIZE_SHIFT) throw DogExit.usage("Object Size is limited to 2^31. Please set shift bit lower than 31");
        if (z < Proto.MIN_BLOCK_SIZE_SHIFT) throw DogExit.usage("Object Size is larger than 2^20. Please set shift bit larger than 20");
        return z;
    }
}
