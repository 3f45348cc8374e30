package io.sheepdog.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Turns a {@link Manifest} into the results: a JSON document (everything, including every round) and a markdown
 * report (tables, the targets of the issue met or missed, the machine, and the exact commands).
 */
public final class Report {
    /** The reference side of the targets' NBD pairs. */
    public static final String REFERENCE = "qemu-nbd";

    /** Systems whose name starts with qemu-nbd are references (qemu-nbd and e.g. qemu-nbd-directsync); the others are ours. */
    static boolean isReference(String system) { return system.startsWith(REFERENCE); }

    /** NBD cases whose figure is a latency (lower is better); the others are throughput. */
    static boolean lowerIsBetter(String kind) { return kind.equals("lat"); }

    private final Manifest m;
    private final Map<String, Object> machine;
    final Map<String, Object> doc = new LinkedHashMap<>();
    private final List<Map<String, Object>> targets = new ArrayList<>();
    // case -> system -> per-round results
    private final Map<String, Map<String, List<FioResult>>> nbd = new LinkedHashMap<>();
    // case -> system -> CPU per operation (us) of each round that has a cpu record
    private final Map<String, Map<String, List<Double>>> cpuPerOp = new LinkedHashMap<>();
    private final Map<String, String[]> caseInfo = new LinkedHashMap<>(); // case -> {rw, kind}
    private final List<String> systems = new ArrayList<>();
    private final List<String> problems = new ArrayList<>();

    public Report(Manifest m, Map<String, Object> machine) {
        this.m = m;
        this.machine = machine;
    }

    public static Report build(Manifest m, Map<String, Object> machine) throws IOException {
        Report r = new Report(m, machine);
        r.compute();
        return r;
    }

    public Map<String, Object> json() { return doc; }

    public List<Map<String, Object>> targets() { return targets; }

    private void compute() throws IOException {
        doc.put("date", m.meta.getOrDefault("date", ""));
        doc.put("mode", m.meta.getOrDefault("mode", "unknown"));
        doc.put("complete", "1".equals(m.meta.get("complete")));
        doc.put("machine", machine);
        Map<String, Object> meta = new LinkedHashMap<>(m.meta);
        meta.remove("date");
        meta.remove("mode");
        meta.remove("complete");
        doc.put("settings", meta);
        doc.put("nbd", nbdSection());
        doc.put("protocol", valuesOf("protocol"));
        doc.put("micro", jmhSection());
        doc.put("scale", valuesOf("scale"));
        doc.put("breakdown", valuesOf("breakdown"));
        doc.put("startup", seriesOf("startup"));
        doc.put("memory", memorySection());
        computeTargets();
        doc.put("targets", targets);
        doc.put("notes", m.notes);
        doc.put("problems", problems);
        List<Object> cmds = new ArrayList<>();
        for (Manifest.Cmd c : m.commands) cmds.add(Map.of("label", c.label(), "command", c.command()));
        doc.put("setup_commands", cmds);
    }

    // ---- NBD ----

    private List<Object> nbdSection() {
        Set<String> sys = new LinkedHashSet<>();
        for (Manifest.Fio f : m.fio) {
            caseInfo.putIfAbsent(f.testCase(), new String[] {f.rw(), f.kind()});
            sys.add(f.system());
            FioResult r;
            try {
                r = FioResult.read(f.file(), f.rw());
            } catch (IOException | RuntimeException e) {
                problems.add("fio " + f.testCase() + " " + f.system() + " round " + f.round() + ": " + e.getMessage());
                continue;
            }
            nbd.computeIfAbsent(f.testCase(), k -> new LinkedHashMap<>()).computeIfAbsent(f.system(), k -> new ArrayList<>()).add(r);
            for (Manifest.Cpu u : m.cpu) {
                if (!u.testCase().equals(f.testCase()) || !u.system().equals(f.system()) || u.round() != f.round()) continue;
                if (!(r.ios() > 0)) {
                    problems.add("cpu " + f.testCase() + " " + f.system() + " round " + f.round() + ": fio counted no requests");
                    continue;
                }
                cpuPerOp.computeIfAbsent(f.testCase(), k -> new LinkedHashMap<>())
                        .computeIfAbsent(f.system(), k -> new ArrayList<>()).add(u.cpuUs() / r.ios());
            }
        }
        systems.addAll(sys);
        List<Object> out = new ArrayList<>();
        for (String c : caseInfo.keySet()) {
            Map<String, Object> row = new LinkedHashMap<>();
            String kind = caseInfo.get(c)[1];
            row.put("case", c);
            row.put("rw", caseInfo.get(c)[0]);
            row.put("figure", figureName(kind));
            row.put("unit", figureUnit(kind));
            Map<String, Object> bySystem = new LinkedHashMap<>();
            for (String s : systems) {
                List<FioResult> rounds = nbd.getOrDefault(c, Map.of()).get(s);
                if (rounds == null || rounds.isEmpty()) continue;
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("figure", figure(kind, median(rounds)));
                e.put("iops", median(rounds, FioResult::iops));
                e.put("mib_per_s", median(rounds, FioResult::mibPerSec));
                e.put("lat_median_us", median(rounds, FioResult::latMedianUs));
                e.put("lat_p99_us", median(rounds, FioResult::latP99Us));
                Double cpu = cpuPerOp(c, s);
                if (cpu != null) {
                    e.put("cpu_per_op_us", cpu);
                    e.put("cpu_per_op_us_rounds", new ArrayList<Object>(cpuPerOp.get(c).get(s)));
                    e.put("cpu_processes", processesOf(c, s));
                }
                List<Object> per = new ArrayList<>();
                for (FioResult r : rounds) per.add(figure(kind, r));
                e.put("rounds", per);
                e.put("commands", commandsOf(c, s));
                bySystem.put(s, e);
            }
            row.put("systems", bySystem);
            Map<String, Object> ratios = new LinkedHashMap<>();
            for (String[] p : pairs()) {
                Double r = ratio(c, p[0], p[1]);
                if (r != null) ratios.put(p[0] + "/" + p[1], r);
                List<Object> perRound = perRoundRatios(c, p[0], p[1]);
                if (!perRound.isEmpty()) ratios.put(p[0] + "/" + p[1] + " per round", perRound);
            }
            row.put("ratios", ratios);
            out.add(row);
        }
        return out;
    }

    /** Median over rounds of the CPU per request of {@code system}'s processes, or null if it was not measured. */
    Double cpuPerOp(String c, String system) {
        List<Double> l = cpuPerOp.getOrDefault(c, Map.of()).get(system);
        if (l == null || l.isEmpty()) return null;
        return median(l.stream().mapToDouble(Double::doubleValue).toArray());
    }

    private String processesOf(String c, String s) {
        for (Manifest.Cpu u : m.cpu) if (u.testCase().equals(c) && u.system().equals(s)) return u.processes();
        return "";
    }

    private List<Object> commandsOf(String c, String s) {
        List<Object> l = new ArrayList<>();
        for (Manifest.Fio f : m.fio) if (f.testCase().equals(c) && f.system().equals(s) && !l.contains(f.command())) l.add(f.command());
        return l;
    }

    static String figureName(String kind) {
        return switch (kind) {
            case "iops" -> "IOPS";
            case "bw" -> "throughput";
            case "lat" -> "median latency";
            default -> kind;
        };
    }

    static String figureUnit(String kind) {
        return switch (kind) {
            case "iops" -> "IOPS";
            case "bw" -> "MiB/s";
            case "lat" -> "us";
            default -> "";
        };
    }

    static double figure(String kind, FioResult r) {
        return switch (kind) {
            case "iops" -> r.iops();
            case "bw" -> r.mibPerSec();
            case "lat" -> r.latMedianUs();
            default -> Double.NaN;
        };
    }

    private static FioResult median(List<FioResult> rounds) {
        return new FioResult(median(rounds, FioResult::iops), median(rounds, FioResult::mibPerSec),
                median(rounds, FioResult::latMedianUs), median(rounds, FioResult::latP99Us), median(rounds, FioResult::latMeanUs));
    }

    private static double median(List<FioResult> rounds, java.util.function.ToDoubleFunction<FioResult> f) {
        return median(rounds.stream().mapToDouble(f).toArray());
    }

    public static double median(double[] v) {
        if (v.length == 0) return Double.NaN;
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    /** Every (ours, reference) pair, ours first, the targets' reference first. */
    private List<String[]> pairs() {
        List<String[]> out = new ArrayList<>();
        List<String> refs = new ArrayList<>();
        if (systems.contains(REFERENCE)) refs.add(REFERENCE);
        for (String s : systems) if (isReference(s) && !refs.contains(s)) refs.add(s);
        for (String q : refs) for (String s : systems) if (!isReference(s)) out.add(new String[] {s, q});
        return out;
    }

    /** Median figure of {@code system} over the median figure of qemu-nbd, or null when either is missing. */
    Double ratio(String c, String system) { return ratio(c, system, REFERENCE); }

    /** Median figure of {@code system} over the median figure of {@code reference}, or null when either is missing. */
    Double ratio(String c, String system, String reference) {
        Map<String, List<FioResult>> by = nbd.get(c);
        if (by == null || !by.containsKey(system) || !by.containsKey(reference)) return null;
        String kind = caseInfo.get(c)[1];
        double ours = figure(kind, median(by.get(system)));
        double ref = figure(kind, median(by.get(reference)));
        if (!(ref > 0) || Double.isNaN(ours)) return null;
        return ours / ref;
    }

    /** Ratio of the runs made next to each other (round i of both sides). */
    private List<Object> perRoundRatios(String c, String system, String reference) {
        List<Object> out = new ArrayList<>();
        Map<String, List<FioResult>> by = nbd.get(c);
        if (by == null || !by.containsKey(system) || !by.containsKey(reference)) return out;
        String kind = caseInfo.get(c)[1];
        List<FioResult> a = by.get(system);
        List<FioResult> b = by.get(reference);
        for (int i = 0; i < Math.min(a.size(), b.size()); i++) {
            double ref = figure(kind, b.get(i));
            out.add(ref > 0 ? figure(kind, a.get(i)) / ref : Double.NaN);
        }
        return out;
    }

    // ---- other sections ----

    private List<Object> valuesOf(String section) {
        List<Object> out = new ArrayList<>();
        for (Manifest.Value v : m.values) {
            if (!v.section().equals(section)) continue;
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("name", v.name());
            e.put("value", v.value());
            e.put("unit", v.unit());
            e.put("command", v.command());
            out.add(e);
        }
        return out;
    }

    private List<Object> seriesOf(String section) {
        List<Object> out = new ArrayList<>();
        for (Manifest.Series s : m.series) {
            if (!s.section().equals(section)) continue;
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("name", s.name());
            e.put("unit", s.unit());
            e.put("runs", s.values().length);
            e.put("median", median(s.values()));
            e.put("min", Arrays.stream(s.values()).min().orElse(Double.NaN));
            e.put("max", Arrays.stream(s.values()).max().orElse(Double.NaN));
            List<Object> all = new ArrayList<>();
            for (double d : s.values()) all.add(d);
            e.put("values", all);
            e.put("command", s.command());
            out.add(e);
        }
        return out;
    }

    private List<Object> memorySection() {
        List<Object> out = new ArrayList<>();
        for (Manifest.Rss r : m.rss) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("system", r.system());
            e.put("node", r.node());
            e.put("pid", r.pid());
            e.put("peak_rss_mib", r.peakKib() / 1024.0);
            out.add(e);
        }
        return out;
    }

    private List<Object> jmhSection() {
        List<Object> out = new ArrayList<>();
        for (Manifest.Jmh j : m.jmh) {
            Object parsed;
            try {
                parsed = Json.parse(Files.readString(j.file()));
            } catch (IOException | RuntimeException e) {
                problems.add("jmh results " + j.file().getFileName() + ": " + e.getMessage());
                continue;
            }
            if (!(parsed instanceof List<?> runs)) {
                problems.add("jmh results " + j.file().getFileName() + ": not a JSON array");
                continue;
            }
            for (Object run : runs) {
                Map<String, Object> e = new LinkedHashMap<>();
                String bench = String.valueOf(Json.at(run, "benchmark"));
                e.put("benchmark", bench.replace("io.sheepdog.bench.", ""));
                Object params = Json.at(run, "params");
                e.put("params", params == null ? Map.of() : params);
                e.put("mode", Json.at(run, "mode"));
                e.put("score", Json.num(run, "primaryMetric", "score"));
                e.put("error", Json.num(run, "primaryMetric", "scoreError"));
                e.put("unit", Json.at(run, "primaryMetric", "scoreUnit"));
                e.put("command", j.command());
                out.add(e);
            }
        }
        return out;
    }

    // ---- targets (issue, part 2) ----

    private void computeTargets() {
        target("NBD 4 KiB random write QD16, copies=1 vs qemu-nbd", "ratio", ">=", 1.0,
                ratio("randwrite-4k-qd16", "sheep-c1"), "");
        target("NBD 4 KiB random write QD16, copies=3 on 3 local nodes vs qemu-nbd", "ratio", ">=", 0.5,
                ratio("randwrite-4k-qd16", "sheep-c3"), "");
        // issue 16: replicated writes
        target("NBD 4 KiB random write QD16, copies=3 on 3 local nodes vs qemu-nbd (issue 16)", "ratio", ">=", 1.0,
                ratio("randwrite-4k-qd16", "sheep-c3"), "");
        target("NBD 4 KiB random write QD1 median latency, copies=3 vs our copies=1 (issue 16)", "ratio", "<=", 1.5,
                ratio("randwrite-4k-qd1", "sheep-c3", "sheep-c1"), diskAlone());
        Double cpu3 = cpuPerOp("randwrite-4k-qd16", "sheep-c3");
        target("CPU per 4 KiB random write QD16, copies=3, summed over the 3 sheeps (issue 16)", "us", "<=", 300, cpu3,
                cpu3 == null ? "" : processesOf("randwrite-4k-qd16", "sheep-c3"));
        target("NBD 1 MiB sequential write, copies=1 vs qemu-nbd", "ratio", ">=", 0.9,
                ratio("seqwrite-1m", "sheep-c1"), "");
        target("NBD 1 MiB sequential read, copies=1 vs qemu-nbd", "ratio", ">=", 0.9,
                ratio("seqread-1m", "sheep-c1"), "");
        target("NBD 4 KiB QD1 write median latency, copies=1 vs qemu-nbd", "ratio", "<=", 1.2,
                ratio("randwrite-4k-qd1", "sheep-c1"), "");
        Manifest.Value dd = m.value("protocol", "dd-fdatasync");
        Manifest.Value w3 = m.value("protocol", "dog-vdi-write-c3");
        Double dogRatio = dd != null && w3 != null && dd.value() > 0 ? w3.value() / (dd.value() / 3) : null;
        target("dog vdi write, copies=3, 3 local nodes vs (dd fdatasync / 3)", "ratio", ">=", 0.5, dogRatio,
                dd != null && w3 != null ? String.format(Locale.ROOT, "dog %.1f MiB/s, dd %.1f MiB/s", w3.value(), dd.value()) : "");
        Manifest.Series nl = m.series("startup", "dog-node-list");
        target("dog node list wall time (median)", "ms", "<=", 150, nl == null ? null : median(nl.values()), "");
        Manifest.Value vl = m.value("scale", "dog-vdi-list");
        Manifest.Value nv = m.value("scale", "vdis");
        String at = nv == null ? "" : String.format(Locale.ROOT, "with %d VDIs", (long) nv.value());
        if (nv != null && nv.value() < 10_000) at += " (not the 10,000 of the target)";
        target("dog vdi list with 10,000 VDIs", "s", "<=", 1.0, vl == null ? null : vl.value(), at);
        double peak = m.rss.stream().mapToLong(Manifest.Rss::peakKib).max().orElse(-1) / 1024.0;
        String who = m.rss.stream().max((a, b) -> Long.compare(a.peakKib(), b.peakKib())).map(r -> r.system() + " " + r.node()).orElse("");
        target("sheep peak RSS under the fio load (largest sheep)", "MiB", "<=", 256, m.rss.isEmpty() ? null : peak, who);
    }

    /**
     * What the data disk itself allows the QD1 ratio: three synced writes at once (three copies, one disk) against
     * one (bench/run.sh disk_alone), the mean over the rounds; empty if not measured.
     */
    private String diskAlone() {
        double one = 0, three = 0;
        int n1 = 0, n3 = 0;
        for (Manifest.Value v : m.values) {
            if (!v.section().equals("breakdown") || !v.name().startsWith("the disk alone")) continue;
            if (v.name().contains("1 writer,")) { one += v.value(); n1++; }
            if (v.name().contains("3 writers")) { three += v.value(); n3++; }
        }
        if (n1 == 0 || n3 == 0 || one <= 0) return "";
        return String.format(Locale.ROOT, "the disk alone: 3 synced writes at once take %.2fx one (%.0f vs %.0f us)",
                (three / n3) / (one / n1), three / n3, one / n1);
    }

    private void target(String what, String unit, String op, double limit, Double measured, String detail) {
        Map<String, Object> t = new LinkedHashMap<>();
        t.put("target", what);
        String lim = new java.math.BigDecimal(Double.toString(limit)).stripTrailingZeros().toPlainString();
        t.put("limit", op + " " + lim + (unit.equals("ratio") ? "x" : " " + unit));
        t.put("measured", measured);
        t.put("unit", unit);
        String status;
        if (measured == null || measured.isNaN()) status = "not measured";
        else if (op.equals(">=") ? measured >= limit : measured <= limit) status = "met";
        else status = "MISSED";
        t.put("status", status);
        t.put("detail", detail);
        targets.add(t);
    }

    // ---- markdown ----

    public String markdown() {
        StringBuilder b = new StringBuilder();
        boolean smoke = "smoke".equals(doc.get("mode"));
        b.append("# Sheepdog-JVM benchmark results\n\n");
        b.append("- Date: ").append(doc.get("date")).append('\n');
        b.append("- Mode: ").append(doc.get("mode"));
        if (smoke) b.append(" (tiny sizes and times to check the suite works: the figures mean nothing)");
        b.append('\n');
        if (!Boolean.TRUE.equals(doc.get("complete"))) b.append("- **The run did not finish**: the tables hold what was measured before it stopped.\n");
        String load = m.meta.get("loadavg_at_start");
        if (load != null) {
            b.append("- Load average at start (1, 5, 15 min): ").append(load);
            try {
                double l1 = Double.parseDouble(load.trim().split("\\s+")[0]);
                if (l1 > 0.5 * ((Number) machine.getOrDefault("cpus", 1)).doubleValue()) {
                    b.append(" - **the machine was busy with other work: figures are noisy**");
                }
            } catch (RuntimeException ignored) {
                // an odd loadavg line only loses the warning
            }
            b.append('\n');
        }
        b.append("- Command: `").append(m.meta.getOrDefault("command", "bench/run.sh")).append("`\n");
        b.append("- Machine: ").append(machine.get("cpu")).append(", ").append(machine.get("cpus")).append(" CPUs, ")
                .append(machine.get("memory_mib")).append(" MiB RAM, ").append(machine.get("kernel")).append('\n');
        if (machine.containsKey("data_device")) {
            b.append("- Disk (all data, both sides): ").append(machine.get("data_device")).append(" (").append(machine.get("data_fs"))
                    .append(", mounted on ").append(machine.get("data_mount"));
            if (machine.containsKey("data_rotational")) b.append(Boolean.TRUE.equals(machine.get("data_rotational")) ? ", rotational" : ", non-rotational");
            b.append(")\n");
        }
        for (String k : List.of("git", "java", "fio", "qemu-nbd", "sheep_java_opts", "fio_runtime_s", "fio_size", "rounds", "protocol_bytes")) {
            if (m.meta.containsKey(k)) b.append("- ").append(k).append(": ").append(m.meta.get(k)).append('\n');
        }
        b.append('\n');

        b.append("## Targets\n\n| Target | Limit | Measured | Status | Detail |\n|---|---|---|---|---|\n");
        for (Map<String, Object> t : targets) {
            Double v = (Double) t.get("measured");
            String unit = (String) t.get("unit");
            String mv = v == null ? "-" : fmt(v) + (unit.equals("ratio") ? "x" : " " + unit);
            b.append("| ").append(t.get("target")).append(" | ").append(t.get("limit")).append(" | ").append(mv).append(" | ")
                    .append(t.get("status").equals("MISSED") ? "**MISSED**" : t.get("status")).append(" | ").append(t.get("detail")).append(" |\n");
        }
        b.append('\n');

        if (!caseInfo.isEmpty()) {
            b.append("## NBD (fio, ioengine=nbd)\n\n");
            b.append("Each case ran against every system in turn, round after round in one session; a figure is the median over the rounds, ");
            b.append("a ratio is ours over the reference's (for latency, lower is better). The targets are against qemu-nbd.\n\n");
            List<String[]> pairs = pairs();
            b.append("| Case | Figure |");
            for (String s : systems) b.append(' ').append(s).append(" |");
            for (String[] p : pairs) b.append(' ').append(p[0]).append(" / ").append(p[1]).append(" |");
            b.append("\n|---|---|");
            b.append("---|".repeat(systems.size() + pairs.size()));
            b.append('\n');
            for (String c : caseInfo.keySet()) {
                String kind = caseInfo.get(c)[1];
                String unit = figureUnit(kind);
                b.append("| ").append(c).append(" | ").append(figureName(kind)).append(unit.equals(figureName(kind)) ? "" : " (" + unit + ")").append(" |");
                Map<String, List<FioResult>> by = nbd.getOrDefault(c, Map.of());
                for (String s : systems) {
                    List<FioResult> r = by.get(s);
                    b.append(' ').append(r == null || r.isEmpty() ? "-" : fmt(figure(kind, median(r)))).append(" |");
                }
                for (String[] p : pairs) {
                    Double r = ratio(c, p[0], p[1]);
                    b.append(' ').append(r == null ? "-" : fmt(r) + "x").append(" |");
                }
                b.append('\n');
            }
            b.append("\nAll figures per system (median over rounds):\n\n");
            b.append("CPU/op is the user+system CPU of the system's own processes (a cluster's three sheeps together; not fio's) over ");
            b.append("the measured part of each run, divided by the requests fio completed in it.\n\n");
            b.append("| Case | System | IOPS | MiB/s | lat p50 (us) | lat p99 (us) | CPU/op (us) | rounds |\n|---|---|---|---|---|---|---|---|\n");
            for (String c : caseInfo.keySet()) {
                for (String s : systems) {
                    List<FioResult> r = nbd.getOrDefault(c, Map.of()).get(s);
                    if (r == null || r.isEmpty()) continue;
                    FioResult md = median(r);
                    b.append("| ").append(c).append(" | ").append(s).append(" | ").append(fmt(md.iops())).append(" | ")
                            .append(fmt(md.mibPerSec())).append(" | ").append(fmt(md.latMedianUs())).append(" | ")
                            .append(fmt(md.latP99Us())).append(" | ").append(cpuPerOp(c, s) == null ? "-" : fmt(cpuPerOp(c, s)))
                            .append(" | ").append(r.size()).append(" |\n");
                }
            }
            b.append('\n');
        }

        List<Manifest.Value> proto = m.values.stream().filter(v -> v.section().equals("protocol")).toList();
        if (!proto.isEmpty()) {
            b.append("## Sheepdog protocol (dog vdi write / read) and dd\n\n| Measurement | Value |\n|---|---|\n");
            for (Manifest.Value v : proto) b.append("| ").append(v.name()).append(" | ").append(fmt(v.value())).append(' ').append(v.unit()).append(" |\n");
            b.append('\n');
        }

        @SuppressWarnings("unchecked")
        List<Map<String, Object>> micro = (List<Map<String, Object>>) (List<?>) doc.get("micro");
        if (!micro.isEmpty()) {
            b.append("## Micro benchmarks (JMH)\n\n| Benchmark | Params | Score | Error (99.9%) | Unit |\n|---|---|---|---|---|\n");
            for (Map<String, Object> e : micro) {
                b.append("| ").append(e.get("benchmark")).append(" | ").append(params(e.get("params"))).append(" | ")
                        .append(fmt((Double) e.get("score"))).append(" | ").append(fmt((Double) e.get("error"))).append(" | ")
                        .append(e.get("unit")).append(" |\n");
            }
            b.append('\n');
        }

        List<Manifest.Value> breakdown = m.values.stream().filter(v -> v.section().equals("breakdown")).toList();
        if (!breakdown.isEmpty()) {
            b.append("## Where a replicated QD1 write's time goes (sheep-c3, randwrite-4k-qd1)\n\n");
            b.append("Means over each run, from the sheeps' stage timers (`dog node stat -v -r` on each node before and after). ");
            b.append("The gateway (node 0) stores its copy while the two others are on their way, so a client write takes ");
            b.append("about the longer of the two, not their sum.\n\n| Part | Mean |\n|---|---|\n");
            for (Manifest.Value v : breakdown) b.append("| ").append(v.name()).append(" | ").append(fmt(v.value())).append(' ').append(v.unit()).append(" |\n");
            b.append('\n');
        }

        List<Manifest.Value> scale = m.values.stream().filter(v -> v.section().equals("scale")).toList();
        if (!scale.isEmpty()) {
            b.append("## Scale\n\n| Measurement | Value |\n|---|---|\n");
            for (Manifest.Value v : scale) b.append("| ").append(v.name()).append(" | ").append(fmt(v.value())).append(' ').append(v.unit()).append(" |\n");
            b.append('\n');
        }

        List<Manifest.Series> startup = m.series.stream().filter(s -> s.section().equals("startup")).toList();
        if (!startup.isEmpty()) {
            b.append("## Start-up (wall time, JVM start included)\n\n| Command | Runs | Median | Min | Max |\n|---|---|---|---|---|\n");
            for (Manifest.Series s : startup) {
                b.append("| ").append(s.name()).append(" | ").append(s.values().length).append(" | ").append(fmt(median(s.values()))).append(' ').append(s.unit())
                        .append(" | ").append(fmt(Arrays.stream(s.values()).min().orElse(Double.NaN))).append(' ').append(s.unit())
                        .append(" | ").append(fmt(Arrays.stream(s.values()).max().orElse(Double.NaN))).append(' ').append(s.unit()).append(" |\n");
            }
            b.append('\n');
        }

        if (!m.rss.isEmpty()) {
            b.append("## Memory (peak RSS, VmHWM, of each sheep after the fio load)\n\n| System | Node | Peak RSS |\n|---|---|---|\n");
            for (Manifest.Rss r : m.rss) b.append("| ").append(r.system()).append(" | ").append(r.node()).append(" | ").append(fmt(r.peakKib() / 1024.0)).append(" MiB |\n");
            b.append('\n');
        }

        if (!m.notes.isEmpty()) {
            b.append("## Notes\n\n");
            for (String n : m.notes) b.append("- ").append(n).append('\n');
            b.append('\n');
        }
        if (!problems.isEmpty()) {
            b.append("## Problems\n\n");
            for (String p : problems) b.append("- ").append(p).append('\n');
            b.append('\n');
        }

        b.append("## Exact commands\n\n```\n");
        for (Manifest.Cmd c : m.commands) b.append("# ").append(c.label()).append('\n').append(c.command()).append('\n');
        Set<String> seen = new LinkedHashSet<>();
        for (Manifest.Fio f : m.fio) if (seen.add(f.command())) b.append("# fio ").append(f.testCase()).append(' ').append(f.system()).append('\n').append(f.command()).append('\n');
        for (Manifest.Value v : m.values) if (!v.command().isEmpty() && seen.add(v.command())) b.append("# ").append(v.section()).append(' ').append(v.name()).append('\n').append(v.command()).append('\n');
        for (Manifest.Series s : m.series) if (seen.add(s.command())) b.append("# ").append(s.section()).append(' ').append(s.name()).append('\n').append(s.command()).append('\n');
        for (Manifest.Jmh j : m.jmh) if (seen.add(j.command())) b.append("# jmh\n").append(j.command()).append('\n');
        b.append("```\n");
        return b.toString();
    }

    private static String params(Object p) {
        if (!(p instanceof Map<?, ?> mp) || mp.isEmpty()) return "";
        StringBuilder b = new StringBuilder();
        for (Map.Entry<?, ?> e : mp.entrySet()) {
            if (!b.isEmpty()) b.append(", ");
            b.append(e.getKey()).append('=').append(e.getValue());
        }
        return b.toString();
    }

    /** Three significant digits for small numbers, thousands separators for big ones. */
    static String fmt(double v) {
        if (Double.isNaN(v)) return "-";
        double a = Math.abs(v);
        if (a >= 1000) return String.format(Locale.ROOT, "%,.0f", v);
        if (a >= 100 || v == Math.rint(v)) return String.format(Locale.ROOT, "%.0f", v);
        if (a >= 10) return String.format(Locale.ROOT, "%.1f", v);
        if (a >= 1) return String.format(Locale.ROOT, "%.2f", v);
        if (a == 0) return "0";
        return String.format(Locale.ROOT, "%.3g", v);
    }

    public void write(Path outDir) throws IOException {
        Files.createDirectories(outDir);
        Files.writeString(outDir.resolve("results.json"), Json.write(doc));
        Files.writeString(outDir.resolve("results.md"), markdown());
    }
}
