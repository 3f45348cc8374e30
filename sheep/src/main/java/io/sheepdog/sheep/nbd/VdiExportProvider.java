package io.sheepdog.sheep.nbd;

import io.netty.buffer.ByteBuf;
import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.client.VdiEnumerator;
import io.sheepdog.client.Volume;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.ops.ClientInfo;
import io.sheepdog.sheep.ops.LocalTransport;
import io.sheepdog.sheep.ops.RequestProcessor;
import io.sheepdog.sheep.store.AlignedBuffers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the cluster's VDIs over NBD: export name = VDI name, {@code NAME@TAG} or {@code NAME@SNAPID} a snapshot
 * (read-only). Each export is a {@link Volume} over this sheep's own request processor, so NBD I/O takes exactly
 * the path of a Sheepdog-protocol client (gateway, replicas, copy-on-write) and any sheep serves any VDI. Opening a
 * working VDI for writing takes its VDI lock for this NBD connection; a second writer waits and takes the lock over
 * at its first write once the holder is quiet, fencing the holder ({@link WriterLocks}), or, in strict mode, is
 * refused.
 */
public final class VdiExportProvider implements NbdExportProvider {
    private static final Logger LOG = LoggerFactory.getLogger(VdiExportProvider.class);
    /** Connection ids for in-daemon clients, far from the ids of TCP connections. */
    private static final AtomicLong IDS = new AtomicLong(1L << 48);

    private final RequestProcessor processor;
    private final WriterLocks locks;     // null: strict
    private final boolean strict;

    /** Strict: a second writer of a VDI is refused at open. */
    public VdiExportProvider(RequestProcessor processor) { this(processor, null, true); }

    public VdiExportProvider(RequestProcessor processor, WriterLocks locks, boolean strict) {
        this.processor = processor;
        this.locks = locks;
        this.strict = strict || locks == null;
    }

    /** The snapshot part of an export name: none, a numeric snapshot id, or a tag. */
    record ExportName(String vdi, int snapId, String tag) {
        boolean snapshot() { return snapId != 0 || !tag.isEmpty(); }

        static ExportName parse(String export) {
            int at = export.lastIndexOf('@');
            if (at <= 0 || at == export.length() - 1) return new ExportName(export, 0, "");
            String vdi = export.substring(0, at);
            String snap = export.substring(at + 1);
            if (snap.matches("[0-9]{1,9}")) return new ExportName(vdi, Integer.parseInt(snap), "");
            return new ExportName(vdi, 0, snap);
        }
    }

    @Override
    public NbdExport open(String exportName, boolean readOnlyRequested) throws NbdException {
        return open(exportName, readOnlyRequested, null);
    }

    /** Opens an export for the NBD client at {@code peer} ({@code host:port}; may be null). */
    @Override
    public NbdExport open(String exportName, boolean readOnlyRequested, String peer) throws NbdException {
        ExportName n = ExportName.parse(exportName);
        if (n.vdi().isEmpty()) throw NbdException.unknownExport(exportName);
        ClientInfo client = clientOf(peer);
        LocalTransport transport = new LocalTransport(processor, client);
        SheepClient sc = new SheepClient(transport);
        try {
            Volume v;
            if (n.snapshot()) v = Volume.openReadOnly(sc, n.vdi(), n.snapId(), n.tag());
            else if (readOnlyRequested) v = Volume.openReadOnly(sc, n.vdi(), 0, "");
            else if (strict) v = Volume.openWritable(sc, n.vdi(), true);
            else return openSharedWritable(sc, n.vdi(), exportName, client);
            LOG.info("NBD client {} opened {}{}", client.display(), exportName, v.isWritable() ? " for writing" : " read-only");
            return new VdiExport(v, exportName);
        } catch (SheepdogException e) {
            throw switch (e.result()) {
                case SdResult.NO_VDI, SdResult.NO_TAG -> NbdException.unknownExport(exportName);
                case SdResult.VDI_LOCKED -> NbdException.refused("VDI " + n.vdi() + " is open for writing by another client");
                case SdResult.WAIT_FOR_FORMAT, SdResult.WAIT_FOR_JOIN, SdResult.SHUTDOWN ->
                        NbdException.shutdown("the cluster is not running: " + SdResult.message(e.result()));
                default -> NbdException.io("cannot open " + exportName + ": " + SdResult.message(e.result()));
            };
        } catch (IOException e) {
            throw NbdException.io("cannot open " + exportName + ": " + e.getMessage(), e);
        }
    }

    /** A writer under the handover model: the lock if it is free, else a waiter that takes it over when it writes. */
    private NbdExport openSharedWritable(SheepClient sc, String vdi, String exportName, ClientInfo client) throws IOException {
        WriterLocks.Standing standing = WriterLocks.Standing.HOLDING;
        int lockedVid = 0;
        try {
            lockedVid = sc.lockVdi(vdi, 0, "", Proto.LOCK_TYPE_NORMAL).vid();
        } catch (SheepdogException e) {
            if (e.result() != SdResult.VDI_LOCKED) throw e;
            standing = WriterLocks.Standing.WAITING;
        }
        Volume v;
        try {
            v = Volume.openWritable(sc, vdi, false);
        } catch (IOException | RuntimeException e) {
            if (lockedVid != 0) releaseQuietly(sc, lockedVid);
            throw e;
        }
        WriterLocks.Writer w = locks.add(v.vid(), vdi, client, standing);
        int vid = v.vid();
        w.onRelease(() -> releaseQuietly(sc, locks.cluster().working(vid))); // where snapshots moved the lock
        LOG.info("NBD client {} opened {} for writing{}", client.display(), exportName,
                standing == WriterLocks.Standing.WAITING ? " (another client holds its lock: this one takes it over at"
                        + " its first write once the holder is quiet)" : "");
        return new VdiExport(v, exportName, sc, w, locks);
    }

    private static void releaseQuietly(SheepClient sc, int vid) {
        try {
            sc.releaseVdi(vid, Proto.LOCK_TYPE_NORMAL);
        } catch (IOException e) {
            LOG.warn("cannot release the lock of VDI {}: {}", Integer.toHexString(vid), e.getMessage());
        }
    }

    /**
     * NBD_OPT_INFO (nbdinfo) only reads size and flags: open read-only so describing a VDI never takes, or is
     * refused, its lock while qemu writes to it, and report the flags a writer would get.
     */
    @Override
    public NbdExport openForInfo(String exportName, boolean readOnlyRequested) throws NbdException {
        NbdExport view = open(exportName, true, null);
        if (readOnlyRequested || ExportName.parse(exportName).snapshot()) return view;
        return new DescribedWritable(view);
    }

    /** A read-only view that describes itself as the writable export {@link #open} would give. */
    private static final class DescribedWritable implements NbdExport {
        private final NbdExport view;

        DescribedWritable(NbdExport view) { this.view = view; }

        @Override public long size() { return view.size(); }
        @Override public boolean readOnly() { return false; }
        @Override public boolean canMultiConn() { return false; }
        @Override public int preferredBlockSize() { return view.preferredBlockSize(); }
        @Override public String description() { return view.description(); }
        @Override public void read(long offset, int length, ByteBuf dst) throws IOException { view.read(offset, length, dst); }
        @Override public void write(long offset, ByteBuf data, boolean fua) throws IOException { throw NbdException.notPermitted("describe only"); }
        @Override public void flush() { }
        @Override public void trim(long offset, long length, boolean fua) throws IOException { throw NbdException.notPermitted("describe only"); }
        @Override public void writeZeroes(long offset, long length, boolean noHole, boolean fua) throws IOException { throw NbdException.notPermitted("describe only"); }
        @Override public List<NbdExtent> allocation(long offset, long length) throws IOException { return view.allocation(offset, length); }
        @Override public void close() { view.close(); }
    }

    private static ClientInfo clientOf(String peer) {
        String host = "127.0.0.1";
        int port = 0;
        if (peer != null) {
            String p = peer.startsWith("/") ? peer.substring(1) : peer;
            int colon = p.lastIndexOf(':');
            if (colon > 0) {
                try {
                    port = Integer.parseInt(p.substring(colon + 1));
                    host = p.substring(0, colon);
                } catch (NumberFormatException ignored) {
                    // not host:port (a Unix socket): keep the defaults
                }
            }
        }
        byte[] addr;
        try {
            addr = NodeId.addrBytes(host);
        } catch (IllegalArgumentException e) {
            addr = NodeId.addrBytes("127.0.0.1");
        }
        return new ClientInfo(addr, port, IDS.incrementAndGet());
    }

    @Override
    public List<String> list() {
        List<String> out = new ArrayList<>();
        try {
            SheepClient sc = new SheepClient(new LocalTransport(processor, ClientInfo.INTERNAL));
            for (Inode i : VdiEnumerator.list(sc, false, vid -> { })) {
                if (!i.isSnapshot()) out.add(i.name);
            }
        } catch (IOException e) {
            LOG.warn("cannot list VDIs for NBD: {}", e.getMessage());
        }
        return out;
    }

    @Override
    public boolean exists(String exportName) {
        ExportName n = ExportName.parse(exportName);
        try {
            SheepClient sc = new SheepClient(new LocalTransport(processor, ClientInfo.INTERNAL));
            sc.getVdiInfo(n.vdi(), n.snapId(), n.tag());
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Whether a write of whole aligned blocks goes to the gateway in one aligned direct buffer (see
     * {@link VdiExport#write}); {@code -Dsheepdog.gatewayOneBuffer=false} copies it into an array instead, as before
     * (for comparisons: bench/RESULTS.md).
     */
    static final boolean ONE_BUFFER = !"false".equals(System.getProperty("sheepdog.gatewayOneBuffer"));

    /** One opened VDI. */
    static final class VdiExport implements NbdExport {
        private final Volume v;
        private final String name;
        private final SheepClient sc;            // null with no lock model (read-only, strict)
        private final WriterLocks.Writer writer; // null with no lock model
        private final WriterLocks locks;

        VdiExport(Volume v, String name) {
            this(v, name, null, null, null);
        }

        VdiExport(Volume v, String name, SheepClient sc, WriterLocks.Writer writer, WriterLocks locks) {
            this.v = v;
            this.name = name;
            this.sc = sc;
            this.writer = writer;
            this.locks = locks;
        }

        /**
         * Before a write: this connection must hold the VDI's lock. A waiter takes it over (the holder's node fences
         * the holder once it is quiet); a fenced holder, or a waiter whose holder stays busy, is refused (EPERM):
         * its write is never applied.
         */
        private void beginWrite() throws NbdException {
            if (writer == null) return;
            if (writer.beginWrite()) {
                if (locks.cluster().holds(writer.vid, writer.client)) return;
                writer.endWrite();
                writer.fence(); // the cluster gave the lock to someone else (dog vdi lock unlock, a handover)
            }
            takeOver();
            if (!writer.beginWrite()) throw lost();
        }

        private void endWrite() {
            if (writer != null) writer.endWrite();
        }

        private NbdException lost() {
            return NbdException.notPermitted("VDI " + writer.vdi + " was taken over by another client: this connection"
                    + " may no longer write to it");
        }

        private synchronized void takeOver() throws NbdException {
            WriterLocks.Standing st = writer.standing();
            if (st == WriterLocks.Standing.HOLDING) return;
            if (st == WriterLocks.Standing.FENCED) throw lost();
            long deadline = System.nanoTime() + WriterLocks.HOLDER_GONE_WAIT_MS * 1_000_000;
            try {
                while (true) {
                    // ours already: the lock was taken on an earlier turn, and reading the index failed after it
                    boolean ours = locks.cluster().holds(writer.vid, writer.client);
                    if (!ours && locks.askHolder(writer.vid, deadline) != SdResult.SUCCESS) break;
                    try {
                        if (!ours) sc.lockVdi(writer.vdi, 0, "", Proto.LOCK_TYPE_NORMAL);
                        // the holder may have allocated objects since this connection opened the VDI: writing with
                        // the old index would create them again over its data, so no write before this succeeded
                        v.refresh();
                        writer.holding();
                        LOG.info("NBD client {} took over the lock of VDI {}", writer.client.display(), writer.vdi);
                        return;
                    } catch (SheepdogException e) {
                        // VDI_LOCKED: the holder's node said nothing there holds it, yet the cluster still does: that
                        // node restarted before its old self was seen to leave (which releases the lock), or another
                        // taker came first. Ask again (the new holder, if any, decides) until the cluster catches up.
                        // Any other failure but a VDI gone is this node's cluster operation failing (it is being
                        // re-joined, its driver lost its server): the write waits for it like the others do.
                        if (e.result() == SdResult.NO_VDI || System.nanoTime() > deadline && e.result() != SdResult.VDI_LOCKED) {
                            throw nbdError(e);
                        }
                    } catch (IOException e) {
                        if (System.nanoTime() > deadline) {
                            throw NbdException.io("cannot take the lock of " + writer.vdi + ": " + e.getMessage(), e);
                        }
                    }
                    if (System.nanoTime() > deadline) break;
                    Thread.sleep(100);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw NbdException.io("interrupted while waiting for the lock of " + writer.vdi, e);
            }
            throw NbdException.notPermitted("VDI " + writer.vdi + " is being written by another client; this connection"
                    + " may write once that client stops");
        }

        /** A connection that does not hold the lock reads what the holder wrote since it opened the VDI. */
        private void refreshUnlessHolding() throws IOException {
            if (writer != null && writer.standing() != WriterLocks.Standing.HOLDING) {
                try {
                    v.refresh();
                } catch (SheepdogException e) {
                    throw nbdError(e);
                }
            }
        }

        @Override public long size() { return v.size(); }
        @Override public boolean readOnly() { return !v.isWritable(); }
        /** Read-only exports never change, so several connections may read them; a writer holds the VDI lock alone. */
        @Override public boolean canMultiConn() { return !v.isWritable(); }
        @Override public int preferredBlockSize() { return 4096; }
        @Override public String description() { return "Sheepdog VDI " + name; }

        /** Each object's reply goes straight into the reply buffer: no array the size of the whole read. */
        @Override
        public void read(long offset, int length, ByteBuf dst) throws IOException {
            refreshUnlessHolding();
            try {
                v.read(offset, length, new Volume.ReadSink() {
                    @Override public void data(int at, byte[] src, int srcOff, int n) { dst.writeBytes(src, srcOff, n); }
                    @Override public void zeros(int at, int n) { dst.writeZero(n); }
                });
            } catch (SheepdogException e) {
                throw nbdError(e);
            }
        }

        /**
         * The NBD error a cluster failure becomes: a full store is ENOSPC (QEMU then pauses the VM instead of handing
         * the guest an I/O error, {@code werror=enospc}), a snapshot EPERM, anything else EIO; the message names the
         * cause.
         */
        static NbdException nbdError(SheepdogException e) {
            return switch (e.result()) {
                case SdResult.NO_SPACE -> NbdException.noSpace(e.getMessage());
                case SdResult.READONLY -> NbdException.notPermitted(e.getMessage());
                default -> NbdException.io(e.getMessage(), e);
            };
        }

        /**
         * Each object's part of the payload is copied once: of whole aligned blocks into an aligned direct buffer
         * (store/AlignedBuffers, a pooled one if one is free) that every copy is made from, the gateway's own written to the disk as it is and
         * the others sent from it (one buffer from here to the disks); else into the array its request sends. Nothing
         * keeps {@code data} or those buffers after the call returns, and the call returns only when every copy is
         * durable (FUA is implied).
         */
        @Override
        public void write(long offset, ByteBuf data, boolean fua) throws IOException {
            int base = data.readerIndex();
            boolean replicated = v.copyPolicy() == 0;
            List<ByteBuffer> lent = new ArrayList<>(1);
            beginWrite();
            try {
                v.write(offset, data.readableBytes(), (at, n) -> {
                    ByteBuffer b = replicated && ONE_BUFFER && aligned(offset + at, n) ? AlignedBuffers.takePooled(n) : null;
                    if (b != null) {
                        lent.add(b);
                    } else {
                        b = ByteBuffer.allocate(n);
                    }
                    data.getBytes(base + at, b.duplicate());
                    return b;
                });
            } catch (SheepdogException e) {
                throw nbdError(e);
            } finally {
                endWrite();
                for (ByteBuffer b : lent) AlignedBuffers.release(b); // the write is over: no copy reads them any more
            }
        }

        private static boolean aligned(long offset, int n) {
            return offset % AlignedBuffers.BLOCK == 0 && n % AlignedBuffers.BLOCK == 0 && n <= AlignedBuffers.LARGE;
        }

        /** Every acknowledged write is already durable; a flush tells the lock model this writer is settled. */
        @Override
        public void flush() {
            if (writer != null) writer.flushed();
        }

        @Override
        public void trim(long offset, long length, boolean fua) throws IOException {
            beginWrite();
            try {
                v.discard(offset, length);
            } catch (SheepdogException e) {
                throw nbdError(e);
            } finally {
                endWrite();
            }
        }

        @Override
        public void writeZeroes(long offset, long length, boolean noHole, boolean fua) throws IOException {
            beginWrite();
            try {
                v.writeZeroes(offset, length);
            } catch (SheepdogException e) {
                throw nbdError(e);
            } finally {
                endWrite();
            }
        }

        @Override
        public List<NbdExtent> allocation(long offset, long length) throws IOException {
            refreshUnlessHolding();
            List<NbdExtent> out = new ArrayList<>();
            for (Volume.Extent e : v.allocationMap(offset, length)) {
                if (e.length() <= 0) continue;
                out.add(e.allocated() ? NbdExtent.data(e.length()) : NbdExtent.hole(e.length()));
            }
            return out;
        }

        @Override
        public void close() {
            if (writer != null) {
                locks.remove(writer);
                // only the holder gives the lock back: a fenced connection's lock is someone else's now
                if (writer.standing() == WriterLocks.Standing.HOLDING && locks.cluster().holds(writer.vid, writer.client)) {
                    releaseQuietly(sc, locks.cluster().working(writer.vid));
                }
            }
            try {
                v.close();
            } catch (IOException e) {
                LOG.warn("closing NBD export {}: {}", name, e.getMessage());
            }
        }
    }
}
