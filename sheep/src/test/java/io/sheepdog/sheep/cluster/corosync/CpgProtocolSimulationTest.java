package io.sheepdog.sheep.cluster.corosync;

import static io.sheepdog.sheep.cluster.common.RecordingListener.bytes;
import static io.sheepdog.sheep.cluster.common.RecordingListener.node;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.cluster.common.RecordingListener;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link CpgProtocol} in a simulated CPG group: a single total order of configuration changes and messages,
 * delivered to every process in the group, with random joins, crashes, notifies and blocks. Checks the contract
 * on every run: same event order everywhere, everyone alive ends accepted, one block at a time.
 */
class CpgProtocolSimulationTest {

    /** The simulated group: processes in join order and the queue of multicast messages not delivered yet. */
    static final class Group {
        final List<Sim> alive = new ArrayList<>();
        final List<Sim> all = new ArrayList<>();
        final Deque<Object[]> queue = new ArrayDeque<>();
        Sim holder; // the process holding the block (granted and not yet released)
        int violations;
        int grants;

        Sim join(int port) {
            Sim s = new Sim(this, new Proc(1, port), port);
            alive.add(s);
            all.add(s);
            confchg(List.of(), List.of(addr(s, Cpg.REASON_JOIN)));
            return s;
        }

        /** Several processes become members in one configuration change. */
        List<Sim> joinTogether(int... ports) {
            List<Sim> out = new ArrayList<>();
            List<Cpg.Address> joined = new ArrayList<>();
            for (int port : ports) {
                Sim s = new Sim(this, new Proc(1, port), port);
                alive.add(s);
                all.add(s);
                out.add(s);
                joined.add(addr(s, Cpg.REASON_JOIN));
            }
            confchg(List.of(), joined);
            return out;
        }

        void kill(Sim s) {
            alive.remove(s);
            queue.removeIf(m -> m[0] == s); // never delivered: it died before they were ordered
            if (holder == s) holder = null;
            confchg(List.of(addr(s, Cpg.REASON_PROCDOWN)), List.of());
        }

        private void confchg(List<Cpg.Address> left, List<Cpg.Address> joined) {
            List<Cpg.Address> members = new ArrayList<>();
            for (Sim x : alive) members.add(addr(x, 0));
            CpgProtocol.Confchg c = new CpgProtocol.Confchg(members, left, joined);
            for (Sim x : List.copyOf(alive)) x.protocol.onConfchg(c);
        }

        boolean deliverOne() {
            Object[] m = queue.poll();
            if (m == null) return false;
            Sim sender = (Sim) m[0];
            CpgMessage msg = CpgMessage.decode((byte[]) m[1]);
            for (Sim x : List.copyOf(alive)) x.protocol.onDeliver(new CpgProtocol.Delivered(sender.proc, msg));
            return true;
        }

        static Cpg.Address addr(Sim s, int reason) { return new Cpg.Address(s.proc.nodeid(), s.proc.pid(), reason); }
    }

    static final class Sim {
        final Proc proc;
        final RecordingListener listener;
        final CpgProtocol protocol;
        long blockIds;

        Sim(Group g, Proc proc, int port) {
            this.proc = proc;
            this.listener = new RecordingListener(node(port));
            listener.onBlock = () -> {
                if (g.holder != null) g.violations++;
                g.holder = this;
                g.grants++;
                return true;
            };
            this.protocol = new CpgProtocol(proc, listener.self, bytes("j" + port), listener,
                    m -> g.queue.add(new Object[] {this, m.encode()}));
        }
    }

    static void run(long seed, int steps) {
        Random r = new Random(seed);
        Group g = new Group();
        int nextPort = 7000;
        boolean refusals = seed % 2 == 0; // then every master refuses the ports ending in 3
        for (int step = 0; step < steps; step++) {
            leaveIfFinished(g);
            int dice = r.nextInt(100);
            List<Sim> members = g.alive.stream().filter(s -> s.protocol.accepted()).toList();
            if (dice < 55 && !g.queue.isEmpty()) {
                g.deliverOne();
            } else if (dice < 67 && g.all.size() < 8) {
                List<Sim> joined = r.nextInt(3) == 0 ? g.joinTogether(nextPort++, nextPort++) : List.of(g.join(nextPort++));
                if (refusals) for (Sim s : joined) s.listener.refuse = n -> n.nid().port() % 10 == 3;
            } else if (dice < 72 && g.alive.size() > 1) {
                g.kill(g.alive.get(r.nextInt(g.alive.size())));
            } else if (dice < 87 && !members.isEmpty()) {
                Sim s = members.get(r.nextInt(members.size()));
                s.protocol.notify(bytes("n" + step));
            } else if (dice < 93 && !members.isEmpty()) {
                Sim s = members.get(r.nextInt(members.size()));
                s.protocol.block(++s.blockIds);
            } else if (g.holder != null) {
                Sim h = g.holder;
                g.holder = null;
                assertTrue(h.protocol.unblock(bytes("u" + step)), "the holder can unblock");
            }
        }
        // drain: no more joins or crashes; release blocks as they are granted
        for (int i = 0; i < 100_000; i++) {
            if (g.holder != null) {
                Sim h = g.holder;
                g.holder = null;
                h.protocol.unblock(bytes("end"));
            }
            leaveIfFinished(g);
            if (!g.deliverOne() && g.holder == null) break;
        }
        String ctx = "seed " + seed;
        assertEquals(0, g.violations, ctx + ": two blocks held at once");
        for (Sim s : g.alive) assertTrue(s.protocol.accepted(), ctx + ": " + s.proc + " never accepted: " + s.listener.ordered());
        List<RecordingListener> ls = g.all.stream().filter(s -> s.protocol.accepted()).map(s -> s.listener).toList();
        try {
            RecordingListener.assertSameOrder(ls);
        } catch (AssertionError e) {
            throw new AssertionError(ctx + ": " + e.getMessage(), e);
        }
        assertSelfDecidedOnlyWhenAlone(g, ctx);
        // the survivors agree on the final member list: the last accept/leave line of each has the same list
        String last = null;
        for (Sim s : g.alive) {
            List<String> o = s.listener.ordered().stream().filter(x -> x.startsWith("accept") || x.startsWith("leave")).toList();
            String l = o.getLast();
            String list = l.substring(l.indexOf('['), l.indexOf(']') + 1);
            if (last != null) assertEquals(last, list, ctx);
            last = list;
            assertEquals(g.alive.size(), list.split(",").length, ctx + ": " + list);
        }
    }

    /** A refused process stops and its driver closes the CPG connection: it leaves the group. */
    static void leaveIfFinished(Group g) {
        for (Sim s : List.copyOf(g.alive)) {
            if (s.protocol.finished()) {
                assertEquals(3, s.proc.pid() % 10, "only refused processes finish: " + s.proc);
                g.kill(s);
            }
        }
    }

    /** A joiner that decided its own join must have been alone: "accept P [P] ...+by:P". */
    static void assertSelfDecidedOnlyWhenAlone(Group g, String ctx) {
        for (Sim s : g.all) {
            for (String line : s.listener.ordered()) {
                String[] f = line.split(" ");
                if (f[0].equals("accept") && f[3].endsWith("+by:" + f[1])) {
                    assertEquals("[" + f[1] + "]", f[2], ctx + ": " + line);
                }
            }
        }
    }

    @Test
    void randomSchedulesKeepTheContract() {
        for (long seed = 1; seed <= 400; seed++) run(seed, 300);
    }

    /**
     * A member evicted by another (it stopped answering, its process stays in the group) leaves for everyone in the
     * total order; the evicted process itself, reading the LEAVE, is told to drop its connection and join again.
     */
    @Test
    void anEvictedMemberLeavesForEveryoneAndIsToldToJoinAgain() {
        Group g = new Group();
        Sim a = g.join(7000), b = g.join(7001), c = g.join(7002);
        while (g.deliverOne()) { }
        a.protocol.evict(c.listener.self);
        while (g.deliverOne()) { }
        assertEquals("leave 7002 [7000,7001]", a.listener.ordered().getLast());
        assertEquals("leave 7002 [7000,7001]", b.listener.ordered().getLast());
        assertEquals("the cluster removed this node: it stopped answering", c.protocol.dropReason());
        RecordingListener.assertSameOrder(List.of(a.listener, b.listener));
    }

    @Test
    void concurrentSelfElectionsLetOnlyTheFirstWin() {
        Group g = new Group();
        Sim a = g.join(7000);
        while (g.deliverOne()) { }
        Sim x = g.join(7001), z = g.join(7002), w = g.join(7003);
        g.deliverOne(); // JOIN x: A answers
        g.deliverOne(); // JOIN z
        g.deliverOne(); // JOIN w
        g.deliverOne(); // ACCEPT x: z and w learn the state from it; A answers z
        assertTrue(x.protocol.accepted());
        g.kill(a);      // the answer to z dies with A ...
        g.kill(x);      // ... and no member is left: z and w both decide for themselves
        while (g.deliverOne()) { }
        assertTrue(z.protocol.accepted() && w.protocol.accepted());
        assertEquals(1, w.listener.countLocal("joinreq 7003 []"), "w tried to decide alone: " + w.listener.local());
        assertEquals("accept 7003 [7002,7003] j7003+by:7002", w.listener.ordered().getFirst(), "z won and answered w");
        assertSelfDecidedOnlyWhenAlone(g, "scenario");
        RecordingListener.assertSameOrder(List.of(z.listener, w.listener));
    }

    @Test
    void simultaneousStartElectsOneFirstNode() {
        Group g = new Group();
        Sim a = g.join(7000), b = g.join(7001), c = g.join(7002);
        while (g.deliverOne()) { }
        for (Sim s : List.of(a, b, c)) assertTrue(s.protocol.accepted());
        // only the oldest ran onJoinRequest for itself; the others were answered by it
        assertEquals(List.of("joinreq 7000 []", "joinreq 7001 [7000]", "joinreq 7002 [7000,7001]"), a.listener.local());
        assertEquals(0, b.listener.countLocal("joinreq") + c.listener.countLocal("joinreq"));
        assertEquals("accept 7002 [7000,7001,7002] j7002+by:7000", c.listener.ordered().getFirst());
        RecordingListener.assertSameOrder(List.of(a.listener, b.listener, c.listener));
    }

    @Test
    void processesJoiningInOneChangeDoNotWaitForEachOther() {
        Group g = new Group();
        List<Sim> s = g.joinTogether(7000, 7001, 7002);
        while (g.deliverOne()) { }
        for (Sim x : s) assertTrue(x.protocol.accepted(), x.proc + " " + x.listener.ordered());
        assertEquals(List.of("joinreq 7000 []", "joinreq 7001 [7000]", "joinreq 7002 [7000,7001]"), s.get(0).listener.local());
        RecordingListener.assertSameOrder(s.stream().map(x -> x.listener).toList());
    }

    @Test
    void refusedJoinerStopsAndTheClusterGoesOn() {
        Group g = new Group();
        Sim a = g.join(7000);
        a.listener.refuse = n -> n.nid().port() == 7001;
        while (g.deliverOne()) { }
        Sim b = g.join(7001);
        while (g.deliverOne()) { }
        assertTrue(b.protocol.finished() && !b.protocol.accepted());
        assertEquals(List.of("health false the cluster refused to let this node join"), b.listener.local());
        Sim c = g.join(7002);
        while (g.deliverOne()) { }
        assertEquals("accept 7002 [7000,7002] j7002+by:7000", c.listener.ordered().getFirst());
        assertEquals(List.of("accept 7000 [7000] j7000+by:7000", "accept 7002 [7000,7002] j7002+by:7000"), a.listener.ordered());
    }

    @Test
    void masterDyingBeforeItsAnswerIsOrderedIsReplaced() {
        Group g = new Group();
        Sim a = g.join(7000);
        while (g.deliverOne()) { }
        Sim b = g.join(7001);
        Sim c = g.join(7002);
        g.deliverOne(); // B's JOIN: A answers, the answer is queued
        g.deliverOne(); // C's JOIN
        g.kill(a);      // A's answer is lost with it
        while (g.deliverOne()) { }
        assertTrue(b.protocol.accepted() && c.protocol.accepted());
        // B joined an empty cluster (A gone): it decided for itself, then answered C as the new master
        assertTrue(b.listener.local().contains("joinreq 7001 []"), b.listener.local().toString());
        assertTrue(b.listener.local().contains("joinreq 7002 [7001]"), b.listener.local().toString());
        RecordingListener.assertSameOrder(List.of(b.listener, c.listener));
    }
}
