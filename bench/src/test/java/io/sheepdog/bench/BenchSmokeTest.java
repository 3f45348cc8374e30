package io.sheepdog.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.sheepdog.bench.report.Json;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs {@code bench/run.sh --smoke} (real sheeps, real dog, real fio and qemu-nbd, tiny sizes) so the suite cannot rot,
 * and checks that it wrote results with a value for every measurement. Skipped when sheep and dog are not packaged
 * ({@code mvn package} builds them before this module's tests) or fio/qemu-nbd are missing. Asserts nothing about speed.
 */
class BenchSmokeTest {
    @TempDir Path tmp;

    static Path repoRoot() {
        Path here = Path.of(System.getProperty("user.dir")).toAbsolutePath();
        return Files.isRegularFile(here.resolve("run.sh")) ? here.getParent() : here;
    }

    static boolean onPath(String tool) {
        for (String p : System.getenv().getOrDefault("PATH", "").split(":")) if (Files.isExecutable(Path.of(p, tool))) return true;
        return false;
    }

    /** The module's jar exists and holds {@code mainClass}. */
    static boolean packaged(Path root, String module, String mainClass) {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(root.resolve(module + "/target"), "sheepdog-" + module + "-*.jar")) {
            for (Path jar : ds) {
                try (ZipFile z = new ZipFile(jar.toFile())) {
                    if (z.getEntry(mainClass.replace('.', '/') + ".class") != null && Files.isDirectory(root.resolve(module + "/target/lib"))) return true;
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    @Test
    @Timeout(value = 480, unit = TimeUnit.SECONDS)
    void smokeRunWritesSaneResults() throws Exception {
        Path root = repoRoot();
        assumeTrue(packaged(root, "sheep", "io.sheepdog.sheep.SheepMain"), "sheep is not packaged: run mvn package");
        assumeTrue(packaged(root, "dog", "io.sheepdog.dog.DogMain"), "dog is not packaged: run mvn package");
        boolean tools = onPath("fio") && onPath("qemu-nbd") && onPath("qemu-img");
        // like the integration tests: a missing tool skips the test, except in CI, where it must be installed
        if ("true".equals(System.getenv("CI"))) assertTrue(tools, "fio, qemu-nbd or qemu-img is not installed");
        assumeTrue(tools, "fio, qemu-nbd or qemu-img is not installed");

        Path out = tmp.resolve("out");
        Path data = tmp.resolve("data");
        Files.createDirectories(data);
        ProcessBuilder pb = new ProcessBuilder("bash", root.resolve("bench/run.sh").toString(), "--smoke", "--no-build", "--warmup", "1",
                "--out", out.toString(), "--tmp", data.toString())
                .directory(root.toFile()).redirectErrorStream(true).redirectOutput(tmp.resolve("run.log").toFile());
        // the suite's JMH and report writer run from this test's class path (target/classes, not a packaged jar)
        pb.environment().put("BENCH_CP", System.getProperty("java.class.path"));
        Process p = pb.start();
        try {
            boolean done = p.waitFor(400, TimeUnit.SECONDS);
            if (!done) {
                p.destroy(); // SIGTERM: run.sh's trap stops the sheeps and qemu-nbd it started
                p.waitFor(30, TimeUnit.SECONDS);
            }
            assertTrue(done, () -> "run.sh --smoke did not finish in 400 s:\n" + log());
        } finally {
            p.destroyForcibly();
        }
        assertEquals(0, p.exitValue(), () -> "run.sh --smoke failed:\n" + log());

        // the temporary data directory is gone; only the results stay
        try (var s = Files.list(data)) {
            assertFalse(s.findAny().isPresent(), "run.sh left data behind in " + data);
        }
        Object doc = Json.parse(Files.readString(out.resolve("results.json")));
        assertEquals("smoke", Json.at(doc, "mode"));
        assertEquals(Boolean.TRUE, Json.at(doc, "complete"));
        assertEquals(List.of(), Json.at(doc, "problems"));

        List<?> nbd = (List<?>) Json.at(doc, "nbd");
        assertEquals(6, nbd.size(), "NBD cases");
        for (Object c : nbd) {
            Map<?, ?> systems = (Map<?, ?>) Json.at(c, "systems");
            assertEquals(java.util.Set.of("sheep-c1", "qemu-nbd", "sheep-c3", "sheep-c3-ec21", "qemu-nbd-directsync"),
                    systems.keySet(), () -> "systems of " + Json.at(c, "case"));
            for (Object s : systems.values()) {
                assertTrue(Json.num(s, "iops") > 0, () -> "IOPS of " + Json.at(c, "case") + ": " + s);
                assertTrue(Json.num(s, "lat_median_us") > 0, () -> "latency of " + Json.at(c, "case") + ": " + s);
                // CPU per request of the system's processes (0 is possible: a smoke run is shorter than a clock tick)
                assertTrue(Json.num(s, "cpu_per_op_us") >= 0, () -> "CPU per request of " + Json.at(c, "case") + ": " + s);
            }
            // each of our systems over qemu-nbd and over qemu-nbd-directsync
            java.util.Set<String> pairs = new java.util.HashSet<>();
            for (String ours : List.of("sheep-c1", "sheep-c3", "sheep-c3-ec21")) {
                for (String ref : List.of("qemu-nbd", "qemu-nbd-directsync")) pairs.add(ours + "/" + ref);
            }
            assertEquals(pairs, ((Map<?, ?>) Json.at(c, "ratios")).keySet().stream().map(Object::toString)
                    .filter(k -> !k.contains("round")).collect(java.util.stream.Collectors.toSet()), () -> "ratios of " + Json.at(c, "case"));
        }
        for (String name : List.of("dd-fdatasync", "dog-vdi-write-c1", "dog-vdi-write-c3", "dog-vdi-read-c1", "dog-vdi-read-c3")) {
            assertTrue(valueOf(doc, "protocol", name) > 0, name);
        }
        assertEquals(20, valueOf(doc, "scale", "vdis"));
        assertTrue(valueOf(doc, "scale", "dog-vdi-list") > 0);
        assertTrue(valueOf(doc, "scale", "dog-vdi-create") > 0);
        assertTrue(Json.num(doc, "startup", 0, "median") > 0);
        List<?> micro = (List<?>) Json.at(doc, "micro");
        assertTrue(micro.size() >= 13, "JMH results: " + micro.size());
        for (Object m : micro) assertTrue(Json.num(m, "score") > 0, () -> "JMH score: " + m);
        List<?> mem = (List<?>) Json.at(doc, "memory");
        assertEquals(4, mem.size());
        for (Object m : mem) assertTrue(Json.num(m, "peak_rss_mib") > 10, () -> "RSS: " + m);
        for (Object t : (List<?>) Json.at(doc, "targets")) {
            assertTrue(List.of("met", "MISSED").contains(Json.at(t, "status")), () -> "target not measured: " + t);
        }
        // the replicated QD1 write's breakdown: every part measured, the parts inside the client write no longer than it
        double write = valueOf(doc, "breakdown", "client write at the gateway (node 0), round 1");
        double local = valueOf(doc, "breakdown", "its local copy (store write and sync), round 1");
        double remote = valueOf(doc, "breakdown", "its wait for the 2 remote copies, round 1");
        double replica = valueOf(doc, "breakdown", "a remote copy on its node (store write and sync), round 1");
        assertTrue(write > 0 && local > 0 && remote > 0 && replica > 0, () -> "breakdown: " + Json.at(doc, "breakdown"));
        assertTrue(local <= write && remote <= write && replica <= remote, () -> "breakdown: " + Json.at(doc, "breakdown"));
        for (String s : List.of("sheep-c1", "sheep-c3", "qemu-nbd")) {
            assertTrue(Files.isRegularFile(out.resolve("raw/fio/warmup-randwrite-" + s + ".json")), "warm-up of " + s);
        }
        String md = Files.readString(out.resolve("results.md"));
        for (String s : List.of("## Targets", "## NBD", "## Micro benchmarks", "## Exact commands", "qemu-nbd -f raw", "conv=fdatasync",
                "## Where a replicated QD1 write's time goes", "CPU/op (us)")) {
            assertTrue(md.contains(s), () -> "results.md lacks '" + s + "'");
        }
    }

    private String log() {
        try {
            String s = Files.readString(tmp.resolve("run.log"));
            return s.length() > 20_000 ? s.substring(s.length() - 20_000) : s;
        } catch (IOException e) {
            return e.toString();
        }
    }

    private static double valueOf(Object doc, String section, String name) {
        for (Object v : (List<?>) Json.at(doc, section)) if (name.equals(Json.at(v, "name"))) return Json.num(v, "value");
        return Double.NaN;
    }
}
