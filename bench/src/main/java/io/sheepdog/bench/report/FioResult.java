package io.sheepdog.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The figures of one fio run (one job) in one direction, from fio's JSON output; {@code ios} is the number of requests
 * completed in the measured time (after the ramp), what CPU per operation is divided by.
 */
public record FioResult(double iops, double mibPerSec, double latMedianUs, double latP99Us, double latMeanUs, double ios) {

    public FioResult(double iops, double mibPerSec, double latMedianUs, double latP99Us, double latMeanUs) {
        this(iops, mibPerSec, latMedianUs, latP99Us, latMeanUs, Double.NaN);
    }

    public static FioResult read(Path jsonFile, String rw) throws IOException {
        return of(Json.parse(Files.readString(jsonFile)), rw);
    }

    /**
     * Latency is fio's total latency (submission to completion, {@code lat_ns}, which needs {@code --lat_percentiles=1}
     * for its percentiles); if only completion latency ({@code clat_ns}) percentiles are there, those are used.
     */
    public static FioResult of(Object doc, String rw) {
        Object job = Json.at(doc, "jobs", 0, rw);
        if (!(job instanceof Map)) throw new IllegalArgumentException("fio output has no jobs[0]." + rw);
        if (Json.num(doc, "jobs", 0, "error") > 0) {
            throw new IllegalArgumentException("fio job failed with error " + (long) Json.num(doc, "jobs", 0, "error"));
        }
        double iops = Json.num(job, "iops");
        double bw = Json.num(job, "bw_bytes");
        if (Double.isNaN(bw)) bw = Json.num(job, "bw") * 1024; // older fio: KiB/s
        String latKey = Json.at(job, "lat_ns", "percentile") != null ? "lat_ns" : "clat_ns";
        double p50 = Json.num(job, latKey, "percentile", "50.000000") / 1000;
        double p99 = Json.num(job, latKey, "percentile", "99.000000") / 1000;
        double mean = Json.num(job, "lat_ns", "mean") / 1000;
        return new FioResult(iops, bw / (1 << 20), p50, p99, mean, Json.num(job, "total_ios"));
    }
}
