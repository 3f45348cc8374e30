package io.sheepdog.sheep.cluster.common;

import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.SdNode;
import io.sheepdog.sheep.cluster.ClusterListener;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * A daemon stand-in for driver tests: records the totally ordered callbacks as text lines ({@link #ordered()}),
 * and the local ones (join requests, block grants, health, rejoin) separately. onJoinRequest accepts and rewrites
 * the message to {@code <message>+by:<port of the deciding node>}, so tests can see who decided and that the
 * rewritten message reached everyone.
 */
public class RecordingListener implements ClusterListener {

    public final SdNode self;
    private final List<String> ordered = new ArrayList<>();
    private final List<String> local = new ArrayList<>();
    public volatile Predicate<SdNode> refuse = n -> false;
    /** Decides onBlock; default: record and accept. */
    public volatile BooleanSupplier onBlock = () -> true;
    public volatile byte[] rejoinMessage;
    /** Sees every recorded line: (true, line) for ordered ones, (false, line) for local ones. */
    public volatile java.util.function.BiConsumer<Boolean, String> tap = (o, l) -> { };

    public RecordingListener(SdNode self) { this.self = self; }

    public static SdNode node(int port) {
        return new SdNode(NodeId.of("127.0.0.1", port), 128, port, 1L << 30);
    }

    public static String port(SdNode n) { return String.valueOf(n.nid().port()); }

    static String ports(List<SdNode> ns) {
        return ns.stream().map(RecordingListener::port).collect(Collectors.joining(",", "[", "]"));
    }

    static String text(byte[] b) { return new String(b, StandardCharsets.UTF_8); }

    /** A message as recorded: long ones are shortened to their start, length and end. */
    static String show(byte[] b) {
        if (b.length <= 200) return text(b);
        String t = text(b);
        return t.substring(0, 8).replace("\0", "") + "..(" + b.length + ").." + t.substring(t.length() - 12);
    }

    public static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    public synchronized void ordered(String line) {
        ordered.add(line);
        notifyAll();
        tap.accept(true, line);
    }

    public synchronized void local(String line) {
        local.add(line);
        notifyAll();
        tap.accept(false, line);
    }

    public synchronized List<String> ordered() { return List.copyOf(ordered); }

    public synchronized List<String> local() { return List.copyOf(local); }

    /** Waits until {@code condition} holds for this listener, or fails after {@code millis}. */
    public synchronized void await(String what, long millis, Predicate<RecordingListener> condition)
            throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (!condition.test(this)) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                throw new AssertionError(port(self) + ": timed out waiting for " + what + "; ordered=" + ordered
                        + " local=" + local);
            }
            wait(Math.min(left, 100));
        }
    }

    public void awaitOrdered(String line, long millis) throws InterruptedException {
        await("'" + line + "'", millis, l -> l.ordered().contains(line));
    }

    public void awaitLocal(String prefix, long millis) throws InterruptedException {
        await("local '" + prefix + "'", millis, l -> l.local().stream().anyMatch(s -> s.startsWith(prefix)));
    }

    /** The member list of the last accept or leave event, like {@code [7000,7001]}, or "" if none. */
    public String lastMembers() {
        List<String> o = ordered();
        for (int i = o.size() - 1; i >= 0; i--) {
            String l = o.get(i);
            if (l.startsWith("accept ") || l.startsWith("leave ")) return l.substring(l.indexOf('['), l.indexOf(']') + 1);
        }
        return "";
    }

    public long countOrdered(String prefix) {
        return ordered().stream().filter(s -> s.startsWith(prefix)).count();
    }

    public long countLocal(String prefix) {
        return local().stream().filter(s -> s.startsWith(prefix)).count();
    }

    @Override
    public JoinDecision onJoinRequest(SdNode joining, List<SdNode> members, byte[] message) {
        local("joinreq " + port(joining) + " " + ports(members));
        if (refuse.test(joining)) return new JoinDecision(false, null);
        return new JoinDecision(true, bytes(text(message) + "+by:" + port(self)));
    }

    @Override
    public void onAccept(SdNode joined, List<SdNode> members, byte[] message) {
        ordered("accept " + port(joined) + " " + ports(members) + " " + show(message));
    }

    @Override
    public void onLeave(SdNode left, List<SdNode> remaining) {
        ordered("leave " + port(left) + " " + ports(remaining));
    }

    @Override
    public void onNotify(SdNode sender, byte[] message) {
        ordered("notify " + port(sender) + " " + show(message));
    }

    @Override
    public boolean onBlock() {
        boolean ok = onBlock.getAsBoolean();
        local("block " + ok);
        return ok;
    }

    @Override
    public void onUpdateNode(SdNode node) {
        ordered("update " + port(node) + " v" + node.nrVnodes());
    }

    @Override
    public void onDriverHealth(boolean healthy, String reason) {
        local("health " + healthy + " " + reason);
    }

    /** The lease of each health report, in order, as nanoseconds left when it was made (0: none). */
    public final java.util.List<Long> leasesLeftNanos = new java.util.concurrent.CopyOnWriteArrayList<>();

    @Override
    public void onDriverHealth(boolean healthy, String reason, long memberUntilNanos) {
        leasesLeftNanos.add(memberUntilNanos == 0 ? 0 : Math.max(1, memberUntilNanos - System.nanoTime()));
        onDriverHealth(healthy, reason);
    }

    @Override
    public byte[] onRejoin(String reason) {
        local("rejoin " + reason);
        return rejoinMessage;
    }

    /**
     * Asserts that the listeners saw the same sequence of ordered events: for every pair, from the point where the
     * later of the two was (last) accepted, both saw the same events in the same order, as far as both got (a node
     * that left or was closed stops early; a node that re-joined is compared from its last acceptance).
     */
    public static void assertSameOrder(List<RecordingListener> ls) {
        for (RecordingListener x : ls) {
            List<String> tx = sinceLastAccept(x);
            for (RecordingListener y : ls) {
                if (y == x) continue;
                List<String> ty = sinceLastAccept(y);
                int at = ty.lastIndexOf(tx.getFirst());
                if (at < 0) continue; // x joined before y (the pair is checked the other way round) or after y left
                List<String> other = ty.subList(at, ty.size());
                int n = Math.min(tx.size(), other.size());
                if (!tx.subList(0, n).equals(other.subList(0, n))) {
                    throw new AssertionError("event order differs between " + port(x.self) + " and "
                            + port(y.self) + ":\n  " + tx + "\n  " + other);
                }
            }
        }
    }

    private static List<String> sinceLastAccept(RecordingListener l) {
        List<String> o = l.ordered();
        for (int i = o.size() - 1; i >= 0; i--) {
            if (o.get(i).startsWith("accept " + port(l.self) + " ")) return o.subList(i, o.size());
        }
        throw new AssertionError(port(l.self) + " was never accepted: " + o);
    }
}
