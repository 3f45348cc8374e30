package io.sheepdog.it;

import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * For tests that use {@link MiniCluster}: after a failed test, prints the log tails of the clusters it created and
 * keeps their directories; after a passed one, deletes them. Either way it makes sure every process is stopped.
 */
public final class MiniClusterExtension implements BeforeEachCallback, AfterEachCallback {
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(MiniClusterExtension.class);

    @Override public void beforeEach(ExtensionContext ctx) {
        ctx.getStore(NS).put("first", MiniCluster.CREATED.size());
    }

    @Override public void afterEach(ExtensionContext ctx) {
        Integer first = ctx.getStore(NS).get("first", Integer.class);
        List<MiniCluster> mine = MiniCluster.CREATED.subList(first == null ? 0 : first, MiniCluster.CREATED.size());
        boolean failed = ctx.getExecutionException().isPresent();
        for (MiniCluster c : List.copyOf(mine)) {
            if (failed) {
                System.err.println("==== " + ctx.getDisplayName() + " failed; cluster kept in " + c.dir());
                System.err.println(c.describe());
                System.err.println(c.logTails(60));
            }
            c.close();
            // -Dsheepdog.it.keep=true keeps the directories (logs, stores, ack logs) of passed tests too
            if (!failed && !Boolean.getBoolean("sheepdog.it.keep")) c.deleteDir();
        }
    }
}
