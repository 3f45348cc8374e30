package io.sheepdog.sheep.cluster.local;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lets the delivery thread sleep until the rendezvous directory changes: on Linux the JDK's WatchService is
 * inotify, so an append by any process wakes every member at once (the role SIGUSR1 plays in the original). The
 * caller still polls with a short timeout, which also covers a platform without a working watch service.
 */
final class LogWatcher implements Closeable {
    private static final Logger log = LoggerFactory.getLogger(LogWatcher.class);

    private final WatchService service;
    private final Object monitor = new Object();
    private boolean woken;

    LogWatcher(Path dir) {
        WatchService ws = null;
        try {
            ws = dir.getFileSystem().newWatchService();
            dir.register(ws, StandardWatchEventKinds.ENTRY_MODIFY, StandardWatchEventKinds.ENTRY_CREATE);
        } catch (IOException | UnsupportedOperationException e) {
            log.info("No file watch on {} ({}); polling the event log", dir, e.toString());
            if (ws != null) {
                try {
                    ws.close();
                } catch (IOException ignored) {
                    // it was never usable
                }
            }
            ws = null;
        }
        this.service = ws;
    }

    /** Waits until the directory changes, {@link #wake} is called, or {@code millis} pass. */
    void await(long millis) throws InterruptedException {
        synchronized (monitor) {
            if (woken) {
                woken = false;
                return;
            }
        }
        if (service == null) {
            synchronized (monitor) {
                if (!woken) monitor.wait(Math.max(1, millis));
                woken = false;
            }
            return;
        }
        try {
            WatchKey key = service.poll(millis, TimeUnit.MILLISECONDS);
            while (key != null) {
                key.pollEvents();
                key.reset();
                key = service.poll();
            }
        } catch (ClosedWatchServiceException e) {
            // closing: the caller checks whether it should stop
        }
    }

    /** Wakes the delivery thread after a local change that the watch may not report (or when stopping). */
    void wake() {
        synchronized (monitor) {
            woken = true;
            monitor.notifyAll();
        }
    }

    @Override public void close() {
        wake();
        if (service != null) {
            try {
                service.close();
            } catch (IOException ignored) {
                // nothing left to release
            }
        }
    }
}
