package io.sheepdog.sheep.nbd;

import io.netty.buffer.ByteBuf;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/** Serves {@link MemoryDisk}s by name; an exclusive disk refuses a second writer like a locked VDI. */
final class MemoryExportProvider implements NbdExportProvider {
    private final Map<String, MemoryDisk> disks = new LinkedHashMap<>();
    final AtomicInteger closed = new AtomicInteger();

    synchronized MemoryExportProvider add(MemoryDisk d) {
        disks.put(d.name, d);
        return this;
    }

    synchronized MemoryDisk disk(String name) { return disks.get(name); }

    @Override
    public synchronized NbdExport open(String exportName, boolean readOnlyRequested) throws NbdException {
        MemoryDisk d = disks.get(exportName);
        if (d == null) throw NbdException.unknownExport(exportName);
        boolean ro = readOnlyRequested || d.readOnly;
        if (!ro && d.exclusiveWriter && d.writers.get() > 0)
            throw NbdException.refused("export '" + exportName + "' is locked by another writer");
        if (!ro) d.writers.incrementAndGet();
        d.openCount.incrementAndGet();
        return new Export(d, ro, !ro);
    }

    /** Describing an export takes no writer lock, so nbdinfo works while a writer has the disk. */
    @Override
    public synchronized NbdExport openForInfo(String exportName, boolean readOnlyRequested) throws NbdException {
        MemoryDisk d = disks.get(exportName);
        if (d == null) throw NbdException.unknownExport(exportName);
        d.openCount.incrementAndGet();
        return new Export(d, readOnlyRequested || d.readOnly, false);
    }

    @Override
    public synchronized List<String> list() { return new ArrayList<>(disks.keySet()); }

    @Override
    public String description(String exportName) { return "memory disk " + exportName; }

    private final class Export implements NbdExport {
        private final MemoryDisk d;
        private final boolean ro;
        private final boolean writer;     // holds one of the disk's writer slots
        private final AtomicInteger closes = new AtomicInteger();

        Export(MemoryDisk d, boolean ro, boolean writer) {
            this.d = d;
            this.ro = ro;
            this.writer = writer;
        }

        @Override public long size() { return d.data.length; }
        @Override public boolean readOnly() { return ro; }
        @Override public boolean canMultiConn() { return d.multiConn; }
        @Override public int preferredBlockSize() { return 4096; }
        @Override public String description() { return "memory disk " + d.name; }
        @Override public void read(long offset, int length, ByteBuf dst) { d.read(offset, length, dst); }

        @Override
        public void write(long offset, ByteBuf data, boolean fua) throws NbdException {
            if (ro) throw NbdException.notPermitted("read-only");   // the server must never get here
            d.write(offset, data, fua);
        }

        @Override public void flush() { d.flushes.incrementAndGet(); }

        @Override
        public void trim(long offset, long length, boolean fua) throws NbdException {
            if (ro) throw NbdException.notPermitted("read-only");
            d.zero(offset, length, false);
        }

        @Override
        public void writeZeroes(long offset, long length, boolean noHole, boolean fua) throws NbdException {
            if (ro) throw NbdException.notPermitted("read-only");
            d.zero(offset, length, noHole);
        }

        @Override public List<NbdExtent> allocation(long offset, long length) { return d.allocation(offset, length); }

        @Override
        public void close() {
            if (closes.incrementAndGet() != 1) throw new IllegalStateException("export closed twice");
            if (writer) d.writers.decrementAndGet();
            closed.incrementAndGet();
        }
    }
}
