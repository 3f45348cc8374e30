package io.sheepdog.bench;

import io.sheepdog.proto.Header48;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import io.sheepdog.proto.SdResult;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The 48-byte request and response headers: every object I/O pays one encode and one decode of each, so these are
 * the per-request protocol overhead of the data path.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class HeaderCodecBench {
    private byte[] wireRequest;
    private byte[] wireResponse;
    private ByteBuffer out;
    private long oid;
    private int id;

    @Setup
    public void setup() {
        oid = Oids.dataOid(0x7c2b25, 17);
        wireRequest = SdRequest.of(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE | SdFlags.CMD_DIRECT).id(42).dataLength(4096)
                .objOid(oid).objCopies(3).objOffset(8192).bytes().clone();
        SdRequest req = new SdRequest(wireRequest.clone());
        wireResponse = SdResponse.replyTo(req, SdResult.SUCCESS).epoch(7).dataLength(4096).bytes().clone();
        out = ByteBuffer.allocateDirect(Header48.SIZE);
    }

    /** A client building a WRITE_OBJ header and copying it into a (direct) socket buffer. */
    @Benchmark
    public ByteBuffer encodeRequest() {
        SdRequest r = SdRequest.of(Opcodes.WRITE_OBJ).flags(SdFlags.CMD_WRITE | SdFlags.CMD_DIRECT).id(++id)
                .dataLength(4096).objOid(oid).objCopies(3).objOffset(8192);
        out.clear();
        r.writeTo(out);
        return out;
    }

    /** A server reading a request header off the wire and the fields the data path looks at. */
    @Benchmark
    public long decodeRequest() {
        SdRequest r = new SdRequest(wireRequest.clone());
        return r.opcode() + r.flags() + r.id() + r.dataLength() + r.objOid() + r.objCopies() + r.objOffset() + r.epoch();
    }

    /** A server answering a request: the reply header echoing opcode and id. */
    @Benchmark
    public ByteBuffer encodeResponse() {
        SdRequest req = new SdRequest(wireRequest);
        SdResponse r = SdResponse.replyTo(req, SdResult.SUCCESS).epoch(7).dataLength(4096);
        out.clear();
        r.writeTo(out);
        return out;
    }

    /** A client matching a reply: id, result and length. */
    @Benchmark
    public long decodeResponse() {
        SdResponse r = new SdResponse(wireResponse.clone());
        return r.id() + r.result() + r.dataLength() + r.epoch();
    }
}
