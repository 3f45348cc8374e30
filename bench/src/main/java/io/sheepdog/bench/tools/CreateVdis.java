package io.sheepdog.bench.tools;

import io.sheepdog.client.Reply;
import io.sheepdog.client.SheepConnection;
import io.sheepdog.proto.Opcodes;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;

/**
 * Creates many VDIs quickly for the scale benchmark: {@code CreateVdis HOST PORT COUNT PREFIX SIZE_BYTES [WINDOW]}.
 * Sends NEW_VDI requests on one connection with up to WINDOW in flight (the sheep orders them through the cluster
 * anyway), so creating 10 000 VDIs does not cost 10 000 JVM starts of {@code dog vdi create}. Names are
 * PREFIX-00000 .. ; prints one line {@code created N in S s}. Exits 1 on the first failure, with its reason.
 */
public final class CreateVdis {
    private CreateVdis() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 5 || args.length > 6) {
            System.err.println("usage: CreateVdis HOST PORT COUNT PREFIX SIZE_BYTES [WINDOW]");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        int count = Integer.parseInt(args[2]);
        String prefix = args[3];
        long size = Long.parseLong(args[4]);
        int window = args.length == 6 ? Integer.parseInt(args[5]) : 32;
        long t0 = System.nanoTime();
        try (SheepConnection c = SheepConnection.open(host, port)) {
            ArrayDeque<CompletableFuture<Reply>> pending = new ArrayDeque<>();
            ArrayDeque<String> names = new ArrayDeque<>();
            for (int i = 0; i < count; i++) {
                String name = String.format("%s-%05d", prefix, i);
                SdRequest r = SdRequest.of(Opcodes.NEW_VDI).vdiSize(size).flags(SdFlags.CMD_WRITE).dataLength(Proto.MAX_VDI_LEN);
                pending.add(c.submit(r, Strings.fixed(name, Proto.MAX_VDI_LEN)));
                names.add(name);
                if (pending.size() >= window) check(pending.poll().get(), names.poll());
            }
            while (!pending.isEmpty()) check(pending.poll().get(), names.poll());
        }
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("created %d in %.3f s%n", count, s);
    }

    private static void check(Reply r, String name) {
        if (r.result() != SdResult.SUCCESS) {
            System.err.println("CreateVdis: creating " + name + " failed: " + SdResult.message(r.result()));
            System.exit(1);
        }
    }
}
