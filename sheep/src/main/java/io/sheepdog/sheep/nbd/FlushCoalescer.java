package io.sheepdog.sheep.nbd;

import java.io.IOException;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Group commit for FLUSH: a FLUSH must be answered by an export flush that <em>started</em> after the FLUSH was
 * received. Requests take a ticket on arrival; one flusher at a time calls {@link NbdExport#flush()} and, on
 * success, answers every ticket issued before it started. Concurrent FLUSHes (several qemu queues, fio fsync
 * bursts) thus cost one export flush instead of one each. A failed flush answers only its own caller; the others
 * retry.
 */
final class FlushCoalescer {
    private final NbdExport export;
    private final ReentrantLock flushLock = new ReentrantLock();
    private final Object ticketLock = new Object();
    private long issued;        // guarded by ticketLock
    private volatile long done; // highest ticket covered by a completed flush

    FlushCoalescer(NbdExport export) { this.export = export; }

    void flush() throws IOException {
        long ticket;
        synchronized (ticketLock) { ticket = ++issued; }
        flushLock.lock();
        try {
            if (done >= ticket) return;         // a flush that started after our ticket has finished
            long covers;
            synchronized (ticketLock) { covers = issued; }
            export.flush();
            done = covers;
        } finally {
            flushLock.unlock();
        }
    }
}
