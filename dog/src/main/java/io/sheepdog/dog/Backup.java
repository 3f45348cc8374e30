package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.client.Volume;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.SdResult;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** {@code vdi backup} and {@code vdi restore} (docs/dog.md §2.15). */
final class Backup {
    private Backup() {}

    private static final int WINDOW = 8;

    private static Volume open(Ctx c, String name, Vdis.Snap s) throws IOException {
        try {
            return Volume.openReadOnly(c.client(), name, s.id(), s.tag());
        } catch (SheepdogException e) {
            throw DogExit.failure(Vdis.openFailure(name, s, e.getMessage()));
        }
    }

    /** {@code vdi backup -F FROM -s TO NAME > stream}: the objects of TO that differ from FROM. */
    static int backup(Ctx c) throws IOException {
        String name = c.arg(0);
        if (!c.has('F') || !c.has('s')) throw DogExit.usage("Please specify snapshots with '-F' and '-s' options");
        Volume from = open(c, name, Vdis.parseSnap(c.opt('F')));
        Volume to = open(c, name, Vdis.snapOption(c));
        if (from.objectSize() != to.objectSize()) throw DogExit.failure("The snapshots have different object sizes");
        long objSize = to.objectSize();
        int count = Inode.objectCount(to.size(), to.blockSizeShift());
        OutputStream out = c.io.rawOut;
        Progress bar = new Progress(c.io, count, true);
        try {
            BackupStream.writeHeader(out);
        } catch (IOException e) {
            throw new VdiIo.StdoutClosed();
        }
        try (ExecutorService exec = Executors.newVirtualThreadPerTaskExecutor()) {
            ArrayDeque<CompletableFuture<byte[][]>> window = new ArrayDeque<>();
            ArrayDeque<Integer> idxs = new ArrayDeque<>();
            int next = 0;
            while (next < count || !window.isEmpty()) {
                while (next < count && window.size() < WINDOW) {
                    int idx = next++;
                    if (from.dataVid(idx) == to.dataVid(idx)) continue; // the same object (or both unallocated)
                    long off = idx * objSize;
                    int len = (int) Math.min(objSize, to.size() - off);
                    int fromLen = (int) Math.max(0, Math.min(len, from.size() - off));
                    idxs.add(idx);
                    window.add(CompletableFuture.supplyAsync(() -> {
                        try {
                            byte[] t = to.read(off, len);
                            byte[] f = fromLen == 0 ? new byte[0] : from.read(off, fromLen);
                            return new byte[][] {f, t};
                        } catch (IOException e) {
                            throw new CompletionException(e);
                        }
                    }, exec));
                }
                if (window.isEmpty()) break;
                byte[][] ft;
                int idx = idxs.poll();
                try {
                    ft = SheepClient.join(window.poll());
                } catch (SheepdogException e) {
                    throw DogExit.failure("Failed to read VDI " + name + ": " + e.getMessage());
                }
                int[] range = BackupStream.diffRange(ft[0], ft[1]);
                if (range != null) {
                    try {
                        BackupStream.writeRecord(out, idx, range[0], ft[1], range[0], range[1] - range[0]);
                    } catch (IOException e) {
                        throw new VdiIo.StdoutClosed();
                    }
                }
                bar.update(idx + 1);
            }
        }
        try {
            BackupStream.writeEnd(out);
        } catch (IOException e) {
            throw new VdiIo.StdoutClosed();
        }
        bar.done();
        return ExitCodes.SUCCESS;
    }

    /**
     * {@code vdi restore -s SNAP NAME < stream}. The whole input is read and checked (into a temporary file)
     * before anything on the cluster changes, so a truncated or foreign input changes nothing. Then, as the
     * original: the working VDI is deleted, a new VDI is cloned from SNAP and the records are written into it, and
     * finally a new working VDI is created from the old working VDI's parent while the restored VDI becomes a
     * snapshot.
     */
    static int restore(Ctx c) throws IOException {
        String name = c.arg(0);
        if (c.io.stdinTty) throw DogExit.failure("stdin must be pipe");
        Vdis.Snap s = Vdis.snapOption(c);
        if (!s.given()) throw DogExit.usage("Please specify the snapshot to restore with the '-s' option");
        int snapVid;
        try {
            snapVid = c.client().getVdiInfo(name, s.id(), s.tag()).vid();
        } catch (SheepdogException e) {
            // the original's two lines: read_vdi_obj's, then restore's own
            c.err.println(Vdis.openFailure(name, s, e.getMessage()));
            throw DogExit.failure("Snapshot ID " + s.id() + " or tag " + s.tag() + " doesn't exist");
        }
        Inode snap = Vdis.read(c, snapVid, false);
        int curVid = Vdis.lookup(c, name, Vdis.Snap.WORKING);
        Inode cur = Vdis.read(c, curVid, false);
        long objSize = snap.objectSize();
        long objects = snap.objectCount();

        Path spool = Files.createTempFile("dog-restore-", ".backup");
        try {
            int records = spoolAndValidate(c.io.in, spool, objSize, objects);
            SheepClient cl = c.client();
            int rc = Vdis.delete(c, name, Vdis.Snap.WORKING, curVid, 128, 0, 0);
            if (rc != SdResult.SUCCESS) throw DogExit.failure("Failed to delete the current state of " + name + ": " + SdResult.message(rc));
            SheepClient.VdiId restored;
            try {
                restored = cl.newVdi(new SheepClient.NewVdi(name, snap.vdiSize, snapVid, 0, snap.nrCopies, snap.copyPolicy,
                        snap.storePolicy, snap.blockSizeShift));
            } catch (SheepdogException e) {
                recreateWorking(c, cur, 0);
                throw DogExit.failure("Failed to create VDI " + name + ": " + e.getMessage());
            }
            try {
                apply(c, name, spool, objSize, records);
            } catch (IOException e) {
                try { Vdis.delete(c, name, Vdis.Snap.WORKING, restored.vid(), 128, 0, 0); } catch (IOException ignored) { }
                recreateWorking(c, cur, 0);
                throw DogExit.failure("Failed to restore VDI " + name + ": " + e.getMessage());
            }
            try {
                recreateWorking(c, cur, 1);
            } catch (SheepdogException e) {
                throw DogExit.failure("Failed to create the working VDI of " + name + ": " + e.getMessage());
            }
            return ExitCodes.SUCCESS;
        } catch (BackupStream.BadStream e) {
            throw DogExit.failure(e.getMessage());
        } finally {
            Files.deleteIfExists(spool);
        }
    }

    /**
     * NEW_VDI based on the old working VDI's parent: with snapid 1 the VDI now under the name becomes a snapshot
     * and the new VDI the working one; with snapid 0 (after a failure) it is simply re-created.
     */
    private static void recreateWorking(Ctx c, Inode cur, int snapId) throws IOException {
        c.client().newVdi(new SheepClient.NewVdi(cur.name, cur.vdiSize, cur.parentVdiId, snapId, cur.nrCopies, cur.copyPolicy,
                cur.storePolicy, cur.blockSizeShift));
    }

    /** Copies stdin to {@code spool} while checking its structure; returns the number of data records. */
    static int spoolAndValidate(InputStream stdin, Path spool, long objSize, long objects) throws IOException {
        InputStream in = new BufferedInputStream(stdin, 1 << 16);
        int records = 0;
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(spool), 1 << 16)) {
            BackupStream.readHeader(in);
            BackupStream.writeHeader(out);
            while (true) {
                BackupStream.Record r = BackupStream.readRecord(in);
                if (r.isEnd()) break;
                BackupStream.validate(r, objSize, objects);
                byte[] d = BackupStream.readData(in, r.length());
                BackupStream.writeRecord(out, r.idx(), r.offset(), d, 0, d.length);
                records++;
            }
            BackupStream.writeEnd(out);
        }
        return records;
    }

    /** Writes the spooled records into the (new) working VDI {@code name}. */
    private static void apply(Ctx c, String name, Path spool, long objSize, int records) throws IOException {
        Progress bar = new Progress(c.io, records, true);
        try (Volume v = Volume.openWritable(c.client(), name, false);
             InputStream in = new BufferedInputStream(Files.newInputStream(spool), 1 << 16);
             ExecutorService exec = Executors.newVirtualThreadPerTaskExecutor()) {
            BackupStream.readHeader(in);
            ArrayDeque<CompletableFuture<Void>> window = new ArrayDeque<>();
            int done = 0;
            while (true) {
                BackupStream.Record r = BackupStream.readRecord(in);
                if (r.isEnd()) break;
                byte[] d = BackupStream.readData(in, r.length());
                long at = (r.idx() & 0xffffffffL) * objSize + (r.offset() & 0xffffffffL);
                window.add(CompletableFuture.runAsync(() -> {
                    try {
                        v.write(at, d);
                    } catch (IOException e) {
                        throw new CompletionException(e);
                    }
                }, exec));
                if (window.size() >= WINDOW) {
                    SheepClient.join(window.poll());
                    bar.update(++done);
                }
            }
            while (!window.isEmpty()) {
                SheepClient.join(window.poll());
                bar.update(++done);
            }
        }
        bar.done();
    }
}
