package io.sheepdog.bench;

import io.sheepdog.proto.Oids;
import io.sheepdog.proto.SdHash;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/** The FNV-1a hashes: object hash (placement), VDI name hash (VID choice) and a 4 KiB buffer (the byte loop's speed). */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class SdHashBench {
    private long oid;
    private byte[] name;
    private byte[] block;

    @Setup
    public void setup() {
        oid = Oids.dataOid(0x7c2b25, 1234);
        name = "a-rather-ordinary-vdi-name-0042".getBytes(StandardCharsets.UTF_8);
        block = new byte[4096];
        for (int i = 0; i < block.length; i++) block[i] = (byte) (i * 7);
    }

    @Benchmark
    public long hashOid() {
        return SdHash.sdHashOid(oid++);
    }

    @Benchmark
    public int vdiHashOfName() {
        return SdHash.vdiHash(name);
    }

    @Benchmark
    public long fnv1a4KiB() {
        return SdHash.fnv1a(block, SdHash.FNV1A_BASIS);
    }
}
