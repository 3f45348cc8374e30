package io.sheepdog.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What bench/run.sh measured, one tab-separated record a line (the script appends as it goes, so a run that dies
 * half way still leaves a report of what it did). Records:
 * <pre>
 * meta    KEY VALUE
 * cmd     LABEL COMMAND                                  a setup command, verbatim
 * fio     CASE RW KIND SYSTEM ROUND JSON_FILE COMMAND    RW read|write, KIND iops|lat|bw
 * value   SECTION NAME VALUE UNIT COMMAND                one measurement
 * series  SECTION NAME UNIT V1,V2,... COMMAND            repeated timings of one command
 * rss     SYSTEM NODE PID PEAK_KIB                       VmHWM of a sheep after the load
 * cpu     CASE SYSTEM ROUND CPU_US PROCESSES             user+system CPU of the system's processes (all of a
 *                                                        cluster's sheeps) over the measured part of one fio run
 * jmh     JSON_FILE COMMAND
 * note    TEXT
 * </pre>
 * JSON_FILE paths are relative to the manifest's directory.
 */
public final class Manifest {
    public record Fio(String testCase, String rw, String kind, String system, int round, Path file, String command) {}
    public record Value(String section, String name, double value, String unit, String command) {}
    public record Series(String section, String name, String unit, double[] values, String command) {}
    public record Rss(String system, String node, long pid, long peakKib) {}
    public record Cpu(String testCase, String system, int round, double cpuUs, String processes) {}
    public record Jmh(Path file, String command) {}
    public record Cmd(String label, String command) {}

    public final Map<String, String> meta = new LinkedHashMap<>();
    public final List<Cmd> commands = new ArrayList<>();
    public final List<Fio> fio = new ArrayList<>();
    public final List<Value> values = new ArrayList<>();
    public final List<Series> series = new ArrayList<>();
    public final List<Rss> rss = new ArrayList<>();
    public final List<Cpu> cpu = new ArrayList<>();
    public final List<Jmh> jmh = new ArrayList<>();
    public final List<String> notes = new ArrayList<>();

    public static Manifest read(Path file) throws IOException {
        Manifest m = new Manifest();
        Path dir = file.toAbsolutePath().getParent();
        int lineNo = 0;
        for (String line : Files.readAllLines(file)) {
            lineNo++;
            if (line.isBlank() || line.startsWith("#")) continue;
            String[] f = line.split("\t", -1);
            try {
                m.add(dir, f);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(file + ":" + lineNo + ": bad record (" + e.getMessage() + "): " + line, e);
            }
        }
        return m;
    }

    private void add(Path dir, String[] f) {
        switch (f[0]) {
            case "meta" -> { need(f, 3); meta.put(f[1], f[2]); }
            case "cmd" -> { need(f, 3); commands.add(new Cmd(f[1], f[2])); }
            case "fio" -> { need(f, 8); fio.add(new Fio(f[1], f[2], f[3], f[4], Integer.parseInt(f[5]), dir.resolve(f[6]), f[7])); }
            case "value" -> { need(f, 6); values.add(new Value(f[1], f[2], Double.parseDouble(f[3]), f[4], f[5])); }
            case "series" -> {
                need(f, 6);
                double[] v = f[4].isEmpty() ? new double[0] : Arrays.stream(f[4].split(",")).mapToDouble(Double::parseDouble).toArray();
                series.add(new Series(f[1], f[2], f[3], v, f[5]));
            }
            case "rss" -> { need(f, 5); rss.add(new Rss(f[1], f[2], Long.parseLong(f[3]), Long.parseLong(f[4]))); }
            case "cpu" -> { need(f, 6); cpu.add(new Cpu(f[1], f[2], Integer.parseInt(f[3]), Double.parseDouble(f[4]), f[5])); }
            case "jmh" -> { need(f, 3); jmh.add(new Jmh(dir.resolve(f[1]), f[2])); }
            case "note" -> { need(f, 2); notes.add(f[1]); }
            default -> throw new IllegalArgumentException("unknown record type '" + f[0] + "'");
        }
    }

    private static void need(String[] f, int n) {
        if (f.length < n) throw new IllegalArgumentException("expected " + n + " fields, got " + f.length);
    }

    public Value value(String section, String name) {
        for (Value v : values) if (v.section().equals(section) && v.name().equals(name)) return v;
        return null;
    }

    public Series series(String section, String name) {
        for (Series s : series) if (s.section().equals(section) && s.name().equals(name)) return s;
        return null;
    }
}
