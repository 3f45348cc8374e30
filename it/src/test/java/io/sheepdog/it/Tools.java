package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Tests that drive an external tool (tgtd, qemu-io, ...) need it installed. Outside CI a missing tool skips the test
 * with a reason; under CI (CI=true, where .ci/run installs every tool) it fails, so a broken install cannot pass.
 */
public final class Tools {
    private Tools() {}

    public static void require(String... tools) {
        for (String t : tools) {
            if (Commands.installed(t)) continue;
            requireUnderCi(false, t + " is not installed (apt-get install the packages listed in .ci/run)");
        }
    }

    /**
     * A test that needs what only root or a full install gives (a tmpfs mount, network namespaces, nftables): when
     * {@code available} is false it is skipped outside CI, and fails under CI, which runs as root with every package.
     */
    public static void requireUnderCi(boolean available, String what) {
        if (available) return;
        if ("true".equalsIgnoreCase(System.getenv("CI"))) fail(what + " (required under CI)");
        assumeTrue(false, what);
    }
}
