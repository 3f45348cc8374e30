package io.sheepdog.sheep.cluster.corosync;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Thin binding of corosync's libcpg (cpg.h) through the Foreign Function &amp; Memory API: one {@code Cpg} is one
 * CPG handle (one IPC connection to the local corosync). Callbacks of {@link #dispatch} arrive on the calling
 * thread, which must be a platform thread with a large stack (libcpg and libqb use several hundred KiB of it).
 */
final class Cpg implements AutoCloseable {

    /** cs_error_t values used here (corotypes.h). */
    static final int CS_OK = 1, CS_ERR_LIBRARY = 2, CS_ERR_TRY_AGAIN = 6, CS_ERR_BAD_HANDLE = 9, CS_ERR_EXIST = 14;
    private static final int CS_DISPATCH_ALL = 2;
    private static final int CPG_TYPE_AGREED = 2;
    private static final int CPG_NAME_SIZE = 4 + 128;
    private static final int CPG_ADDRESS_SIZE = 12;
    private static final short POLLIN = 1;
    private static final int EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;

    /** cpg_reason_t. */
    static final int REASON_JOIN = 1, REASON_LEAVE = 2, REASON_NODEDOWN = 3, REASON_NODEUP = 4, REASON_PROCDOWN = 5;

    /** A process in a CPG membership: corosync node id, pid, and (in confchg lists) the cpg_reason_t. */
    record Address(int nodeid, int pid, int reason) {
        Proc proc() { return new Proc(nodeid, pid); }
    }

    /** What a handle's owner receives from {@link #dispatch}. Implementations must not throw. */
    interface Handler {
        void deliver(int nodeid, int pid, byte[] message);

        void confchg(Address[] members, Address[] left, Address[] joined);
    }

    private final long handle;
    private final Handler handler;
    private final Arena arena = Arena.ofShared();
    /** struct pollfd[2]: the CPG connection and the wake-up eventfd. */
    private final MemorySegment pollFds = arena.allocate(16);
    private final MemorySegment scratch = arena.allocate(8);
    private final int fd;
    private final int wakeFd;
    private volatile boolean closed;

    private Cpg(long handle, Handler handler, int fd, int wakeFd) {
        this.handle = handle;
        this.handler = handler;
        this.fd = fd;
        this.wakeFd = wakeFd;
        pollFds.set(JAVA_INT, 0, fd);
        pollFds.set(ValueLayout.JAVA_SHORT, 4, POLLIN);
        pollFds.set(JAVA_INT, 8, wakeFd);
        pollFds.set(ValueLayout.JAVA_SHORT, 12, POLLIN);
    }

    /**
     * Connects to the local corosync.
     *
     * @throws CpgException when libcpg cannot be loaded or corosync is not running
     */
    static Cpg open(Handler handler) throws CpgException {
        Native n = Native.get();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(JAVA_LONG);
            int rc = (int) n.initialize.invokeExact(h, n.callbacks);
            if (rc != CS_OK) throw new CpgException("cpg_initialize", rc);
            long handle = h.get(JAVA_LONG, 0);
            MemorySegment fdSeg = a.allocate(JAVA_INT);
            rc = (int) n.fdGet.invokeExact(handle, fdSeg);
            if (rc != CS_OK) {
                int ignored = (int) n.finalizeFn.invokeExact(handle);
                throw new CpgException("cpg_fd_get", rc);
            }
            int wakeFd = (int) n.eventfd.invokeExact(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (wakeFd < 0) {
                int ignored = (int) n.finalizeFn.invokeExact(handle);
                throw new CpgException("eventfd failed", CS_ERR_LIBRARY);
            }
            Cpg cpg = new Cpg(handle, handler, fdSeg.get(JAVA_INT, 0), wakeFd);
            HANDLERS.put(handle, cpg);
            return cpg;
        } catch (CpgException e) {
            throw e;
        } catch (Throwable t) {
            throw new CpgException("cpg_initialize failed: " + t, CS_ERR_LIBRARY);
        }
    }

    /** Joins process group {@code name}. */
    void join(String name) throws CpgException {
        call("cpg_join", () -> {
            try (Arena a = Arena.ofConfined()) {
                return (int) Native.get().join.invokeExact(handle, groupName(a, name));
            }
        });
    }

    /** Leaves process group {@code name}; the other members see a confchg with reason LEAVE. */
    void leave(String name) throws CpgException {
        call("cpg_leave", () -> {
            try (Arena a = Arena.ofConfined()) {
                return (int) Native.get().leave.invokeExact(handle, groupName(a, name));
            }
        });
    }

    /**
     * Multicasts {@code message} to the joined group in agreed (total) order. One attempt: returns CS_OK, or
     * CS_ERR_TRY_AGAIN while corosync applies flow control (the caller retries after dispatching), or another error.
     */
    int mcast(byte[] message) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(Math.max(1, message.length));
            MemorySegment.copy(message, 0, buf, ValueLayout.JAVA_BYTE, 0, message.length);
            MemorySegment iov = a.allocate(16);
            iov.set(ADDRESS, 0, buf);
            iov.set(JAVA_LONG, 8, message.length);
            return (int) Native.get().mcast.invokeExact(handle, CPG_TYPE_AGREED, iov, 1);
        } catch (Throwable t) {
            return CS_ERR_LIBRARY;
        }
    }

    /** The corosync node id of this host. */
    int localNodeId() throws CpgException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment id = a.allocate(JAVA_INT);
            int rc = (int) Native.get().localGet.invokeExact(handle, id);
            if (rc != CS_OK) throw new CpgException("cpg_local_get", rc);
            return id.get(JAVA_INT, 0);
        } catch (CpgException e) {
            throw e;
        } catch (Throwable t) {
            throw new CpgException("cpg_local_get failed: " + t, CS_ERR_LIBRARY);
        }
    }

    /**
     * Waits up to {@code timeoutMillis} for traffic from corosync or a {@link #wakeup}, and dispatches all pending
     * traffic: the handler's callbacks run on this thread. Returns CS_OK, or the error of cpg_dispatch
     * (CS_ERR_LIBRARY: corosync went away).
     */
    int dispatch(int timeoutMillis) {
        try {
            Native n = Native.get();
            pollFds.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
            pollFds.set(ValueLayout.JAVA_SHORT, 14, (short) 0);
            int ready = (int) n.poll.invokeExact(pollFds, 2L, timeoutMillis);
            if (ready <= 0) return CS_OK; // timeout or EINTR
            if (pollFds.get(ValueLayout.JAVA_SHORT, 14) != 0) {
                long ignored = (long) n.read.invokeExact(wakeFd, scratch, 8L); // reset the eventfd counter
            }
            short revents = pollFds.get(ValueLayout.JAVA_SHORT, 6);
            if (revents == 0) return CS_OK;
            int rc = (int) n.dispatch.invokeExact(handle, CS_DISPATCH_ALL);
            if (rc == CS_OK && (revents & POLLIN) == 0) return CS_ERR_LIBRARY; // hang-up or error only
            return rc;
        } catch (Throwable t) {
            return CS_ERR_LIBRARY;
        }
    }

    /** Makes a {@link #dispatch} in progress (or the next one) return at once. Any thread. */
    void wakeup() {
        if (closed) return;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment one = a.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1L);
            long ignored = (long) Native.get().write.invokeExact(wakeFd, one, 8L);
        } catch (Throwable ignored) {
            // the dispatch loop polls with a timeout anyway
        }
    }

    /** Disconnects from corosync (an implicit leave of every joined group). Must not race with dispatch. */
    @Override public void close() {
        if (closed) return;
        closed = true;
        try {
            int ignored = (int) Native.get().finalizeFn.invokeExact(handle);
        } catch (Throwable ignored) {
            // the connection is gone either way
        }
        HANDLERS.remove(handle);
        try {
            int ignored = (int) Native.get().close.invokeExact(wakeFd);
        } catch (Throwable ignored) {
            // nothing to do
        }
        arena.close();
    }

    private interface NativeCall { int run() throws Throwable; }

    private void call(String what, NativeCall c) throws CpgException {
        int rc;
        try {
            rc = c.run();
        } catch (Throwable t) {
            throw new CpgException(what + " failed: " + t, CS_ERR_LIBRARY);
        }
        if (rc != CS_OK) throw new CpgException(what, rc);
    }

    private static MemorySegment groupName(Arena a, String name) {
        byte[] b = name.getBytes(StandardCharsets.US_ASCII);
        MemorySegment s = a.allocate(CPG_NAME_SIZE);
        s.set(JAVA_INT, 0, b.length);
        MemorySegment.copy(b, 0, s, ValueLayout.JAVA_BYTE, 4, b.length);
        return s;
    }

    /** A failed libcpg call with its cs_error_t. */
    static final class CpgException extends Exception {
        final int code;

        CpgException(String call, int code) {
            super(call.contains(" ") ? call : call + ": " + errorName(code));
            this.code = code;
        }
    }

    static String errorName(int code) {
        return switch (code) {
            case 1 -> "CS_OK";
            case 2 -> "CS_ERR_LIBRARY (corosync is not running or refused the connection)";
            case 3 -> "CS_ERR_VERSION";
            case 4 -> "CS_ERR_INIT";
            case 5 -> "CS_ERR_TIMEOUT";
            case 6 -> "CS_ERR_TRY_AGAIN";
            case 7 -> "CS_ERR_INVALID_PARAM";
            case 8 -> "CS_ERR_NO_MEMORY";
            case 9 -> "CS_ERR_BAD_HANDLE";
            case 10 -> "CS_ERR_BUSY";
            case 11 -> "CS_ERR_ACCESS (not allowed to use corosync: check uidgid in corosync.conf)";
            case 12 -> "CS_ERR_NOT_EXIST";
            case 14 -> "CS_ERR_EXIST";
            case 18 -> "CS_ERR_NO_RESOURCES";
            case 26 -> "CS_ERR_TOO_BIG";
            default -> "cs_error " + code;
        };
    }

    // ---- upcalls: static stubs shared by every handle; the handle selects the Cpg ----

    private static final Logger LOG = LoggerFactory.getLogger(Cpg.class);
    private static final Map<Long, Cpg> HANDLERS = new ConcurrentHashMap<>();

    @SuppressWarnings("unused") // called from native code
    private static void deliverUpcall(long handle, MemorySegment group, int nodeid, int pid, MemorySegment msg,
                                      long len) {
        Cpg cpg = HANDLERS.get(handle);
        if (cpg == null) return;
        try {
            byte[] data = msg.reinterpret(len).toArray(ValueLayout.JAVA_BYTE);
            cpg.handler.deliver(nodeid, pid, data);
        } catch (Throwable t) {
            // an exception must never unwind into native code (it would abort the JVM)
            LOG.error("CPG deliver callback failed", t);
        }
    }

    @SuppressWarnings("unused") // called from native code
    private static void confchgUpcall(long handle, MemorySegment group, MemorySegment members, long nMembers,
                                      MemorySegment left, long nLeft, MemorySegment joined, long nJoined) {
        Cpg cpg = HANDLERS.get(handle);
        if (cpg == null) return;
        try {
            cpg.handler.confchg(addresses(members, nMembers), addresses(left, nLeft), addresses(joined, nJoined));
        } catch (Throwable t) {
            LOG.error("CPG confchg callback failed", t); // must not unwind into native code
        }
    }

    private static Address[] addresses(MemorySegment list, long n) {
        Address[] out = new Address[(int) n];
        if (n == 0) return out;
        MemorySegment s = list.reinterpret(n * CPG_ADDRESS_SIZE);
        for (int i = 0; i < n; i++) {
            long o = (long) i * CPG_ADDRESS_SIZE;
            out[i] = new Address(s.get(JAVA_INT, o), s.get(JAVA_INT, o + 4), s.get(JAVA_INT, o + 8));
        }
        return out;
    }

    /** Loaded on first use so that a JVM without libcpg only fails when the corosync driver is chosen. */
    private static final class Native {
        private static volatile Native instance;
        private static volatile String loadError;

        final MethodHandle initialize, finalizeFn, fdGet, dispatch, join, leave, mcast, localGet, poll, eventfd, read,
                write, close;
        final MemorySegment callbacks;

        static Native get() throws CpgException {
            Native n = instance;
            if (n != null) return n;
            synchronized (Native.class) {
                if (instance == null && loadError == null) {
                    try {
                        instance = new Native();
                    } catch (Throwable t) {
                        loadError = t.getMessage() == null ? t.toString() : t.getMessage();
                    }
                }
                if (instance == null) throw new CpgException("cannot load libcpg.so.4: " + loadError, CS_ERR_LIBRARY);
                return instance;
            }
        }

        private Native() throws ReflectiveOperationException {
            Linker linker = Linker.nativeLinker();
            SymbolLookup cpg = SymbolLookup.libraryLookup("libcpg.so.4", Arena.global());
            initialize = linker.downcallHandle(find(cpg, "cpg_initialize"),
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
            finalizeFn = linker.downcallHandle(find(cpg, "cpg_finalize"), FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
            fdGet = linker.downcallHandle(find(cpg, "cpg_fd_get"), FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
            dispatch = linker.downcallHandle(find(cpg, "cpg_dispatch"),
                    FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT));
            join = linker.downcallHandle(find(cpg, "cpg_join"), FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
            leave = linker.downcallHandle(find(cpg, "cpg_leave"), FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
            mcast = linker.downcallHandle(find(cpg, "cpg_mcast_joined"),
                    FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
            localGet = linker.downcallHandle(find(cpg, "cpg_local_get"),
                    FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
            SymbolLookup libc = linker.defaultLookup();
            poll = linker.downcallHandle(find(libc, "poll"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
            eventfd = linker.downcallHandle(find(libc, "eventfd"), FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
            read = linker.downcallHandle(find(libc, "read"), FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
            write = linker.downcallHandle(find(libc, "write"), FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
            close = linker.downcallHandle(find(libc, "close"), FunctionDescriptor.of(JAVA_INT, JAVA_INT));

            MethodHandles.Lookup l = MethodHandles.lookup();
            MethodHandle deliver = l.findStatic(Cpg.class, "deliverUpcall", MethodType.methodType(void.class,
                    long.class, MemorySegment.class, int.class, int.class, MemorySegment.class, long.class));
            MethodHandle confchg = l.findStatic(Cpg.class, "confchgUpcall", MethodType.methodType(void.class,
                    long.class, MemorySegment.class, MemorySegment.class, long.class, MemorySegment.class,
                    long.class, MemorySegment.class, long.class));
            MemorySegment deliverStub = linker.upcallStub(deliver,
                    FunctionDescriptor.ofVoid(JAVA_LONG, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG),
                    Arena.global());
            MemorySegment confchgStub = linker.upcallStub(confchg,
                    FunctionDescriptor.ofVoid(JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS,
                            JAVA_LONG),
                    Arena.global());
            callbacks = Arena.global().allocate(16, 8);
            callbacks.set(ADDRESS, 0, deliverStub);
            callbacks.set(ADDRESS, 8, confchgStub);
        }

        private static MemorySegment find(SymbolLookup lookup, String name) {
            return lookup.find(name).orElseThrow(() -> new IllegalStateException("symbol " + name + " not found"));
        }
    }
}
