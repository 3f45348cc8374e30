package io.sheepdog.sheep.cluster.local;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdNode;
import io.sheepdog.sheep.cluster.ClusterListener;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * Records every callback as a line. Lines shared by the whole cluster (ACCEPT, LEAVE, NOTIFY, UPDATE) are what
 * must be identical on every node; lines starting with "local " (join requests, block grants, health) are
 * specific to the node that got them.
 *
 * <p>Join requests are answered with the message rewritten as {@code by<handler port>:<message>}, so a test can
 * see that every node got the handler's rewrite and which node was the handler.
 */
class RecordingListener implements ClusterListener {
    final int port;
    private final List<String> lines = new ArrayList<>();
    private final Consumer<String> sink;
    volatile Predicate<SdNode> acceptJoin = n -> true;
    volatile BooleanSupplier onBlock = () -> true;
    /** Called after a block is granted (outside the driver thread's view: the test decides what to do). */
    volatile Runnable afterGrant = () -> { };

    RecordingListener(int port) { this(port, l -> { }); }

    RecordingListener(int port, Consumer<String> sink) {
        this.port = port;
        this.sink = sink;
    }

    static SdNode node(int port) {
        return new SdNode(NodeId.of("127.0.0.1", port), 128, port, 1L << 30);
    }

    static String ports(List<SdNode> nodes) {
        return nodes.stream().map(n -> Integer.toString(n.nid().port())).collect(Collectors.joining(",", "[", "]"));
    }

    private static String text(byte[] b) { return new String(b, StandardCharsets.UTF_8); }

    private void add(String line) {
        synchronized (lines) {
            lines.add(line);
            lines.notifyAll();
        }
        sink.accept(line);
    }

    /** Records a line of this node's own (not part of the cluster's sequence). */
    void noteLocal(String what) { add("local " + what); }

    @Override public JoinDecision onJoinRequest(SdNode joining, List<SdNode> members, byte[] message) {
        add("local JOINREQ " + joining.nid().port() + " " + ports(members) + " " + text(message));
        if (!acceptJoin.test(joining)) return new JoinDecision(false, null);
        return new JoinDecision(true, ("by" + port + ":" + text(message)).getBytes(StandardCharsets.UTF_8));
    }

    @Override public void onAccept(SdNode joined, List<SdNode> members, byte[] message) {
        add("ACCEPT " + joined.nid().port() + " " + ports(members) + " " + text(message));
    }

    @Override public void onLeave(SdNode left, List<SdNode> remaining) {
        add("LEAVE " + left.nid().port() + " " + ports(remaining));
    }

    @Override public void onNotify(SdNode sender, byte[] message) {
        add("NOTIFY " + sender.nid().port() + " " + text(message));
    }

    @Override public boolean onBlock() {
        boolean granted = onBlock.getAsBoolean();
        add("local BLOCK " + granted);
        if (granted) afterGrant.run();
        return granted;
    }

    @Override public void onUpdateNode(SdNode node) {
        add("UPDATE " + node.nid().port() + " v" + node.nrVnodes());
    }

    @Override public void onDriverHealth(boolean healthy, String reason) {
        add("local HEALTH " + healthy + " " + reason);
    }

    List<String> all() {
        synchronized (lines) {
            return List.copyOf(lines);
        }
    }

    /** The cluster-wide lines, in delivery order. */
    List<String> shared() {
        return all().stream().filter(l -> !l.startsWith("local ")).toList();
    }

    /** Waits until some line satisfies {@code p}; returns it or fails after {@code millis}. */
    String await(Predicate<String> p, long millis, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        synchronized (lines) {
            while (true) {
                for (String l : lines) if (p.test(l)) return l;
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) throw new AssertionError(port + " did not see " + what + " in " + millis + " ms: " + lines);
                lines.wait(left);
            }
        }
    }

    String await(String exact, long millis) throws InterruptedException {
        return await(exact::equals, millis, "'" + exact + "'");
    }

    /** Waits until at least {@code n} shared lines were delivered. */
    void awaitShared(int n, long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        synchronized (lines) {
            while (shared().size() < n) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) throw new AssertionError(port + " has " + shared().size() + " of " + n + " events: " + lines);
                lines.wait(left);
            }
        }
    }
}
