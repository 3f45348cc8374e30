package io.sheepdog.sheep.gateway;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.ErasureCode;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.node.ClusterView;
import io.sheepdog.sheep.ops.SdError;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The gateway's I/O on erasure-coded objects (PROTOCOL.md §13). A write covers whole 512-byte stripes: the stripes
 * it only partly covers are read first and merged (read-modify-write), then the stripes are cut into d data and p
 * parity strips, and position j of the placement writes strip j. A read asks the d data positions for their strips
 * and puts the stripes back together; strips it cannot get are rebuilt from parity, so a read succeeds while any d
 * of the d+p positions answer.
 */
final class ErasureCodedIo {
    /**
     * Read-modify-writes of one object through this gateway go one at a time, so two writes into the same stripe
     * cannot each merge the other's old bytes. (A client writing the same stripe through two gateways at once has
     * no order between the writes in any case.)
     */
    private static final int LOCKS = 256;

    private final Gateway gw;
    private final ReentrantLock[] locks = new ReentrantLock[LOCKS];

    ErasureCodedIo(Gateway gw) {
        this.gw = gw;
        for (int i = 0; i < LOCKS; i++) locks[i] = new ReentrantLock();
    }

    // ------------------------------------------------------------------ read

    byte[] read(long oid, ErasureCode ec, long offset, int len) throws SdError {
        long start = floor(offset);
        long end = ceil(offset + len);
        byte[] stripes = readStripes(oid, ec, start, (int) (end - start));
        if (start == offset && stripes.length == len) return stripes;
        byte[] out = new byte[len];
        System.arraycopy(stripes, (int) (offset - start), out, 0, len);
        return out;
    }

    /** Whole stripes [start, start+len) of the object, from any d of its strips. */
    private byte[] readStripes(long oid, ErasureCode ec, long start, int len) throws SdError {
        int d = ec.dataStrips();
        long stripOff = ec.stripOffset(start);
        int stripLen = ec.stripLength(len);
        long deadline = System.currentTimeMillis() + Gateway.RETRY_DEADLINE_MS;
        while (true) {
            ClusterView v = gw.usableView();
            List<SdNode> targets = v.ring().targets(oid, v.ring().effectiveCopies(ec.totalStrips()));
            if (targets.size() < d) {
                throw new SdError(SdResult.HALT, String.format("read %016x: %d zones for %d data strips", oid, targets.size(), d));
            }
            byte[][] strips = new byte[ec.totalStrips()][];
            int[] results = new int[targets.size()];
            // the data strips first: with all of them there is nothing to decode
            int have = fetch(oid, ec, v, targets, 0, Math.min(d, targets.size()), stripOff, stripLen, strips, results);
            if (have < d) have += fetch(oid, ec, v, targets, d, targets.size(), stripOff, stripLen, strips, results);
            if (have >= d) {
                if (have < ec.totalStrips()) ec.reconstructData(strips);
                byte[] out = new byte[len];
                ec.join(java.util.Arrays.copyOf(strips, d), out, 0);
                return out;
            }
            boolean retry = false;
            boolean allAbsent = true;
            int lastErr = SdResult.EIO;
            for (int res : results) {
                if (Gateway.isRetryable(res)) retry = true;
                if (res != SdResult.NO_OBJ) allAbsent = false;
                if (res != SdResult.SUCCESS && res != SdResult.NO_OBJ) lastErr = res;
            }
            if (allAbsent) throw new SdError(SdResult.NO_OBJ, String.format("read %016x", oid));
            // Some strips are there but fewer than d: a membership change or recovery is under way. Wait for it.
            if (!gw.awaitNextEpoch(v, deadline)) {
                if (lastErr == SdResult.NETWORK_ERROR || !retry) lastErr = SdResult.EIO;
                throw new SdError(lastErr, String.format("read %016x: %d of the %d strips needed", oid, have, d));
            }
        }
    }

    /** Reads the strips of positions [from, to) in parallel into {@code strips}; returns how many came back. */
    private int fetch(long oid, ErasureCode ec, ClusterView v, List<SdNode> targets, int from, int to, long stripOff,
            int stripLen, byte[][] strips, int[] results) {
        List<CompletableFuture<Reply>> replies = new ArrayList<>(java.util.Collections.nCopies(to - from, null));
        // the remote strips first, then the local one (read in this thread): the read takes as long as the slowest
        // strip, not the local read plus the remote ones
        for (int pass = 0; pass < 2; pass++) {
            for (int i = from; i < to; i++) {
                if (gw.isSelf(targets.get(i)) != (pass == 1)) continue;
                SdRequest req = new SdRequest().opcode(Opcodes.READ_PEER).protoVer(Proto.SHEEP_PROTO_VER).epoch(v.epoch())
                        .objOid(oid).objOffset(stripOff).dataLength(stripLen).flags(SdFlags.CMD_FWD)
                        .objCopyPolicy(ec.policy()).objEcIndex(i);
                replies.set(i - from, gw.sendAsyncOrLocal(targets.get(i), req, null));
            }
        }
        int got = 0;
        for (int i = from; i < to; i++) {
            Reply r = Gateway.await(replies.get(i - from));
            results[i] = r.result();
            if (r.result() == SdResult.SUCCESS && r.data().length == stripLen) {
                strips[i] = r.data();
                got++;
            }
        }
        return got;
    }

    // ------------------------------------------------------------------ write, create, remove

    /** Writes {@code data} at {@code offset} of an existing object. */
    void write(long oid, ErasureCode ec, long offset, byte[] data) throws SdError {
        ReentrantLock l = lockOf(oid);
        l.lock();
        try {
            long start = floor(offset);
            byte[] stripes = merged(oid, ec, offset, data, false);
            send(Opcodes.WRITE_PEER, oid, ec, start, stripes);
        } finally {
            l.unlock();
        }
    }

    /** Creates the object with {@code data} at {@code offset} (zeros elsewhere), or with {@code base} overlaid. */
    void create(long oid, ErasureCode ec, long offset, byte[] data, byte[] fullImage) throws SdError {
        ReentrantLock l = lockOf(oid);
        l.lock();
        try {
            if (fullImage != null) {
                send(Opcodes.CREATE_AND_WRITE_PEER, oid, ec, 0, fullImage);
                return;
            }
            // Only the stripes the data touches: the rest of each strip is created as zeros, and zero stripes have
            // zero parity. A create that finds the object (a retry) writes these stripes into it, so partly
            // covered ones are merged with what is there, as a write would.
            long start = floor(offset);
            byte[] stripes = merged(oid, ec, offset, data, true);
            send(Opcodes.CREATE_AND_WRITE_PEER, oid, ec, start, stripes);
        } finally {
            l.unlock();
        }
    }

    void remove(long oid, ErasureCode ec) throws SdError {
        SdRequest req = new SdRequest().objOid(oid);
        gw.forward(Opcodes.REMOVE_PEER, req, ec.totalStrips(), ec, position -> null);
    }

    /**
     * The whole stripes that {@code data} at {@code offset} falls in, with the bytes around it that those stripes
     * already hold (read back; zeros if the object does not exist yet and {@code absentIsZero}).
     */
    private byte[] merged(long oid, ErasureCode ec, long offset, byte[] data, boolean absentIsZero) throws SdError {
        long start = floor(offset);
        long end = ceil(offset + data.length);
        byte[] buf = new byte[(int) (end - start)];
        if (offset != start) readInto(oid, ec, start, buf, 0, absentIsZero);
        long tail = end - ErasureCode.STRIPE;
        if (offset + data.length != end && (tail != start || offset == start)) {
            readInto(oid, ec, tail, buf, (int) (tail - start), absentIsZero);
        }
        System.arraycopy(data, 0, buf, (int) (offset - start), data.length);
        return buf;
    }

    private void readInto(long oid, ErasureCode ec, long stripe, byte[] buf, int at, boolean absentIsZero) throws SdError {
        try {
            byte[] s = readStripes(oid, ec, stripe, ErasureCode.STRIPE);
            System.arraycopy(s, 0, buf, at, s.length);
        } catch (SdError e) {
            if (!(absentIsZero && e.result() == SdResult.NO_OBJ)) throw e;
        }
    }

    private void send(int peerOp, long oid, ErasureCode ec, long start, byte[] stripes) throws SdError {
        byte[][] strips = ec.encode(stripes, 0, stripes.length);
        SdRequest req = new SdRequest().objOid(oid).objOffset(ec.stripOffset(start)).flags(SdFlags.CMD_WRITE);
        gw.forward(peerOp, req, ec.totalStrips(), ec, position -> strips[position]);
    }

    private ReentrantLock lockOf(long oid) {
        return locks[(int) ((oid ^ (oid >>> 29)) & (LOCKS - 1))];
    }

    private static long floor(long off) { return off / ErasureCode.STRIPE * ErasureCode.STRIPE; }

    private static long ceil(long off) { return (off + ErasureCode.STRIPE - 1) / ErasureCode.STRIPE * ErasureCode.STRIPE; }
}
