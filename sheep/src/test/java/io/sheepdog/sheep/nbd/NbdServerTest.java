package io.sheepdog.sheep.nbd;

import static io.sheepdog.sheep.nbd.NbdProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import io.netty.buffer.ByteBuf;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The real server over TCP: requests in parallel, replies out of order, limits, lifecycle. */
@Timeout(60)
class NbdServerTest {

    /** An export whose reads run a hook first, for steering concurrency. */
    private static class HookedExport implements NbdExport {
        interface Hook {
            void beforeRead(long offset) throws Exception;
        }

        final Hook hook;
        final AtomicInteger active = new AtomicInteger();
        final AtomicInteger maxActive = new AtomicInteger();
        final AtomicInteger closed = new AtomicInteger();

        HookedExport(Hook hook) { this.hook = hook; }

        public long size() { return 1 << 20; }
        public boolean readOnly() { return false; }

        public void read(long offset, int length, ByteBuf dst) throws IOException {
            int now = active.incrementAndGet();
            maxActive.accumulateAndGet(now, Math::max);
            try {
                hook.beforeRead(offset);
            } catch (Exception e) {
                throw NbdException.io("hook: " + e);
            } finally {
                active.decrementAndGet();
            }
            dst.writeZero(length);
        }

        public void write(long offset, ByteBuf data, boolean fua) throws IOException {
            int now = active.incrementAndGet();
            maxActive.accumulateAndGet(now, Math::max);
            try {
                hook.beforeRead(offset);     // writes are steered by the same hook
            } catch (Exception e) {
                throw NbdException.io("hook: " + e);
            } finally {
                active.decrementAndGet();
            }
        }
        public void flush() throws IOException { }
        public void trim(long offset, long length, boolean fua) { }
        public void writeZeroes(long offset, long length, boolean noHole, boolean fua) { }
        public List<NbdExtent> allocation(long offset, long length) { return List.of(NbdExtent.data(length)); }
        public void close() { closed.incrementAndGet(); }
    }

    private static NbdServer serve(NbdExport export, NbdServerConfig config) throws IOException {
        NbdServer s = new NbdServer(config, new NbdExportProvider() {
            public NbdExport open(String name, boolean ro) throws NbdException {
                if (!name.equals("x")) throw NbdException.unknownExport(name);
                return export;
            }
            public List<String> list() { return List.of("x"); }
        });
        s.start();
        return s;
    }

    private static NbdServerConfig local() {
        return NbdServerConfig.defaults().withBindAddress("127.0.0.1").withPort(0).withIoThreads(1);
    }

    @Test
    void sixteenRequestsOfOneConnectionRunAtTheSameTime() throws Exception {
        // Each read waits until all 16 are inside the export: only a server running them in parallel gets through.
        CyclicBarrier all = new CyclicBarrier(16);
        HookedExport export = new HookedExport(off -> all.await(20, TimeUnit.SECONDS));
        try (NbdServer s = serve(export, local()); NbdSocketClient c = NbdSocketClient.connect(s.port(), "x", true)) {
            for (int i = 0; i < 16; i++) c.request(0, CMD_READ, i, i * 4096L, 4096, null);
            Set<Long> handles = new HashSet<>();
            for (int i = 0; i < 16; i++) {
                NbdWire.Reply r = c.reply();
                assertEquals(0, r.error());
                handles.add(r.handle());
            }
            assertEquals(16, handles.size());
            assertEquals(16, export.maxActive.get());
        }
    }

    @Test
    void aSlowRequestDoesNotHoldBackLaterOnes() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        HookedExport export = new HookedExport(off -> {
            if (off == 0 && !release.await(20, TimeUnit.SECONDS)) throw new TimeoutException();
        });
        try (NbdServer s = serve(export, local()); NbdSocketClient c = NbdSocketClient.connect(s.port(), "x", false)) {
            c.request(0, CMD_READ, 1, 0, 512, null);        // blocks in the export
            c.request(0, CMD_READ, 2, 4096, 512, null);
            c.request(0, CMD_FLUSH, 3, 0, 0, null);
            Set<Long> first = Set.of(c.reply().handle(), c.reply().handle());
            assertEquals(Set.of(2L, 3L), first);
            release.countDown();
            NbdWire.Reply last = c.reply();
            assertEquals(1, last.handle());
            assertEquals(0, last.error());
        }
    }

    @Test
    void inFlightLimitHoldsBackReadingButEverythingIsAnswered() throws Exception {
        Semaphore gate = new Semaphore(0);
        HookedExport export = new HookedExport(off -> {
            if (!gate.tryAcquire(20, TimeUnit.SECONDS)) throw new TimeoutException();
        });
        try (NbdServer s = serve(export, local().withMaxInFlight(4, 64L << 20));
             NbdSocketClient c = NbdSocketClient.connect(s.port(), "x", false)) {
            for (int i = 0; i < 12; i++) c.request(0, CMD_READ, i, 0, 512, null);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (export.active.get() < 4 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(4, export.active.get());
            gate.release(12);
            for (int i = 0; i < 12; i++) assertEquals(0, c.reply().error());
            assertEquals(4, export.maxActive.get(), "more requests in the export than the limit");
        }
    }

    @Test
    void theServerWideBudgetHoldsBackEveryConnectionButEverythingIsAnswered() throws Exception {
        Semaphore gate = new Semaphore(0);
        HookedExport export = new HookedExport(off -> {
            if (!gate.tryAcquire(20, TimeUnit.SECONDS)) throw new TimeoutException();
        });
        int k64 = 64 << 10;
        // room for two 64 KiB payloads at a time over all connections; each connection alone could take 64 MiB
        try (NbdServer s = serve(export, local().withServerInFlightBytes(2L * k64));
             NbdSocketClient a = NbdSocketClient.connect(s.port(), "x", false);
             NbdSocketClient b = NbdSocketClient.connect(s.port(), "x", false)) {
            for (int i = 0; i < 3; i++) {
                a.request(0, CMD_READ, i, 0, k64, null);
                b.request(0, CMD_WRITE, 10 + i, k64, k64, new byte[k64]);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (export.active.get() < 2 && System.nanoTime() < deadline) Thread.sleep(5);
            Thread.sleep(200);                                  // time for a third to get in, if it could
            assertEquals(2, export.active.get(), "requests in the export beyond the server-wide budget");
            assertEquals(2L * k64, s.inFlightBytes());
            gate.release(6);
            for (int i = 0; i < 3; i++) {
                assertEquals(0, a.reply().error());
                assertEquals(0, b.reply().error());
            }
            assertEquals(2, export.maxActive.get());
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (s.inFlightBytes() != 0 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(0, s.inFlightBytes(), "budget given back");

            // a request larger than the whole budget still runs, alone
            a.request(0, CMD_READ, 100, 0, 4 * k64, null);
            gate.release(1);
            assertEquals(0, a.reply().error());
            // a write cut off mid-payload gives its share back when its connection goes
            b.send(NbdWire.request(0, CMD_WRITE, 200, 0, k64, null));
            b.send(new byte[1000]);
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (s.inFlightBytes() != k64 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(k64, s.inFlightBytes(), "the write holds its share while its payload comes in");
            b.close();
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (s.inFlightBytes() != 0 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(0, s.inFlightBytes());
            assertEquals(0, s.unexpectedErrors());
        }
    }

    @Test
    void disconnectWaitsForRequestsInFlightThenClosesTheExport() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        HookedExport export = new HookedExport(off -> release.await(20, TimeUnit.SECONDS));
        try (NbdServer s = serve(export, local()); NbdSocketClient c = NbdSocketClient.connect(s.port(), "x", false)) {
            c.request(0, CMD_READ, 1, 0, 512, null);
            c.request(0, CMD_DISC, 2, 0, 0, null);
            while (export.active.get() == 0) Thread.sleep(2);
            assertEquals(0, export.closed.get());
            release.countDown();
            NbdWire.Reply r = c.reply();
            assertEquals(1, r.handle());
            assertEquals(0, r.error());
            assertTrue(c.closedByServer());
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (export.closed.get() == 0 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(1, export.closed.get());
        }
    }

    @Test
    void aMalformedPacketClosesOnlyItsOwnConnection() throws Exception {
        HookedExport export = new HookedExport(off -> { });
        try (NbdServer s = serve(export, local());
             NbdSocketClient good = NbdSocketClient.connect(s.port(), "x", true);
             NbdSocketClient bad = NbdSocketClient.connect(s.port(), "x", true)) {
            bad.send(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28});
            assertTrue(bad.closedByServer());
            good.request(0, CMD_READ, 1, 0, 4096, null);
            assertEquals(0, good.reply().error());
            assertEquals(0, s.unexpectedErrors());
        }
    }

    @Test
    void idleNegotiationTimesOut() throws Exception {
        HookedExport export = new HookedExport(off -> { });
        try (NbdServer s = serve(export, local().withHandshakeTimeout(Duration.ofMillis(300)));
             NbdSocketClient c = NbdSocketClient.raw(s.port())) {
            NbdWire.readHello(c.source);
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void closingTheServerClosesConnectionsAndExports() throws Exception {
        HookedExport export = new HookedExport(off -> { });
        NbdServer s = serve(export, local());
        try (NbdSocketClient c = NbdSocketClient.connect(s.port(), "x", false)) {
            assertTrue(s.isRunning());
            s.close();
            assertFalse(s.isRunning());
            assertEquals(-1, s.port());
            assertTrue(c.closedByServer());
            assertEquals(1, export.closed.get());
        }
    }

    @Test
    void disabledServerDoesNotListen() throws Exception {
        try (NbdServer s = serve(new HookedExport(off -> { }), local().withEnabled(false))) {
            assertFalse(s.isRunning());
            assertEquals(-1, s.port());
        }
    }

    @Test
    void portInUseIsAOneLineError() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            NbdServer s = new NbdServer(local().withPort(taken.getLocalPort()), new MemoryExportProvider());
            IOException e = assertThrows(IOException.class, s::start);
            assertTrue(e.getMessage().startsWith("cannot listen for NBD on 127.0.0.1:" + taken.getLocalPort()), e.getMessage());
            assertFalse(s.isRunning());
        }
    }

    @Test
    void readOnlyServerConfigForcesReadOnlyExports() throws Exception {
        MemoryDisk d = MemoryDisk.of("d", 65536);
        try (NbdServerFixture fx = new NbdServerFixture(local().withReadOnly(true)).add(d).start();
             NbdSocketClient c = NbdSocketClient.connect(fx.port(), "d", false)) {
            assertEquals(TFLAG_READ_ONLY, c.transmissionFlags & TFLAG_READ_ONLY);
            c.request(0, CMD_WRITE, 1, 0, 4, new byte[] {1, 2, 3, 4});
            assertEquals(EPERM, c.reply().error());
            assertEquals(0, d.writers.get());
        }
    }

    @Test
    void unknownExportOverTcp() throws Exception {
        try (NbdServer s = serve(new HookedExport(off -> { }), local())) {
            IOException e = assertThrows(IOException.class, () -> NbdSocketClient.connect(s.port(), "nope", false));
            assertTrue(e.getMessage().contains("no export named 'nope'"), e.getMessage());
        }
    }

}
