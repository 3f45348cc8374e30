package io.sheepdog.it;

import java.io.BufferedWriter;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.zip.CRC32C;

/**
 * A checked writer over NBD, as a fault test outside the project would write one: every 4 KiB block it writes
 * carries its offset, a sequence number and a CRC over the rest of the block; a write counts as acknowledged only
 * once the server's reply is in, and only then goes into the acknowledgement log (a file, one line per ack). At the
 * end every block must hold its last acknowledged write or a later write that was sent but never acknowledged
 * (failed, or lost with a connection): never an older one, never a torn or foreign one, never zeros after an ack.
 *
 * <p>One NBD connection (the VDI lock admits one writer) with {@code depth} requests in flight. When the connection
 * breaks it reconnects through the next node of {@link #gateways}. Error replies are counted by errno (5 EIO, 28
 * ENOSPC, ...), and the longest time without any acknowledgement is measured.
 */
final class CheckedNbdWriter implements AutoCloseable {
    static final int BLOCK = 4096;
    private static final long REQUEST_MAGIC = 0x25609513L;
    private static final int REPLY_MAGIC = 0x67446698;
    private static final long OPTS_MAGIC = 0x49484156454F5054L; // "IHAVEOPT"
    private static final long OPT_REPLY_MAGIC = 0x3e889045565a9L;
    static final int CMD_READ = 0, CMD_WRITE = 1, CMD_DISC = 2;

    private final String export;
    private final long blocks;
    private final Supplier<List<Integer>> gateways;
    private final int depth;
    private final Path ackLog;
    /** block -> sequence number of its last acknowledged write (absent: none). */
    private final ConcurrentHashMap<Long, Long> acked = new ConcurrentHashMap<>();
    /** block -> sequence numbers sent after its last ack whose fate is unknown (failed or lost). */
    private final ConcurrentHashMap<Long, ConcurrentSkipListSet<Long>> unsure = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Integer, AtomicLong> errors = new ConcurrentHashMap<>();
    private final AtomicLong ackCount = new AtomicLong();
    /** The last sequence number handed to a write (sequence numbers rise across blocks and reconnects). */
    private final AtomicLong seqs = new AtomicLong();
    /** The first error replies: when, which errno, which blocks (for the log of a failed run). */
    private final java.util.concurrent.ConcurrentLinkedQueue<String> errorEvents = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final AtomicLong reconnects = new AtomicLong();
    private volatile long lastAckNanos = System.nanoTime();
    private volatile long longestStallNanos;
    private volatile long pauseStallFrom;
    private volatile boolean stop;
    private Thread thread;
    private volatile Throwable died;

    /**
     * @param export   the VDI name
     * @param size     bytes of the VDI to write (a multiple of 4 KiB)
     * @param gateways the NBD ports to connect through, in order of preference (asked again at each reconnect)
     * @param ackLog   where the acknowledgement log goes
     */
    CheckedNbdWriter(String export, long size, Supplier<List<Integer>> gateways, int depth, Path ackLog) {
        this.export = export;
        this.blocks = size / BLOCK;
        this.gateways = gateways;
        this.depth = depth;
        this.ackLog = ackLog;
    }

    // ------------------------------------------------------------------ the block format

    /** The bytes of write {@code seq} of block {@code block}: offset, seq, filler from both, CRC32C at the end. */
    static byte[] block(long block, long seq) {
        ByteBuffer b = ByteBuffer.allocate(BLOCK);
        b.putLong(block * BLOCK).putLong(seq);
        SplittableRandom r = new SplittableRandom(block * 1_000_003L ^ seq);
        while (b.position() < BLOCK - 4) b.put((byte) r.nextInt());
        CRC32C c = new CRC32C();
        c.update(b.array(), 0, BLOCK - 4);
        b.putInt((int) c.getValue());
        return b.array();
    }

    /** The sequence number a block read back holds; 0 for zeros; -1 if it is not a whole block of ours for there. */
    static long sequenceOf(long block, byte[] b, int at) {
        boolean zero = true;
        for (int i = 0; i < BLOCK && zero; i++) zero = b[at + i] == 0;
        if (zero) return 0;
        ByteBuffer bb = ByteBuffer.wrap(b, at, BLOCK);
        if (bb.getLong(at) != block * BLOCK) return -1;
        long seq = bb.getLong(at + 8);
        CRC32C c = new CRC32C();
        c.update(b, at, BLOCK - 4);
        if ((int) c.getValue() != bb.getInt(at + BLOCK - 4)) return -1;
        return java.util.Arrays.equals(b, at, at + BLOCK, block(block, seq), 0, BLOCK) ? seq : -1;
    }

    // ------------------------------------------------------------------ writing

    CheckedNbdWriter start(long seed) {
        thread = Thread.ofPlatform().name("checked-nbd-" + export).daemon(true).start(() -> {
            try {
                run(seed);
            } catch (Throwable t) {
                died = t;
            }
        });
        return this;
    }

    private void run(long seed) throws Exception {
        SplittableRandom rnd = new SplittableRandom(seed);
        try (BufferedWriter log = Files.newBufferedWriter(ackLog)) {
            // first every block once, in order, then random runs of 1 to 16 blocks
            long next = 0;
            while (!stop) {
                Conn c = connect();
                if (c == null) continue;
                try {
                    while (!stop) {
                        long first, n;
                        if (next < blocks) {
                            first = next;
                            n = Math.min(16, blocks - next);
                            next += n;
                        } else {
                            // never two writes of one block in flight: NBD does not order them
                            do {
                                n = 1 + rnd.nextInt(16);
                                first = rnd.nextLong(blocks - n + 1);
                            } while (c.overlaps(first, n));
                        }
                        c.write(first, (int) n, seqs.incrementAndGet(), log);
                    }
                    c.drain(log);
                    c.disconnect();
                } catch (IOException e) {
                    c.lost();
                    reconnects.incrementAndGet();
                }
            }
            log.flush();
        }
    }

    /** The next gateway that lets us in; null after a pause (the caller tries again). */
    private Conn connect() throws InterruptedException {
        for (int port : gateways.get()) {
            try {
                return new Conn(port);
            } catch (IOException e) {
                // down, or it still holds the VDI lock of our broken connection: the next one
            }
        }
        Thread.sleep(200);
        return null;
    }

    /** One NBD connection: requests in flight keyed by handle, replies read by their own thread. */
    private final class Conn {
        final Socket s;
        final DataOutputStream out;
        final DataInputStream in;
        final Semaphore slots = new Semaphore(depth);
        /** handle -> {first block, count, seq} */
        final Map<Long, long[]> inflight = new ConcurrentHashMap<>();
        /** Blocks with a write in flight. */
        final java.util.Set<Long> busy = ConcurrentHashMap.newKeySet();
        final Thread reader;
        volatile IOException broken;
        long handles;

        Conn(int port) throws IOException {
            s = new Socket();
            s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
            s.setTcpNoDelay(true);
            s.setSoTimeout(0);
            out = new DataOutputStream(new java.io.BufferedOutputStream(s.getOutputStream(), 1 << 16));
            in = new DataInputStream(new java.io.BufferedInputStream(s.getInputStream(), 1 << 16));
            try {
                handshake(in, out, export);
            } catch (IOException e) {
                s.close();
                throw e;
            }
            reader = Thread.ofPlatform().daemon(true).name("checked-nbd-reader").start(this::readReplies);
        }

        void write(long first, int n, long seq, BufferedWriter log) throws IOException, InterruptedException {
            while (!slots.tryAcquire(200, TimeUnit.MILLISECONDS)) {
                if (broken != null) throw broken;
                flushAcks(log);
            }
            if (broken != null) throw broken;
            for (long b = first; b < first + n; b++) {
                unsure.computeIfAbsent(b, k -> new ConcurrentSkipListSet<>()).add(seq);
            }
            long h = ++handles;
            for (long b = first; b < first + n; b++) busy.add(b);
            inflight.put(h, new long[] {first, n, seq});
            synchronized (out) {
                requestHeader(out, CMD_WRITE, h, first * BLOCK, n * BLOCK);
                for (long b = first; b < first + n; b++) out.write(block(b, seq));
                out.flush();
            }
            flushAcks(log);
        }

        boolean overlaps(long first, long n) {
            for (long b = first; b < first + n; b++) if (busy.contains(b)) return true;
            return false;
        }

        private final java.util.concurrent.ConcurrentLinkedQueue<String> toLog = new java.util.concurrent.ConcurrentLinkedQueue<>();

        private void flushAcks(BufferedWriter log) throws IOException {
            for (String l; (l = toLog.poll()) != null; ) log.write(l);
        }

        private void readReplies() {
            try {
                while (true) {
                    int magic = in.readInt();
                    if (magic != REPLY_MAGIC) throw new IOException("bad reply magic " + Integer.toHexString(magic));
                    int err = in.readInt();
                    long h = in.readLong();
                    long[] req = inflight.remove(h);
                    if (req == null) throw new IOException("reply to unknown handle " + h);
                    long now = System.nanoTime();
                    for (long b = req[0]; b < req[0] + req[1]; b++) busy.remove(b);
                    if (err == 0) {
                        for (long b = req[0]; b < req[0] + req[1]; b++) {
                            // the ack: this write is now the floor for the block
                            acked.merge(b, req[2], Math::max);
                            ConcurrentSkipListSet<Long> u = unsure.get(b);
                            if (u != null) u.headSet(req[2], true).clear();
                        }
                        toLog.add(req[0] + " " + req[1] + " " + req[2] + "\n");
                        ackCount.incrementAndGet();
                        noteAck(now);
                    } else {
                        errors.computeIfAbsent(err, k -> new AtomicLong()).incrementAndGet();
                        if (errorEvents.size() < 20) {
                            errorEvents.add(java.time.LocalTime.now() + " errno " + err + " writing blocks " + req[0] + "+" + req[1]);
                        }
                    }
                    slots.release();
                }
            } catch (IOException e) {
                broken = e;
                slots.release(depth);
            }
        }

        void drain(BufferedWriter log) throws IOException, InterruptedException {
            long until = System.nanoTime() + 60_000_000_000L;
            while (!inflight.isEmpty() && broken == null && System.nanoTime() < until) {
                Thread.sleep(10);
                flushAcks(log);
            }
            flushAcks(log);
            if (!inflight.isEmpty()) throw broken != null ? broken : new IOException("replies never came");
        }

        void disconnect() throws IOException {
            synchronized (out) {
                requestHeader(out, CMD_DISC, 0, 0, 0);
                out.flush();
            }
            s.close();
        }

        /** The connection broke: what was in flight stays unsure (it may or may not have landed). */
        void lost() {
            try { s.close(); } catch (IOException ignored) { }
            inflight.clear();
        }
    }

    private void noteAck(long now) {
        long gap = now - lastAckNanos;
        if (gap > longestStallNanos) longestStallNanos = gap;
        lastAckNanos = now;
    }

    /** Writes an NBD request's header (no flags), not flushed. */
    static void requestHeader(DataOutputStream out, int type, long handle, long offset, int length) throws IOException {
        out.writeInt((int) REQUEST_MAGIC);
        out.writeShort(0);
        out.writeShort(type);
        out.writeLong(handle);
        out.writeLong(offset);
        out.writeInt(length);
    }

    /** Fixed newstyle handshake with NBD_OPT_GO; a refusal (the server's message) is an IOException. */
    static long handshake(DataInputStream in, DataOutputStream out, String export) throws IOException {
        if (in.readLong() != 0x4e42444d41474943L || in.readLong() != OPTS_MAGIC) throw new IOException("not an NBD server");
        in.readUnsignedShort();
        out.writeInt(1 | 2); // fixed newstyle, no zeroes
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        out.writeLong(OPTS_MAGIC);
        out.writeInt(7); // NBD_OPT_GO
        out.writeInt(4 + name.length + 2);
        out.writeInt(name.length);
        out.write(name);
        out.writeShort(0);
        out.flush();
        long size = -1;
        while (true) {
            if (in.readLong() != OPT_REPLY_MAGIC) throw new IOException("bad option reply");
            in.readInt();
            int type = in.readInt();
            byte[] data = new byte[in.readInt()];
            in.readFully(data);
            if (type == 1) return size; // ACK
            if (type == 3 && data.length >= 10 && ByteBuffer.wrap(data).getShort(0) == 0) size = ByteBuffer.wrap(data).getLong(2);
            if (type < 0) throw new IOException("refused: " + new String(data, StandardCharsets.UTF_8));
        }
    }

    // ------------------------------------------------------------------ the run's figures

    long acknowledged() { return ackCount.get(); }

    Map<Integer, Long> errorReplies() {
        Map<Integer, Long> m = new TreeMap<>();
        errors.forEach((k, v) -> m.put(k, v.get()));
        return m;
    }

    /** Error replies of every errno together. */
    long errorReplyCount() {
        long n = 0;
        for (AtomicLong a : errors.values()) n += a.get();
        return n;
    }

    long errorReplies(int errno) {
        AtomicLong a = errors.get(errno);
        return a == null ? 0 : a.get();
    }

    long reconnects() { return reconnects.get(); }

    List<String> errorEvents() { return List.copyOf(errorEvents); }

    /** The figures so far, for a scenario's log and assertion messages. */
    String progress() {
        return String.format("acknowledged %d, error replies %s, longest stall %d ms", acknowledged(), errorReplies(),
                longestStallMs());
    }

    /** The longest time without an acknowledgement while writing, outside windows excluded with {@link #exempt}. */
    long longestStallMs() { return TimeUnit.NANOSECONDS.toMillis(longestStallNanos); }

    /** Resets the stall clock: a window the test expects to stall (e.g. fewer zones than data strips) ends here. */
    void exempt() { lastAckNanos = System.nanoTime(); }

    /** Waits until {@code n} more writes were acknowledged; false after {@code seconds}. */
    boolean awaitAcks(long n, int seconds) throws InterruptedException {
        long target = ackCount.get() + n, until = System.nanoTime() + seconds * 1_000_000_000L;
        while (ackCount.get() < target && System.nanoTime() < until) {
            if (died != null) throw new IllegalStateException("writer died", died);
            Thread.sleep(20);
        }
        return ackCount.get() >= target;
    }

    @Override
    public void close() throws InterruptedException {
        stop = true;
        if (thread != null) thread.join(120_000);
        if (died != null) throw new IllegalStateException("writer died", died);
    }

    // ------------------------------------------------------------------ verification

    /** What a read of the whole VDI through one node found. */
    record Verdict(int port, long blocks, long lost, long mismatched, List<String> examples, byte[] image) {
        boolean clean() { return lost == 0 && mismatched == 0; }

        @Override public String toString() {
            return String.format("through NBD port %d: %d blocks, %d lost (older than their last ack), %d mismatched "
                    + "(torn, foreign or never written)%s", port, blocks, lost, mismatched, examples.isEmpty() ? "" : " e.g. " + examples);
        }
    }

    /** What reads through several nodes found. */
    record Verification(List<Verdict> verdicts) {
        long lost() { return verdicts.stream().mapToLong(Verdict::lost).sum(); }

        long mismatched() { return verdicts.stream().mapToLong(Verdict::mismatched).sum(); }

        /** Every read clean, and every node read the same bytes. */
        void assertClean() {
            for (Verdict v : verdicts) org.junit.jupiter.api.Assertions.assertTrue(v.clean(), v.toString());
            for (Verdict v : verdicts) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(verdicts.getFirst().image(), v.image(),
                        "NBD ports " + verdicts.getFirst().port() + " and " + v.port() + " read the same bytes");
            }
        }
    }

    /** {@link #verify} through each of {@code ports} in turn. */
    Verification verifyThrough(int... ports) throws IOException {
        List<Verdict> out = new ArrayList<>();
        for (int p : ports) out.add(verify(p));
        return new Verification(out);
    }

    /** Logs a scenario's figures and appends them to {@code it/target/fault-figures.txt}. */
    static void record(String figures) throws IOException {
        KillRestartIT.log(figures);
        Files.writeString(MiniCluster.repoRoot().resolve("it/target/fault-figures.txt"), figures + "\n",
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
    }

    /** Reads every block through {@code port} (after {@link #close}) and judges each against the log. */
    Verdict verify(int port) throws IOException {
        long lost = 0, mismatched = 0;
        List<String> examples = new ArrayList<>();
        byte[] image = readImage(port, export);
        for (long b = 0; b < blocks; b++) {
            long got = sequenceOf(b, image, (int) (b * BLOCK));
            Long ack = acked.get(b);
            ConcurrentSkipListSet<Long> u = unsure.get(b);
            boolean ok = got >= 0 && (ack == null ? got == 0 || (u != null && u.contains(got))
                    : got == ack || (got > ack && u != null && u.contains(got)));
            if (ok) continue;
            if (got >= 0 && ack != null && got < ack) lost++;
            else mismatched++;
            if (examples.size() < 5) examples.add("block " + b + ": holds " + (got < 0 ? "garbage" : "seq " + got) + ", last ack " + ack);
        }
        return new Verdict(port, blocks, lost, mismatched, examples, image);
    }

    /** The whole VDI as {@code name} (the VDI, or {@code VDI@TAG}: a snapshot) reads through NBD port {@code port}. */
    private byte[] readImage(int port, String name) throws IOException {
        byte[] image = new byte[(int) (blocks * BLOCK)];
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
            s.setSoTimeout(120_000);
            DataOutputStream out = new DataOutputStream(new java.io.BufferedOutputStream(s.getOutputStream()));
            DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(s.getInputStream(), 1 << 16));
            handshake(in, out, name);
            int chunk = 256 * BLOCK;
            for (long off = 0; off < image.length; off += chunk) {
                int len = (int) Math.min(chunk, image.length - off);
                requestHeader(out, CMD_READ, off, off, len);
                out.flush();
                if (in.readInt() != REPLY_MAGIC) throw new IOException("bad reply magic");
                int err = in.readInt();
                in.readLong();
                if (err != 0) throw new IOException("read of " + name + " at " + off + " through port " + port + " failed: errno " + err);
                in.readFully(image, (int) off, len);
            }
        }
        return image;
    }

    // ------------------------------------------------------------------ point-in-time copies (snapshots)

    /** The acknowledgement floor now: block -> sequence number of its last acknowledged write. */
    Map<Long, Long> ackedNow() { return Map.copyOf(acked); }

    /** The last sequence number handed to a write so far: no write begun later has a higher one. */
    long lastSequence() { return seqs.get(); }

    /**
     * Judges a point-in-time copy (a snapshot taken while this writer ran) read as {@code name} through {@code port}:
     * {@code floor} is {@link #ackedNow} from just before the snapshot was asked for and {@code ceiling}
     * {@link #lastSequence} from just after it was made. Each block must hold a whole write of ours for that block no
     * older than its floor (an acknowledged write missing from the snapshot: lost) and no newer than the ceiling (a
     * write begun after the snapshot leaking into it: mismatched), or zeros if nothing was acknowledged there before.
     */
    Verdict verifyPointInTime(int port, String name, Map<Long, Long> floor, long ceiling) throws IOException {
        byte[] image = readImage(port, name);
        long lost = 0, mismatched = 0;
        List<String> examples = new ArrayList<>();
        for (long b = 0; b < blocks; b++) {
            long got = sequenceOf(b, image, (int) (b * BLOCK));
            Long min = floor.get(b);
            boolean ok = got >= 0 && got <= ceiling && (min == null || got >= min);
            if (ok) continue;
            if (got >= 0 && min != null && got < min) lost++;
            else mismatched++;
            if (examples.size() < 5) {
                examples.add("block " + b + ": holds " + (got < 0 ? "garbage" : "seq " + got) + ", acknowledged before: "
                        + min + ", last begun by the end: " + ceiling);
            }
        }
        return new Verdict(port, blocks, lost, mismatched, examples, image);
    }
}
