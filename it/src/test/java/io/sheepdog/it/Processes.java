package io.sheepdog.it;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Stopping processes by pid (never by name). */
public final class Processes {
    private Processes() {}

    /** SIGKILLs the process and every descendant, children first, and waits up to 10 s for each to go. */
    public static void killTree(ProcessHandle h) {
        List<ProcessHandle> kids = h.descendants().toList();
        h.destroyForcibly();
        for (ProcessHandle k : kids) k.destroyForcibly();
        awaitExit(h, 10_000);
        for (ProcessHandle k : kids) awaitExit(k, 10_000);
    }

    /** Waits for the process to end; true if it did within the time. */
    public static boolean awaitExit(ProcessHandle h, long millis) {
        if (!h.isAlive()) return true;
        CompletableFuture<ProcessHandle> f = h.onExit();
        try {
            f.get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException e) {
            return !h.isAlive();
        } catch (ExecutionException e) {
            return !h.isAlive();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !h.isAlive();
        }
    }
}
