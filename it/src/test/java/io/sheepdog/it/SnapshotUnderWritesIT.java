package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Snapshots of a VDI taken with {@code dog vdi snapshot} while a {@link CheckedNbdWriter} writes it at queue depth 8,
 * as an operator snapshots a running VM. A small VDI (8 objects) so that writes in flight at the moment of a snapshot
 * often share an object with the first writes after it (the copy-on-write of that object). Afterwards:
 * <ul>
 *   <li>the working VDI holds every acknowledged write (through two nodes): a write acknowledged around a snapshot
 *       must not end up in the snapshot only;</li>
 *   <li>every snapshot is a point in time: each block holds a write no older than the last one acknowledged before
 *       the snapshot was asked for, and none begun after it was made;</li>
 *   <li>older snapshots, judged first, are deleted while the writes go on, and nothing the working VDI still reads
 *       through them goes with them;</li>
 *   <li>{@code dog vdi check} and {@code dog cluster check} are clean.</li>
 * </ul>
 */
@ExtendWith(MiniClusterExtension.class)
class SnapshotUnderWritesIT {
    private static final long MiB = 1 << 20;
    /** 8 in the suite (each judged snapshot is a 64 MiB read); more with {@code -Dsheepdog.it.snapshots=N}. */
    private static final int SNAPSHOTS = Integer.getInteger("sheepdog.it.snapshots", 8);
    /** 16 objects: the writer's first pass creates them one after the other while snapshots are taken. */
    private static final long SIZE_MIB = 64;

    /** Snapshots kept: older ones are judged and deleted while the writes go on. */
    private static final int KEPT = 4;

    private record Taken(String tag, Map<Long, Long> floor, long ceiling) {}

    /** Reads snapshot {@code t} through node 1 and judges it as a point in time; a bad verdict goes into {@code bad}. */
    private static CheckedNbdWriter.Verdict check(CheckedNbdWriter w, MiniCluster c, Taken t, List<String> bad) throws java.io.IOException {
        CheckedNbdWriter.Verdict d = w.verifyPointInTime(c.node(1).nbdPort(), "v@" + t.tag(), t.floor(), t.ceiling());
        if (!d.clean()) bad.add(t.tag() + ": " + d);
        return d;
    }

    /** {@code nbd}: the writer on this sheep's NBD export; {@code qemu52}: through QEMU 5.2's sheepdog driver (qemu-nbd). */
    @ParameterizedTest(name = "redundancy {0}, through {1}")
    @CsvSource({"3, nbd", "2:1, nbd", "3, qemu52"})
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void snapshotsOfAVdiUnderWritesArePointsInTimeAndLoseNothing(String redundancy, String through) throws Exception {
        boolean ec = redundancy.contains(":");
        boolean qemu = through.equals("qemu52");
        if (qemu) Qemu52.require();
        long seed = System.nanoTime();
        KillRestartIT.log("[snapshot] seed " + seed);
        SplittableRandom rnd = new SplittableRandom(seed);
        Qemu52.Server qemuNbd = null;
        try (MiniCluster c = MiniCluster.builder().name("snap-" + (ec ? "ec" : "3") + "-" + through).nodes(3).copies(3).sync(true).build().start()) {
            if (ec) c.dog("vdi", "create", "-c", redundancy, "v", SIZE_MIB + "M").assertOk();
            else c.dog("vdi", "create", "v", SIZE_MIB + "M").assertOk();
            int port;
            if (qemu) {
                qemuNbd = Qemu52.serve(c.node(0), "v", c.dir());
                port = qemuNbd.port();
            } else {
                port = c.node(0).nbdPort();
            }
            CheckedNbdWriter w = new CheckedNbdWriter("v", SIZE_MIB * MiB, () -> List.of(port), 8,
                    c.dir().resolve("acks.log")).start(seed);
            List<Taken> taken = new ArrayList<>();
            List<CheckedNbdWriter.Verdict> judged = new ArrayList<>();
            List<String> bad = new ArrayList<>();
            long longestSnapshotMs = 0;
            try {
                assertTrue(w.awaitAcks(200, 60), "the writer got going: " + w.progress());
                // from its first pass on (objects being created), often: each snapshot makes the next writes copy
                for (int i = 0; i < SNAPSHOTS; i++) {
                    Thread.sleep(50 + rnd.nextInt(400));
                    Map<Long, Long> floor = w.ackedNow();
                    String tag = "s" + i;
                    // through node 1 or 2: the snapshot's cluster operation comes from another node than the writes
                    long t0 = System.nanoTime();
                    c.dogAt(c.node(1 + rnd.nextInt(2)), null, "vdi", "snapshot", "-s", tag, "v").assertOk();
                    longestSnapshotMs = Math.max(longestSnapshotMs, (System.nanoTime() - t0) / 1_000_000);
                    taken.add(new Taken(tag, floor, w.lastSequence()));
                    assertTrue(w.awaitAcks(100, 30), "writes go on after snapshot " + tag + ": " + w.progress());
                    if (taken.size() > KEPT) {
                        // the oldest one is judged, then deleted while the writes go on: the working VDI still
                        // shares objects with it, which must stay until nothing names them
                        Taken old = taken.removeFirst();
                        judged.add(check(w, c, old, bad));
                        c.dogAt(c.node(1 + rnd.nextInt(2)), null, "vdi", "delete", "-s", old.tag(), "v").assertOk();
                    }
                }
            } finally {
                w.close();
                if (qemuNbd != null) qemuNbd.close();
            }
            CheckedNbdWriter.Verification v = w.verifyThrough(c.node(0).nbdPort(), c.node(2).nbdPort());
            for (Taken t : taken) judged.add(check(w, c, t, bad));
            long snapLost = judged.stream().mapToLong(CheckedNbdWriter.Verdict::lost).sum();
            long snapMismatched = judged.stream().mapToLong(CheckedNbdWriter.Verdict::mismatched).sum();
            String fig = String.format("SNAPSHOTS UNDER WRITES, redundancy %s, through %s: %d snapshots, acknowledged %d, working VDI lost %d, "
                    + "mismatched %d; snapshots: lost %d, mismatched %d; error replies %s; longest dog vdi snapshot %d ms, "
                    + "longest stall %d ms", redundancy, through, judged.size(), w.acknowledged(), v.lost(), v.mismatched(),
                    snapLost, snapMismatched, w.errorReplies(), longestSnapshotMs, w.longestStallMs());
            CheckedNbdWriter.record(fig);
            bad.forEach(b -> KillRestartIT.log("[snapshot] " + b));
            v.assertClean();
            assertTrue(bad.isEmpty(), "every snapshot is a point in time: " + bad);
            assertEquals(0L, w.errorReplyCount(), "no error reply: " + fig);
            c.dog("vdi", "check", "v").assertOk();
            CommandResult check = c.dog("cluster", "check");
            assertEquals(0, check.exitCode(), check.toString());
        }
    }
}
