package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.client.Volume;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * {@code vdi read} and {@code vdi write}: stream a VDI to stdout or stdin into a VDI, with up to {@value #WINDOW}
 * object-sized requests in flight so that a 1 GiB transfer is bound by the cluster, not by round trips.
 */
final class VdiIo {
    private VdiIo() {}

    static final int WINDOW = 16;
    /** Chunks are at most one object and at most 4 MiB (objects can be up to 2 GiB with -z 31). */
    static final int MAX_CHUNK = 4 << 20;

    /** Thrown when stdout cannot be written (a closed pipe): dog stops quietly like a C program killed by SIGPIPE. */
    static final class StdoutClosed extends RuntimeException {
        StdoutClosed() { super(null, null, false, false); }
    }

    /** One request in flight: its buffer (given back when it completes), the bytes it covers, its completion. */
    private record Chunk(byte[] buf, int len, CompletableFuture<Integer> done) { }

    private static long chunkEnd(long pos, long end, long objSize) {
        long objEnd = (pos / objSize + 1) * objSize;
        return Math.min(end, Math.min(objEnd, pos + MAX_CHUNK));
    }

    /** {@code vdi read [-s snap] NAME [OFFSET [LEN]]}. */
    static int read(Ctx c) throws IOException {
        String name = c.arg(0);
        Vdis.Snap s = Vdis.snapOption(c);
        Volume v;
        try {
            v = Volume.openReadOnly(c.client(), name, s.id(), s.tag());
        } catch (SheepdogException e) {
            throw DogExit.failure(Vdis.openFailure(name, s, e.getMessage()));
        }
        long offset = c.arg(1) == null ? 0 : VdiCmds.parseSize(c.arg(1));
        if (offset > v.size()) throw DogExit.failure("Read offset is beyond the end of the VDI");
        long len = c.arg(2) == null ? v.size() - offset : VdiCmds.parseSize(c.arg(2));
        if (offset + len > v.size()) throw DogExit.failure("Read length is beyond the end of the VDI");
        Progress bar = new Progress(c.io, len, false);
        long end = offset + len;
        try (ExecutorService exec = Executors.newVirtualThreadPerTaskExecutor()) {
            // Chunk buffers are reused: a 1 GiB read would otherwise allocate 256 fresh 4 MiB arrays, and the
            // heap (hence dog's RSS) grows with that garbage.
            ArrayDeque<Chunk> window = new ArrayDeque<>();
            ArrayDeque<byte[]> spare = new ArrayDeque<>();
            int bufSize = (int) Math.min(v.objectSize(), MAX_CHUNK);
            long pos = offset, done = 0;
            while (pos < end || !window.isEmpty()) {
                while (pos < end && window.size() < WINDOW) {
                    long from = pos;
                    int n = (int) (chunkEnd(pos, end, v.objectSize()) - pos);
                    byte[] buf = spare.isEmpty() ? new byte[bufSize] : spare.pop();
                    window.add(new Chunk(buf, n, CompletableFuture.supplyAsync(() -> {
                        try {
                            v.read(from, buf, 0, n);
                            return n;
                        } catch (IOException e) {
                            throw new CompletionException(e);
                        }
                    }, exec)));
                    pos += n;
                }
                Chunk chunk = window.poll();
                try {
                    SheepClient.join(chunk.done());
                } catch (SheepdogException e) {
                    window.forEach(f -> f.done().cancel(false));
                    throw DogExit.failure("Failed to read VDI: " + e.getMessage());
                }
                try {
                    c.io.rawOut.write(chunk.buf(), 0, chunk.len());
                } catch (IOException e) {
                    window.forEach(f -> f.done().cancel(false));
                    throw new StdoutClosed();
                }
                spare.push(chunk.buf());
                done += chunk.len();
                bar.update(done);
            }
        }
        bar.done();
        return ExitCodes.SUCCESS;
    }

    /**
     * {@code vdi write NAME [OFFSET [LEN]]}: copies stdin into the VDI. If stdin ends before LEN bytes, exactly
     * the bytes that were read are written: the original padded the last chunk with zeros up to the chunk size,
     * which overwrote data after the input's end; a user writing a file into a VDI expects only the file's bytes
     * to change.
     */
    static int write(Ctx c) throws IOException {
        String name = c.arg(0);
        Volume v;
        try {
            v = Volume.openWritable(c.client(), name, false);
        } catch (SheepdogException e) {
            throw DogExit.failure(Vdis.openFailure(name, Vdis.Snap.WORKING, e.getMessage()));
        }
        long offset = c.arg(1) == null ? 0 : VdiCmds.parseSize(c.arg(1));
        if (offset > v.size()) throw DogExit.failure("Write offset is beyond the end of the VDI");
        long len = c.arg(2) == null ? v.size() - offset : VdiCmds.parseSize(c.arg(2));
        if (offset + len > v.size()) throw DogExit.failure("Write length is beyond the end of the VDI");
        Progress bar = new Progress(c.io, len, false);
        long end = offset + len;
        try (ExecutorService exec = Executors.newVirtualThreadPerTaskExecutor()) {
            ArrayDeque<Chunk> window = new ArrayDeque<>();
            ArrayDeque<byte[]> spare = new ArrayDeque<>();      // reused chunk buffers, as in read
            int bufSize = (int) Math.min(v.objectSize(), MAX_CHUNK);
            long pos = offset, done = 0;
            boolean eof = false;
            while ((pos < end && !eof) || !window.isEmpty()) {
                while (pos < end && !eof && window.size() < WINDOW) {
                    int n = (int) (chunkEnd(pos, end, v.objectSize()) - pos);
                    byte[] buf = spare.isEmpty() ? new byte[bufSize] : spare.pop();
                    int got = c.io.in.readNBytes(buf, 0, n);
                    if (got < n) eof = true;
                    if (got == 0) {
                        spare.push(buf);
                        break;
                    }
                    long at = pos;
                    window.add(new Chunk(buf, got, CompletableFuture.supplyAsync(() -> {
                        try {
                            v.write(at, buf, 0, got);
                            return got;
                        } catch (IOException e) {
                            throw new CompletionException(e);
                        }
                    }, exec)));
                    pos += got;
                }
                if (window.isEmpty()) break;
                Chunk chunk = window.poll();
                try {
                    done += SheepClient.join(chunk.done());
                } catch (SheepdogException e) {
                    for (Chunk f : window) f.done().handle((x, t) -> null).join(); // let started writes finish
                    throw DogExit.failure("Failed to write VDI: " + e.getMessage());
                }
                spare.push(chunk.buf());
                bar.update(done);
            }
        }
        bar.done();
        return ExitCodes.SUCCESS;
    }
}
