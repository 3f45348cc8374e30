package io.sheepdog.bench.report;

import java.nio.file.Path;
import java.util.Map;

/**
 * {@code ReportMain MANIFEST OUT_DIR [DATA_DIR]}: writes OUT_DIR/results.md and OUT_DIR/results.json from the
 * manifest bench/run.sh wrote. DATA_DIR is where the benchmark data lived (to name its disk).
 */
public final class ReportMain {
    private ReportMain() {}

    public static void main(String[] args) {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: ReportMain MANIFEST OUT_DIR [DATA_DIR]");
            System.exit(2);
        }
        try {
            Manifest m = Manifest.read(Path.of(args[0]));
            Map<String, Object> machine = MachineInfo.collect(args.length == 3 ? Path.of(args[2]) : null);
            Report r = Report.build(m, machine);
            r.write(Path.of(args[1]));
            for (Map<String, Object> t : r.targets()) {
                System.out.printf("%-14s %s%n", t.get("status"), t.get("target"));
            }
        } catch (Exception e) {
            System.err.println("ReportMain: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
            System.exit(1);
        }
    }
}
