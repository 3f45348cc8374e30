package io.sheepdog.sheep.ops;

import io.sheepdog.client.Reply;
import io.sheepdog.proto.OpTable;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import io.sheepdog.sheep.access.AccessPolicy;
import io.sheepdog.sheep.gateway.Gateway;
import io.sheepdog.sheep.gateway.PeerService;
import io.sheepdog.sheep.log.RateLimitedLog;
import io.sheepdog.sheep.node.NodeState;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The request-processing chain of a sheep, whichever front end a request came from: check the protocol version,
 * gate on the cluster status, then hand the request to the class of handler its opcode belongs to in
 * {@link OpTable}: gateway (object I/O placed on the ring), peer (a replica operation on this store), cluster
 * (totally ordered through the cluster driver: {@link ClusterOps}) or local (answered here: {@link LocalOps}).
 */
public final class RequestProcessor {
    private static final Logger LOG = LoggerFactory.getLogger(RequestProcessor.class);
    private static final RateLimitedLog DENIED = new RateLimitedLog(LOG);

    private final NodeState state;
    private final AccessPolicy access;
    private final PeerService peer;
    private final Gateway gateway;
    private final ClusterOps clusterOps;
    private final LocalOps local;
    private final IoStats stats;

    /** @param stats where object I/O is counted ({@code STAT}, which {@code local} answers, reads them) */
    public RequestProcessor(NodeState state, AccessPolicy access, PeerService peer, Gateway gateway,
                            ClusterOps clusterOps, LocalOps local, IoStats stats) {
        this.state = state;
        this.access = access;
        this.peer = peer;
        this.gateway = gateway;
        this.clusterOps = clusterOps;
        this.local = local;
        this.stats = stats;
    }

    /** Processes one request to completion (blocking; call on a virtual thread). Never throws. */
    public Reply process(Request r) {
        SdRequest h = r.hdr();
        try {
            Reply rep = dispatch(r);
            rep.header().opcode(h.opcode()).id(h.id());
            if (rep.header().epoch() == 0) rep.header().epoch(state.epoch());
            return rep;
        } catch (SdError e) {
            return fail(h, e.result());
        } catch (RuntimeException e) {
            LOG.error("unexpected failure processing {}", h, e);
            return fail(h, SdResult.SYSTEM_ERROR);
        }
    }

    private Reply fail(SdRequest h, int result) {
        return new Reply(SdResponse.replyTo(h, result).epoch(state.epoch()), Request.NO_DATA);
    }

    private Reply dispatch(Request r) throws SdError {
        SdRequest h = r.hdr();
        int op = h.opcode();
        if (Opcodes.isInternal(op)) {
            if (h.protoVer() != Proto.SHEEP_PROTO_VER) throw new SdError(SdResult.VER_MISMATCH);
        } else if (h.protoVer() > Proto.PROTO_VER) {
            throw new SdError(SdResult.VER_MISMATCH);
        }
        if (r.client() != ClientInfo.INTERNAL) {
            String refused = access.refusal(op, r.client().addr());
            if (refused != null) {
                DENIED.warn("access", "refused {} from {}: {}", Opcodes.name(op), r.client().display(), refused);
                throw new SdError(SdResult.ACCESS_DENIED);
            }
        }
        OpTable.Kind kind = OpTable.kindOf(op);
        if (kind == OpTable.Kind.PEER) {
            return counted(stats.peer, op, r, () -> peer.handle(r));
        }
        gate(op);
        if (kind == null) kind = OpTable.Kind.LOCAL; // not served here: answered INVALID_PARMS by LocalOps
        switch (kind) {
            case GATEWAY -> {
                return counted(stats.gateway, op, r, () -> gateway.handle(r));
            }
            case CLUSTER -> {
                if (op == Opcodes.RELEASE_VDI) {
                    // only the VID matters; a release by anyone unlocks (dog vdi lock unlock), and it always succeeds
                    return clusterOps.execute(new Request(h.copy().vdiType(Proto.LOCK_TYPE_NORMAL), Request.NO_DATA, r.client()));
                }
                return clusterOps.execute(r); // (re)formatting a running cluster is allowed: dog asks first
            }
            default -> {
                return local.serve(r);
            }
        }
    }

    /** Serves an object operation with {@code handler}, counted in {@code c}. */
    private static Reply counted(IoStats.Counters c, int op, Request r, Supplier<Reply> handler) {
        IoStats.Kind kind = switch (op) {
            case Opcodes.READ_OBJ, Opcodes.READ_PEER -> IoStats.Kind.READ;
            case Opcodes.REMOVE_OBJ, Opcodes.REMOVE_PEER -> IoStats.Kind.REMOVE;
            default -> IoStats.Kind.WRITE;
        };
        c.begin(kind, r.payloadLength());
        long start = System.nanoTime();
        int sent = 0;
        try {
            Reply rep = handler.get();
            sent = rep.data().length;
            return rep;
        } finally {
            if (kind == IoStats.Kind.WRITE) c.writeTime.add(System.nanoTime() - start);
            c.end(sent);
        }
    }

    private void gate(int op) throws SdError {
        int st = state.status();
        if (st == Proto.STATUS_OK) return;
        if (OpTable.isForce(op)) return;
        if (st == Proto.STATUS_SHUTDOWN) throw new SdError(SdResult.SHUTDOWN);
        if (st == Proto.STATUS_KILLED) throw new SdError(SdResult.KILLED);
        throw new SdError(state.formatted() ? SdResult.WAIT_FOR_JOIN : SdResult.WAIT_FOR_FORMAT);
    }
}
