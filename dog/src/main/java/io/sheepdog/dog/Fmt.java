package io.sheepdog.dog;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;

/**
 * Number, size and date formatting exactly as dog prints them (docs/dog.md §1.5). C's printf rounds the exact
 * binary value of a double half-to-even, Java's Formatter rounds half-up; {@link #fixed} reproduces printf.
 */
final class Fmt {
    private Fmt() {}

    private static final String[] UNITS = {"MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
    private static final String[] DAYS = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    private static final String[] MONTHS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

    /** printf("%.{decimals}f", v). */
    static String fixed(double v, int decimals) {
        if (Double.isNaN(v) || Double.isInfinite(v)) return String.valueOf(v);
        return new BigDecimal(v).setScale(decimals, RoundingMode.HALF_EVEN).toPlainString();
    }

    /** Human size: 0 → {@code 0.0 MB}, 4 MiB → {@code 4.0 MB}, 12 MiB → {@code 12 MB}, 4 GiB → {@code 4.0 GB}. */
    static String human(long bytes) {
        double v = unsigned(bytes) / (1024.0 * 1024.0);
        int u = 0;
        while (v >= 1024 && u < UNITS.length - 1) {
            v /= 1024;
            u++;
        }
        return (v >= 10 ? fixed(v, 0) : fixed(v, 1)) + " " + UNITS[u];
    }

    /** A size column: decimal bytes in raw mode, else {@link #human}. */
    static String size(long bytes, boolean raw) { return raw ? Long.toUnsignedString(bytes) : human(bytes); }

    static double unsigned(long v) {
        return v >= 0 ? (double) v : (double) (v >>> 1) * 2.0 + (v & 1);
    }

    /** Left-justified in {@code width} columns, like %-Ns (never truncates). */
    static String left(String s, int width) {
        if (s.length() >= width) return s;
        StringBuilder b = new StringBuilder(width).append(s);
        while (b.length() < width) b.append(' ');
        return b.toString();
    }

    /** Right-justified in {@code width} columns, like %Ns. */
    static String right(String s, int width) {
        if (s.length() >= width) return s;
        StringBuilder b = new StringBuilder(width);
        for (int i = s.length(); i < width; i++) b.append(' ');
        return b.append(s).toString();
    }

    private static LocalDateTime local(long epochSeconds) {
        return LocalDateTime.ofInstant(Instant.ofEpochSecond(epochSeconds), ZoneId.systemDefault());
    }

    private static String two(int v) { return v < 10 ? "0" + v : Integer.toString(v); }

    /** {@code %Y-%m-%d %H:%M}. */
    static String shortDate(long epochSeconds) {
        LocalDateTime t = local(epochSeconds);
        return t.getYear() + "-" + two(t.getMonthValue()) + "-" + two(t.getDayOfMonth()) + " " + two(t.getHour()) + ":"
                + two(t.getMinute());
    }

    /** {@code %Y-%m-%d %H:%M:%S}. */
    static String isoDate(long epochSeconds) {
        LocalDateTime t = local(epochSeconds);
        return shortDate(epochSeconds) + ":" + two(t.getSecond());
    }

    /** {@code %Y-%m-%d}. */
    static String day(long epochSeconds) {
        LocalDateTime t = local(epochSeconds);
        return t.getYear() + "-" + two(t.getMonthValue()) + "-" + two(t.getDayOfMonth());
    }

    /** {@code %H:%M:%S}. */
    static String time(long epochSeconds) {
        LocalDateTime t = local(epochSeconds);
        return two(t.getHour()) + ":" + two(t.getMinute()) + ":" + two(t.getSecond());
    }

    /** C's ctime() without its trailing newline: {@code Mon Jan  1 00:00:00 2018}. */
    static String ctime(long epochSeconds) {
        LocalDateTime t = local(epochSeconds);
        String dd = t.getDayOfMonth() < 10 ? " " + t.getDayOfMonth() : Integer.toString(t.getDayOfMonth());
        return DAYS[t.getDayOfWeek().getValue() - 1] + " " + MONTHS[t.getMonthValue() - 1] + " " + dd + " "
                + two(t.getHour()) + ":" + two(t.getMinute()) + ":" + two(t.getSecond()) + " " + t.getYear();
    }

    /** Redundancy as dog prints it: {@code 3} for replication, {@code 4:2} for erasure coding. */
    static String copies(int nrCopies, int copyPolicy) {
        if (copyPolicy == 0) return Integer.toString(nrCopies);
        int d = (copyPolicy >> 4) * 2;
        int p = copyPolicy & 0xF;
        return d + ":" + p;
    }

    /** A name in raw output: a backslash before every whitespace character and every backslash. */
    static String escapeRaw(String s) {
        StringBuilder b = new StringBuilder(s.length() + 4);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == 0x0b) b.append('\\');
            b.append(c);
        }
        return b.toString();
    }

    static String hex(long v) { return Long.toHexString(v); }

    static String hex(int v) { return Integer.toHexString(v); }

    /** %016lx. */
    static String oid(long oid) {
        String h = Long.toHexString(oid);
        return "0000000000000000".substring(h.length()) + h;
    }
}
