package io.sheepdog.dog;

/**
 * Size arguments ({@code 256G}, {@code 1.5M}, {@code 4096}): a decimal number (fractions allowed) optionally
 * followed by one suffix K, M, G, T, P (powers of 1024) or B (bytes), case-insensitive (docs/dog.md §1.5).
 */
final class Sizes {
    private Sizes() {}

    /** Returns the size in bytes, or -1 if {@code s} is not a valid size. */
    static long parse(String s) {
        if (s == null) return -1;
        int i = 0, n = s.length();
        while (i < n && Character.isWhitespace(s.charAt(i))) i++;
        int start = i;
        if (i < n && (s.charAt(i) == '+')) i++;
        int digits = 0;
        while (i < n && Character.isDigit(s.charAt(i))) { i++; digits++; }
        if (i < n && s.charAt(i) == '.') {
            i++;
            while (i < n && Character.isDigit(s.charAt(i))) { i++; digits++; }
        }
        if (digits == 0) return -1;
        if (i < n && (s.charAt(i) == 'e' || s.charAt(i) == 'E')) {
            int j = i + 1;
            if (j < n && (s.charAt(j) == '+' || s.charAt(j) == '-')) j++;
            int ed = 0;
            while (j < n && Character.isDigit(s.charAt(j))) { j++; ed++; }
            if (ed > 0) i = j;
        }
        double v;
        try {
            v = Double.parseDouble(s.substring(start, i));
        } catch (NumberFormatException e) {
            return -1;
        }
        long mul = 1;
        if (i < n) {
            switch (s.charAt(i)) {
                case 'k', 'K' -> mul = 1L << 10;
                case 'm', 'M' -> mul = 1L << 20;
                case 'g', 'G' -> mul = 1L << 30;
                case 't', 'T' -> mul = 1L << 40;
                case 'p', 'P' -> mul = 1L << 50;
                case 'b', 'B' -> mul = 1;
                default -> { return -1; }
            }
            i++;
        }
        if (i != n) return -1;
        double bytes = v * mul;
        if (bytes >= 0x1p63) return -1;
        return (long) bytes;
    }
}
