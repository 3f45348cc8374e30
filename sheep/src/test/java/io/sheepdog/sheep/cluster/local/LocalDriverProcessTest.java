package io.sheepdog.sheep.cluster.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real sheep-like processes ({@link LocalDriverChild} JVMs) sharing a rendezvous directory: total order across
 * processes, crash detection after kill -9, block exclusion under contention, and a master killed while it
 * answers a join.
 */
class LocalDriverProcessTest {
    /** Generous: JVM start-up on a loaded 2-core machine is slow. Only a failing test waits this long. */
    private static final long WAIT = 60_000;

    @TempDir Path work;
    private final List<Child> children = new ArrayList<>();

    @AfterEach void stopChildren() {
        for (Child c : children) c.kill();
    }

    /** One child JVM; its lines are "millis event". */
    final class Child {
        final int port;
        final Process process;
        final Path events;
        private final Writer stdin;

        Child(int port, String... options) throws IOException {
            this.port = port;
            this.events = work.resolve("events-" + port + "-" + children.size());
            String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx64m", "-cp", classpath,
                    LocalDriverChild.class.getName(), work.resolve("cluster").toString(), Integer.toString(port),
                    events.toString()));
            cmd.addAll(List.of(options));
            Path log = work.resolve("child-" + port + "-" + children.size() + ".log");
            this.process = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            children.add(this);
            this.stdin = new java.io.OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        }

        void send(String command) throws IOException {
            stdin.write(command + "\n");
            stdin.flush();
        }

        /** Kills the JVM like kill -9 and waits until it is gone. */
        void kill() {
            process.destroyForcibly();
            try {
                process.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        /** The lines recorded so far, each "millis event". */
        List<String> timed() {
            try {
                // The child may be writing a line right now: only whole lines count.
                String text = Files.readString(events);
                return List.of(text.substring(0, text.lastIndexOf('\n') + 1).split("\n", -1)).stream()
                        .filter(l -> !l.isEmpty()).toList();
            } catch (NoSuchFileException e) {
                return List.of();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        List<String> all() { return timed().stream().map(l -> l.substring(l.indexOf(' ') + 1)).toList(); }

        List<String> shared() { return all().stream().filter(l -> !l.startsWith("local ")).toList(); }

        long count(Predicate<String> p) { return all().stream().filter(p).count(); }

        /** Waits for a line matching {@code p}; returns the millisecond the child recorded it. */
        long await(Predicate<String> p, String what) throws InterruptedException {
            long deadline = System.currentTimeMillis() + WAIT;
            while (true) {
                for (String l : timed()) {
                    int sp = l.indexOf(' ');
                    if (p.test(l.substring(sp + 1))) return Long.parseLong(l.substring(0, sp));
                }
                if (!process.isAlive()) throw new AssertionError(port + " exited before " + what + ": " + all());
                if (System.currentTimeMillis() > deadline) throw new AssertionError(port + " never saw " + what + ": " + all());
                Thread.sleep(5);
            }
        }

        long await(String exact) throws InterruptedException { return await(exact::equals, "'" + exact + "'"); }

        void awaitCount(Predicate<String> p, long n, String what) throws InterruptedException {
            long deadline = System.currentTimeMillis() + WAIT;
            while (count(p) < n) {
                if (System.currentTimeMillis() > deadline) throw new AssertionError(port + ": fewer than " + n + " " + what + ": " + all());
                Thread.sleep(5);
            }
        }
    }

    /** Starts a child JVM; it joins when told to, so tests start their JVMs together and join in order. */
    private Child spawn(int port, String... options) throws IOException {
        return new Child(port, options);
    }

    /** Tells {@code c} to join and waits for its acceptance. */
    private static Child join(Child c) throws Exception {
        c.send("join");
        c.await(l -> l.startsWith("ACCEPT " + c.port + " "), "its own ACCEPT");
        return c;
    }

    /** Each child's sequence is the part of the first one's that starts at the child's own acceptance. */
    private static void assertSameSequence(Child... cs) {
        List<String> reference = cs[0].shared();
        for (Child c : cs) {
            List<String> seq = c.shared();
            int start = reference.indexOf(seq.getFirst());
            assertTrue(start >= 0, c.port + " starts with an event " + cs[0].port + " never saw: " + seq.getFirst());
            assertEquals(reference.subList(start, Math.min(reference.size(), start + seq.size())), seq,
                    "sequence of " + c.port);
        }
    }

    @Test void processesShareOneOrderAndSeeAKilledMemberLeaveWithinASecond() throws Exception {
        Child a = spawn(7001), b = spawn(7002), c = spawn(7003), b2 = spawn(7002);
        join(a);
        join(b);
        join(c);
        for (Child ch : List.of(a, b, c)) ch.send("burst 30 from" + ch.port);
        for (Child ch : List.of(a, b, c)) ch.awaitCount(l -> l.startsWith("NOTIFY"), 90, "notifies");
        assertSameSequence(a, b, c);
        assertEquals(List.of("ACCEPT 7001 [7001] by7001:hello-7001", "ACCEPT 7002 [7001,7002] by7001:hello-7002",
                "ACCEPT 7003 [7001,7002,7003] by7001:hello-7003"), a.shared().subList(0, 3));

        long killedAt = System.currentTimeMillis();
        b.kill();
        long seenByA = a.await("LEAVE 7002 [7001,7003]");
        long seenByC = c.await("LEAVE 7002 [7001,7003]");
        assertTrue(seenByA - killedAt < 1000 && seenByC - killedAt < 1000,
                "survivors saw the crash after " + (seenByA - killedAt) + " and " + (seenByC - killedAt) + " ms");

        // Restarted on the same node id: a new member, after the old one's leave.
        join(b2);
        a.await("ACCEPT 7002 [7001,7003,7002] by7001:hello-7002");
        b2.send("notify back");
        for (Child ch : List.of(a, c, b2)) ch.await("NOTIFY 7002 back");
        assertSameSequence(a, c, b2);
        assertEquals(1, a.count(l -> l.startsWith("LEAVE 7002")), "one LEAVE per death");
    }

    @Test void blockIsExclusiveAcrossProcessesAndReleasedByAHolderDeath() throws Exception {
        Path critical = work.resolve("critical-section");
        Child a = spawn(7001, "critical=" + critical);
        Child b = spawn(7002, "critical=" + critical);
        Child c = spawn(7003, "critical=" + critical);
        for (Child ch : List.of(a, b, c)) join(ch);
        int rounds = 5;
        for (Child ch : List.of(a, b, c)) ch.send("block " + rounds);
        for (Child ch : List.of(a, b, c)) ch.awaitCount(l -> l.startsWith("NOTIFY") && l.contains(" done "), 3 * rounds, "unblocks");
        for (Child ch : List.of(a, b, c)) {
            assertEquals(0, ch.count(l -> l.contains("VIOLATION")), ch.port + " entered while another held the block");
            assertEquals(rounds, ch.count("local BLOCK true"::equals), ch.port + " grants");
        }
        assertSameSequence(a, b, c);

        a.send("holdblock");
        a.awaitCount("local BLOCK true"::equals, rounds + 1, "grants");
        b.send("block 1");
        Thread.sleep(200);
        assertEquals(rounds, b.count("local BLOCK true"::equals), "granted while 7001 holds the block");
        a.kill();
        b.awaitCount("local BLOCK true"::equals, rounds + 1, "grants after the holder died");
        c.await("NOTIFY 7002 done 7002-" + (rounds + 1));
        List<String> seq = b.all();
        assertTrue(seq.indexOf("LEAVE 7001 [7002,7003]") < seq.lastIndexOf("local BLOCK true"), seq.toString());
        assertFalse(Files.exists(critical));
    }

    @Test void nextMemberAnswersAJoinWhenTheMasterIsKilledAnsweringIt() throws Exception {
        Child a = spawn(7001, "stall-join-of=7003"), b = spawn(7002), c = spawn(7003);
        join(a);
        join(b);
        c.send("join");
        a.await(l -> l.startsWith("local JOINREQ 7003 "), "the join request of 7003");
        a.kill();
        c.await(l -> l.startsWith("ACCEPT 7003 "), "its own ACCEPT");
        assertEquals("ACCEPT 7003 [7002,7003] by7002:hello-7003", c.shared().getFirst());
        b.await("ACCEPT 7003 [7002,7003] by7002:hello-7003");
        assertEquals(List.of("ACCEPT 7002 [7001,7002] by7001:hello-7002", "LEAVE 7001 [7002]",
                "ACCEPT 7003 [7002,7003] by7002:hello-7003"), b.shared());
        assertTrue(b.all().contains("local JOINREQ 7003 [7002] hello-7003"), b.all().toString());
        c.send("notify hi");
        b.await("NOTIFY 7003 hi");
        assertSameSequence(b, c);
    }
}
