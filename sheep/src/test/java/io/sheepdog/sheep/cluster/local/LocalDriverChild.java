package io.sheepdog.sheep.cluster.local;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.sheepdog.proto.SdNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A sheep stand-in run as a separate JVM by {@link LocalDriverProcessTest}: joins the local cluster and writes
 * every callback, prefixed by the wall-clock millisecond, to an events file. Commands on stdin: {@code join}
 * (first: the JVM can be started ahead of time), {@code notify TEXT}, {@code burst N TAG} (N notifies), {@code block N} (N block requests, each released after a
 * short critical section), {@code holdblock} (a block that is never released), {@code leave}, {@code exit}.
 *
 * <p>Usage: {@code LocalDriverChild DIR PORT EVENTS_FILE [stall-join-of=PORT] [critical=PATH]}. With
 * {@code stall-join-of} it never returns from the join request of that port (to be killed meanwhile). With
 * {@code critical} each granted block creates that file exclusively while it holds the block: a second holder
 * finds it there and records a VIOLATION.
 */
public final class LocalDriverChild {
    private LocalDriverChild() {}

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int port = Integer.parseInt(args[1]);
        Path events = Path.of(args[2]);
        int stallJoinOf = -1;
        Path critical = null;
        for (int i = 3; i < args.length; i++) {
            if (args[i].startsWith("stall-join-of=")) stallJoinOf = Integer.parseInt(args[i].substring(14));
            else if (args[i].startsWith("critical=")) critical = Path.of(args[i].substring(9));
            else throw new IllegalArgumentException("unknown option " + args[i]);
        }
        Writer out = Files.newBufferedWriter(events, UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        Object outLock = new Object();
        LocalClusterDriver driver = new LocalClusterDriver(dir);
        int stall = stallJoinOf;
        RecordingListener listener = new RecordingListener(port, line -> {
            synchronized (outLock) {
                try {
                    out.write(System.currentTimeMillis() + " " + line + "\n");
                    out.flush();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        }) {
            @Override public JoinDecision onJoinRequest(SdNode joining, List<SdNode> members, byte[] message) {
                JoinDecision d = super.onJoinRequest(joining, members, message);
                if (joining.nid().port() == stall) {
                    try {
                        Thread.sleep(Long.MAX_VALUE);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return d;
            }
        };
        AtomicInteger grants = new AtomicInteger();
        AtomicInteger holds = new AtomicInteger();
        Path criticalFile = critical;
        listener.afterGrant = () -> {
            if (holds.get() > 0) {
                holds.decrementAndGet();
                return; // held until this process dies
            }
            int n = grants.incrementAndGet();
            Thread.ofVirtual().start(() -> {
                try {
                    if (criticalFile != null) {
                        try {
                            Files.createFile(criticalFile);
                        } catch (FileAlreadyExistsException e) {
                            listener.noteLocal("VIOLATION");
                        }
                        Thread.sleep(15);
                        Files.deleteIfExists(criticalFile);
                    }
                    driver.unblock(("done " + port + "-" + n).getBytes(UTF_8));
                } catch (IOException | InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
        };
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, UTF_8))) {
            String cmd;
            while ((cmd = in.readLine()) != null) {
                String[] w = cmd.split(" ");
                switch (w[0]) {
                    case "join" -> driver.join(RecordingListener.node(port), ("hello-" + port).getBytes(UTF_8), listener);
                    case "notify" -> driver.notify(w[1].getBytes(UTF_8));
                    case "burst" -> {
                        for (int i = 0; i < Integer.parseInt(w[1]); i++) driver.notify((w[2] + "#" + i).getBytes(UTF_8));
                    }
                    case "block" -> {
                        for (int i = 0; i < Integer.parseInt(w[1]); i++) driver.block();
                    }
                    case "holdblock" -> {
                        holds.incrementAndGet();
                        driver.block();
                    }
                    case "leave" -> driver.leave();
                    case "exit" -> {
                        driver.close();
                        System.exit(0);
                    }
                    default -> throw new IllegalArgumentException("unknown command " + cmd);
                }
            }
        }
        driver.close();
        System.exit(0);
    }
}
