package io.sheepdog.dog;

/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal (scripts see nothing). Redraws at most
 * every 100 ms.
 */
final class Progress {
    private final Io io;
    private final long total;
    private final boolean enabled;
    private final boolean counts;
    private long lastDraw;

    /** @param counts show "n/total" (objects) instead of sizes */
    Progress(Io io, long total, boolean counts) {
        this.io = io;
        this.total = total;
        this.counts = counts;
        this.enabled = io.stderrTty && total > 0;
    }

    void update(long done) {
        if (!enabled) return;
        long now = System.nanoTime();
        if (done < total && now - lastDraw < 100_000_000L) return;
        lastDraw = now;
        int width = 40;
        int filled = (int) Math.min(width, width * (double) done / total);
        StringBuilder b = new StringBuilder("\r[");
        for (int i = 0; i < width; i++) b.append(i < filled ? '=' : (i == filled ? '>' : ' '));
        b.append("] ").append(Fmt.right(Fmt.fixed(100.0 * done / total, 1), 5)).append("% ");
        b.append(counts ? done + "/" + total : Fmt.human(done) + " / " + Fmt.human(total));
        b.append("   ");
        io.err.print(b);
        io.err.flush();
    }

    void done() {
        if (!enabled) return;
        update(total);
        io.err.print("\n");
        io.err.flush();
    }
}
