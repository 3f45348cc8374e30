package io.sheepdog.it;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.client.Volume;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAccumulator;

/**
 * A client that writes random blocks to one VDI through the Java client library while a test breaks the cluster,
 * and remembers every write the cluster acknowledged, so that nothing acknowledged can get lost unnoticed.
 *
 * <p>The VDI is split into one region per worker thread (on object boundaries), so the expected content is exact:
 * a region is written by its thread only, and {@link #expected} holds, for every byte, what the last acknowledged
 * write put there (zeros if none). A write that fails is retried with the same bytes until it is acknowledged, as
 * QEMU does after a reconnect, so at the end there is no byte whose content is uncertain. Between writes each
 * thread reads back a random range of its region and compares it with what was acknowledged: a replica that lost a
 * write shows up as soon as a read lands on it.
 *
 * <p>Each thread talks to one gateway node at a time; when its connection breaks (that node was killed) or it gets
 * no answer for a while, it moves to the next node that runs, the way a client with a list of portals would.
 */
final class VerifyingWriter implements AutoCloseable {
    private static final int ALIGN = 4096;
    private static final int MAX_WRITE = 1 << 20;
    /** How long a write may keep failing before the run is declared broken. */
    private static final long GIVE_UP_NANOS = 90_000_000_000L;

    private final MiniCluster cluster;
    private final String vdi;
    private final long size;
    private final long objectSize;
    private final byte[] expected;
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicInteger nextGateway = new AtomicInteger();
    private volatile boolean stop;
    private volatile boolean paused;
    private final AtomicInteger idle = new AtomicInteger();

    private final AtomicLong acked = new AtomicLong();
    private final AtomicLong ackedBytes = new AtomicLong();
    private final AtomicLong failedAttempts = new AtomicLong();
    private final AtomicLong reads = new AtomicLong();
    private final AtomicLong reconnects = new AtomicLong();
    private final LongAccumulator slowestWriteNanos = new LongAccumulator(Math::max, 0);
    /** When each write was acknowledged (System.nanoTime), to find the longest time nothing was. */
    private final java.util.concurrent.ConcurrentSkipListSet<Long> ackTimes = new java.util.concurrent.ConcurrentSkipListSet<>();
    private final ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
    /** Writes that took over a second: when, how long, through which nodes and why (for the test's log). */
    private final ConcurrentLinkedQueue<String> slowWrites = new ConcurrentLinkedQueue<>();
    /** Why attempts failed: message (node ports left out) to count. */
    private final java.util.concurrent.ConcurrentHashMap<String, AtomicLong> failureReasons = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * @param size       the VDI's size (a multiple of the object size)
     * @param objectSize the VDI's object size (4 MiB by default)
     */
    VerifyingWriter(MiniCluster cluster, String vdi, long size, long objectSize) {
        if (size > Integer.MAX_VALUE) throw new IllegalArgumentException("the expected image is held in memory: at most 2 GiB");
        this.cluster = cluster;
        this.vdi = vdi;
        this.size = size;
        this.objectSize = objectSize;
        this.expected = new byte[(int) size];
    }

    /** Starts {@code n} writer threads; the region of each is a whole number of objects. */
    VerifyingWriter start(int n, long seed) {
        long objects = size / objectSize;
        if (objects < n) throw new IllegalArgumentException("fewer objects than threads");
        for (int t = 0; t < n; t++) {
            long from = objects * t / n * objectSize, to = objects * (t + 1) / n * objectSize;
            long s = seed + 7919L * t;
            Thread th = Thread.ofPlatform().name("verifying-writer-" + t).daemon().start(() -> run(from, to, s));
            threads.add(th);
        }
        return this;
    }

    /** Stops the threads after their current operation and waits for them. */
    void stop() throws InterruptedException {
        stop = true;
        for (Thread t : threads) t.join(GIVE_UP_NANOS / 1_000_000 + 30_000);
        for (Thread t : threads) if (t.isAlive()) throw new AssertionError(t.getName() + " did not stop\n" + summary());
    }

    @Override public void close() throws InterruptedException { stop(); }

    /** Makes the threads wait after their current operation; returns once none of them has a request in flight. */
    void pause() {
        paused = true;
        long deadline = System.nanoTime() + GIVE_UP_NANOS;
        while (idle.get() < threads.size()) {
            if (!errors.isEmpty()) throw new AssertionError("the writer failed: " + errors);
            if (System.nanoTime() > deadline) throw new AssertionError("the writer threads do not pause: " + summary());
            SheepNode.sleep(10);
        }
    }

    void resume() { paused = false; }

    long acked() { return acked.get(); }
    long failedAttempts() { return failedAttempts.get(); }
    long slowestWriteMillis() { return slowestWriteNanos.get() / 1_000_000; }
    /**
     * The longest time between {@code fromNanos} and {@code toNanos} (System.nanoTime) in which no write was
     * acknowledged by the cluster: how long I/O stood still. The interval ends at the last acknowledgement before
     * {@code toNanos}.
     */
    long longestStallMillis(long fromNanos, long toNanos) {
        long prev = fromNanos, longest = 0;
        for (long t : ackTimes.subSet(fromNanos, true, toNanos, true)) {
            longest = Math.max(longest, t - prev);
            prev = t;
        }
        return longest / 1_000_000;
    }

    /** Mismatches seen by the read-backs during the run (empty if none). */
    List<String> problems() { return List.copyOf(problems); }
    /** Writes that took more than a second, with their failed attempts, slowest first. */
    List<String> slowWrites() {
        List<String> l = new ArrayList<>(slowWrites);
        l.sort(java.util.Comparator.comparingLong(VerifyingWriter::millisOf).reversed());
        return l;
    }

    private static long millisOf(String slowWrite) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(": (\\d+) ms for ").matcher(slowWrite);
        return m.find() ? Long.parseLong(m.group(1)) : 0;
    }
    /** Errors that ended a writer thread (empty if none). */
    List<String> errors() { return List.copyOf(errors); }

    String summary() {
        return String.format("%d writes acknowledged (%d MiB), %d read-backs, %d failed attempts, %d reconnects, "
                        + "slowest write %d ms, %d mismatches, %d fatal errors%s", acked.get(), ackedBytes.get() >> 20,
                reads.get(), failedAttempts.get(), reconnects.get(), slowestWriteMillis(), problems.size(), errors.size(),
                failureReasons.isEmpty() ? "" : "; failures: " + failureReasons());
    }

    /** Waits until at least {@code more} further writes are acknowledged (fails after a minute). */
    void awaitProgress(long more) {
        long target = acked.get() + more;
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (acked.get() < target) {
            if (!errors.isEmpty()) throw new AssertionError("the writer failed: " + errors + "\n" + summary());
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no progress: " + summary() + "\n" + cluster.describe() + cluster.logTails(30));
            }
            SheepNode.sleep(20);
        }
    }

    // ------------------------------------------------------------------ worker

    /** One gateway connection and the volume opened over it. */
    private final class Session implements AutoCloseable {
        final SheepNode node;
        final SheepConnection conn;
        final Volume volume;

        Session(SheepNode node) throws IOException {
            this.node = node;
            this.conn = cluster.connect(node);
            try {
                this.volume = Volume.openWritable(new SheepClient(conn), vdi, false);
            } catch (IOException | RuntimeException e) {
                conn.close();
                throw e;
            }
        }

        @Override public void close() { conn.close(); }
    }

    private Session open() {
        long deadline = System.nanoTime() + GIVE_UP_NANOS;
        while (System.nanoTime() < deadline) {
            List<SheepNode> live = cluster.liveNodes();
            if (!live.isEmpty()) {
                SheepNode n = live.get(Math.floorMod(nextGateway.getAndIncrement(), live.size()));
                try {
                    return new Session(n);
                } catch (IOException | RuntimeException e) {
                    // the node is starting, stopping or still waiting for the others: try the next one
                }
            }
            SheepNode.sleep(50);
        }
        throw new AssertionError("no node accepted the VDI " + vdi + " for " + GIVE_UP_NANOS / 1_000_000_000 + " s");
    }

    private void run(long from, long to, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Session s = null;
        try {
            s = open();
            long ops = 0;
            while (!stop) {
                if (paused) {
                    idle.incrementAndGet();
                    while (paused && !stop) SheepNode.sleep(10);
                    idle.decrementAndGet();
                    continue;
                }
                long off = from + rnd.nextLong((to - from) / ALIGN) * ALIGN;
                int len = (int) Math.min(to - off, (long) ALIGN * (1 + rnd.nextInt(MAX_WRITE / ALIGN)));
                byte[] data = new byte[len];
                rnd.nextBytes(data);
                s = writeUntilAcked(s, off, data);
                System.arraycopy(data, 0, expected, (int) off, len);
                acked.incrementAndGet();
                ackedBytes.addAndGet(len);
                if (++ops % 2 == 0) {
                    long roff = from + rnd.nextLong((to - from) / ALIGN) * ALIGN;
                    int rlen = (int) Math.min(to - roff, (long) ALIGN * (1 + rnd.nextInt(MAX_WRITE / ALIGN)));
                    s = readAndCompare(s, roff, rlen);
                }
            }
        } catch (Throwable t) {
            errors.add(Thread.currentThread().getName() + ": " + t);
        } finally {
            if (s != null) s.close();
        }
    }

    private Session writeUntilAcked(Session s, long off, byte[] data) {
        long start = System.nanoTime();
        java.time.LocalTime wall = java.time.LocalTime.now();
        StringBuilder attempts = new StringBuilder();
        while (true) {
            long t = System.nanoTime();
            try {
                s.volume.write(off, data);
                long took = System.nanoTime() - start;
                slowestWriteNanos.accumulate(took);
                long now = System.nanoTime();
                while (!ackTimes.add(now)) now++; // two threads in the same nanosecond: keep both
                if (took > 1_000_000_000L) {
                    slowWrites.add(String.format("%s %s: %d ms for %d bytes at %d%s, acknowledged through %s after %d ms",
                            wall, Thread.currentThread().getName(), took / 1_000_000, data.length, off, attempts, s.node,
                            (System.nanoTime() - t) / 1_000_000));
                }
                return s;
            } catch (IOException e) {
                attempts.append("; failed through ").append(s.node).append(" after ")
                        .append((System.nanoTime() - t) / 1_000_000).append(" ms: ").append(e.getMessage());
                failedAttempts.incrementAndGet();
                countReason(e);
                if (System.nanoTime() - start > GIVE_UP_NANOS) {
                    throw new AssertionError("a write at " + off + " (" + data.length + " bytes) failed for "
                            + GIVE_UP_NANOS / 1_000_000_000 + " s; last error through " + s.node + ": " + e);
                }
                s = reconnect(s);
            }
        }
    }

    private Session readAndCompare(Session s, long off, int len) {
        long start = System.nanoTime();
        while (true) {
            try {
                byte[] got = s.volume.read(off, len);
                reads.incrementAndGet();
                String diff = diff(got, off);
                if (diff != null) problems.add("read-back through " + s.node + ": " + diff);
                return s;
            } catch (IOException e) {
                failedAttempts.incrementAndGet();
                countReason(e);
                if (System.nanoTime() - start > GIVE_UP_NANOS) {
                    throw new AssertionError("a read at " + off + " (" + len + " bytes) failed for "
                            + GIVE_UP_NANOS / 1_000_000_000 + " s; last error through " + s.node + ": " + e);
                }
                s = reconnect(s);
            }
        }
    }

    private void countReason(IOException e) {
        String why = e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage()).replaceAll("[0-9.]+:[0-9]+", "NODE");
        failureReasons.computeIfAbsent(why, k -> new AtomicLong()).incrementAndGet();
    }

    /** The reasons of failed attempts and how often each occurred. */
    java.util.Map<String, Long> failureReasons() {
        java.util.Map<String, Long> m = new java.util.TreeMap<>();
        failureReasons.forEach((k, v) -> m.put(k, v.get()));
        return m;
    }

    private Session reconnect(Session s) {
        s.close();
        reconnects.incrementAndGet();
        SheepNode.sleep(20);
        return open();
    }

    // ------------------------------------------------------------------ verification

    /** Null if {@code got} equals what was acknowledged at {@code off}, else where and how it differs. */
    String diff(byte[] got, long off) {
        int first = -1, last = -1;
        for (int i = 0; i < got.length; i++) {
            if (got[i] != expected[(int) off + i]) {
                if (first < 0) first = i;
                last = i;
            }
        }
        if (first < 0) return null;
        long a = off + first, b = off + last;
        return String.format("bytes %d..%d differ (object %d, offsets %d..%d in it): got %02x, acknowledged %02x",
                a, b, a / objectSize, a % objectSize, b % objectSize, got[first], expected[(int) a]);
    }

    /** Reads the whole VDI through {@code node} and returns the differences from what was acknowledged. */
    List<String> verifyThrough(SheepNode node) throws IOException {
        List<String> out = new ArrayList<>();
        try (SheepConnection c = cluster.connect(node)) {
            Volume v = Volume.openReadOnly(new SheepClient(c), vdi, 0, "");
            for (long off = 0; off < size; off += objectSize) {
                String d = diff(v.read(off, (int) objectSize), off);
                if (d != null) out.add("through " + node + ": " + d);
            }
        }
        return out;
    }

    /** What was acknowledged for object {@code idx} (the whole object). */
    byte[] expectedObject(long idx) {
        byte[] o = new byte[(int) objectSize];
        System.arraycopy(expected, (int) (idx * objectSize), o, 0, o.length);
        return o;
    }

    static List<String> firstFew(List<String> l) {
        return l.size() <= 10 ? l : Collections.unmodifiableList(l.subList(0, 10));
    }
}
