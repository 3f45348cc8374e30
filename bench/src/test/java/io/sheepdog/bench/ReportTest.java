package io.sheepdog.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.sheepdog.bench.report.FioResult;
import io.sheepdog.bench.report.Json;
import io.sheepdog.bench.report.MachineInfo;
import io.sheepdog.bench.report.Manifest;
import io.sheepdog.bench.report.Report;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The results writer on real fio output (fio's null engine: no disk, a fraction of a second). */
class ReportTest {
    @TempDir Path dir;

    static boolean hasFio() {
        for (String p : System.getenv().getOrDefault("PATH", "").split(":")) if (Files.isExecutable(Path.of(p, "fio"))) return true;
        return false;
    }

    private String fio(String name, String rw, String bs, int qd) throws Exception {
        Path out = dir.resolve(name + ".json");
        Process p = new ProcessBuilder("fio", "--name=" + name, "--ioengine=null", "--rw=" + rw, "--bs=" + bs, "--iodepth=" + qd,
                "--size=64m", "--time_based", "--runtime=100ms", "--lat_percentiles=1", "--output-format=json", "--output=" + out)
                .redirectErrorStream(true).redirectOutput(dir.resolve(name + ".log").toFile()).start();
        try {
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "fio did not finish");
        } finally {
            p.destroyForcibly();
        }
        assertEquals(0, p.exitValue(), () -> "fio failed: " + readQuietly(dir.resolve(name + ".log")));
        return out.getFileName().toString();
    }

    private static String readQuietly(Path p) {
        try { return Files.readString(p); } catch (Exception e) { return e.toString(); }
    }

    @Test void fioFiguresRatiosAndTargets() throws Exception {
        assumeTrue(hasFio(), "fio is not installed");
        String a = fio("a", "randwrite", "4k", 16);
        String b = fio("b", "randwrite", "4k", 16);
        FioResult ra = FioResult.read(dir.resolve(a), "write");
        assertTrue(ra.iops() > 0 && ra.mibPerSec() > 0, ra.toString());
        assertTrue(ra.latMedianUs() >= 0 && ra.latP99Us() >= ra.latMedianUs(), ra.toString());
        FioResult rb = FioResult.read(dir.resolve(b), "write");
        String c3 = fio("c3", "randwrite", "4k", 16);
        FioResult rc = FioResult.read(dir.resolve(c3), "write");
        assertTrue(rc.ios() > 0, rc.toString());
        // the three sheeps used 250 us of CPU per request fio completed
        double cpuUs = 250 * rc.ios();

        Path manifest = dir.resolve("manifest.tsv");
        Files.writeString(manifest, String.join("\n",
                "meta\tdate\t2026-01-01T00:00:00Z",
                "meta\tmode\tsmoke",
                "meta\tcomplete\t1",
                "cmd\tformat\tdog cluster format -c 1",
                "fio\trandwrite-4k-qd16\twrite\tiops\tsheep-c1\t1\t" + a + "\tfio --name=a",
                "fio\trandwrite-4k-qd16\twrite\tiops\tqemu-nbd\t1\t" + b + "\tfio --name=b",
                "fio\trandwrite-4k-qd16\twrite\tiops\tsheep-c3\t1\t" + c3 + "\tfio --name=c3",
                "cpu\trandwrite-4k-qd16\tsheep-c3\t1\t" + cpuUs + "\tpids 1 2 3",
                "value\tprotocol\tdd-fdatasync\t300\tMiB/s\tdd if=x of=y bs=4M conv=fdatasync",
                "value\tprotocol\tdog-vdi-write-c3\t40\tMiB/s\tdog vdi write x",
                "value\tscale\tvdis\t10000\tVDIs\tCreateVdis",
                "value\tscale\tdog-vdi-list\t1.5\ts\tdog vdi list",
                "series\tstartup\tdog-node-list\tms\t120,140,200\tdog node list",
                "value\tbreakdown\tthe disk alone: a synced 4 KiB write, 1 writer, round 1\t100\tus\tfio --name=disk",
                "value\tbreakdown\tthe disk alone: a synced 4 KiB write, 3 writers at once, round 1\t230\tus\tfio --name=disk --numjobs=3",
                "value\tbreakdown\tthe disk alone: a synced 4 KiB write, 1 writer, round 2\t80\tus\tfio --name=disk",
                "value\tbreakdown\tthe disk alone: a synced 4 KiB write, 3 writers at once, round 2\t210\tus\tfio --name=disk --numjobs=3",
                "rss\tsheep-c1\tc1-node0\t1234\t204800",
                "rss\tsheep-c3\tc3-node0\t1235\t307200",
                "note\tsomething worth knowing",
                ""));
        Report r = Report.build(Manifest.read(manifest), MachineInfo.collect(dir));
        r.write(dir.resolve("out"));

        Map<String, Object> t = targets(r).get("NBD 4 KiB random write QD16, copies=1 vs qemu-nbd");
        double ratio = (Double) t.get("measured");
        assertEquals(ra.iops() / rb.iops(), ratio, 1e-9);
        assertEquals(ratio >= 1.0 ? "met" : "MISSED", t.get("status"));
        assertEquals("not measured", targets(r).get("NBD 1 MiB sequential read, copies=1 vs qemu-nbd").get("status"));
        Map<String, Object> cpu = targets(r).get("CPU per 4 KiB random write QD16, copies=3, summed over the 3 sheeps (issue 16)");
        assertEquals(250.0, (Double) cpu.get("measured"), 1e-6);
        assertEquals("met", cpu.get("status"));
        Map<String, Object> c3ratio = targets(r).get("NBD 4 KiB random write QD16, copies=3 on 3 local nodes vs qemu-nbd (issue 16)");
        assertEquals(rc.iops() / rb.iops(), (Double) c3ratio.get("measured"), 1e-9);
        Map<String, Object> qd1 = targets(r).get("NBD 4 KiB random write QD1 median latency, copies=3 vs our copies=1 (issue 16)");
        assertEquals("not measured", qd1.get("status"));
        // the disk's own bound, from the means over the rounds: 220 / 90
        assertEquals("the disk alone: 3 synced writes at once take 2.44x one (220 vs 90 us)", qd1.get("detail"));
        // 40 / (300 / 3) = 0.4 < 0.5
        Map<String, Object> dog = targets(r).get("dog vdi write, copies=3, 3 local nodes vs (dd fdatasync / 3)");
        assertEquals(0.4, (Double) dog.get("measured"), 1e-9);
        assertEquals("MISSED", dog.get("status"));
        assertEquals("met", targets(r).get("dog node list wall time (median)").get("status")); // median 140
        assertEquals("MISSED", targets(r).get("dog vdi list with 10,000 VDIs").get("status"));
        Map<String, Object> rss = targets(r).get("sheep peak RSS under the fio load (largest sheep)");
        assertEquals(300.0, (Double) rss.get("measured"), 1e-9);
        assertEquals("MISSED", rss.get("status"));

        // the JSON we wrote reads back, and the markdown has every part
        Object back = Json.parse(Files.readString(dir.resolve("out/results.json")));
        assertEquals("smoke", Json.at(back, "mode"));
        assertEquals(12, ((List<?>) Json.at(back, "targets")).size());
        Object c3Row = ((List<?>) Json.at(back, "nbd")).getFirst();
        assertEquals(250.0, Json.num(c3Row, "systems", "sheep-c3", "cpu_per_op_us"), 1e-6);
        assertTrue(Double.isNaN(Json.num(c3Row, "systems", "qemu-nbd", "cpu_per_op_us")), "no cpu record, no figure");
        assertTrue(Json.num(back, "machine", "cpus") >= 1);
        String md = Files.readString(dir.resolve("out/results.md"));
        for (String s : List.of("## Targets", "## NBD", "## Sheepdog protocol", "## Scale", "## Start-up", "## Memory",
                "## Exact commands", "CPU/op (us)", "| 250 |", "dog cluster format -c 1", "dd if=x of=y bs=4M conv=fdatasync", "something worth knowing")) {
            assertTrue(md.contains(s), () -> "results.md lacks '" + s + "':\n" + md);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Map<String, Object>> targets(Report r) {
        Map<String, Map<String, Object>> m = new java.util.LinkedHashMap<>();
        for (Map<String, Object> t : r.targets()) m.put((String) t.get("target"), t);
        return m;
    }

    @Test void jsonRoundTripAndMedian() {
        Object v = Json.parse("noise before {\"a\": [1, 2.5, -3e2, true, null, \"x\\\"y\\u0041\"], \"b\": {}}");
        assertEquals(1L, Json.at(v, "a", 0));
        assertEquals(2.5, Json.num(v, "a", 1));
        assertEquals(-300.0, Json.num(v, "a", 2));
        assertEquals("x\"yA", Json.at(v, "a", 5));
        assertEquals(Json.write(v), Json.write(Json.parse(Json.write(v))));
        assertEquals(2.0, Report.median(new double[] {3, 1, 2}));
        assertEquals(2.5, Report.median(new double[] {4, 1, 2, 3}));
    }
}
