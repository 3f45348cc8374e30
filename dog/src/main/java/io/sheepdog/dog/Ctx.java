package io.sheepdog.dog;

import io.sheepdog.client.ConnectionPool;
import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.NodeId;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.VnodeRing;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Everything a command needs: parsed options and arguments, the streams, connections and the node list. */
final class Ctx implements AutoCloseable {
    final Io io;
    final PrintStream out;
    final PrintStream err;
    final CommandTable.Sub sub;
    final Map<Character, String> opts;
    final List<String> args;
    final String host;
    final int port;
    final boolean raw;
    final boolean verbose;
    private ConnectionPool pool;

    /** Filled by {@link #loadNodeList()}. */
    List<SdNode> nodes = List.of();
    VnodeRing ring;
    int epoch;
    int clusterFlags;

    Ctx(Io io, CommandTable.Sub sub, Map<Character, String> opts, List<String> args, String host, int port) {
        this.io = io;
        this.out = io.out;
        this.err = io.err;
        this.sub = sub;
        this.opts = opts;
        this.args = args;
        this.host = host;
        this.port = port;
        this.raw = opts.containsKey('r');
        this.verbose = opts.containsKey('v');
    }

    boolean has(char ch) { return opts.containsKey(ch); }

    String opt(char ch) { return opts.get(ch); }

    String arg(int i) { return i < args.size() ? args.get(i) : null; }

    /** Connections are pooled per node and pipelined; dog keeps a few per node for parallel object I/O. */
    synchronized ConnectionPool pool() {
        if (pool == null) pool = new ConnectionPool(4, 5000, false);
        return pool;
    }

    /** The node dog was pointed at with -a/-p. */
    SheepClient client() { return new SheepClient(pool().peer(host, port)); }

    SheepClient client(NodeId n) { return new SheepClient(pool().peer(n.host(), n.port())); }

    /**
     * The "needs node list" preparation (docs/dog.md §1.7): members of the cluster, the current epoch and the
     * cluster flags, and the vnode ring built from them.
     */
    void loadNodeList() throws IOException {
        SheepClient c = client();
        List<SdNode> list;
        try {
            list = c.getNodeList();
        } catch (SheepdogException e) {
            throw DogExit.sysfail("Failed to get node list");
        }
        if (list.isEmpty()) throw DogExit.failure("There are no active sheep daemons");
        SheepClient.ClusterStat st = c.statCluster(0, 1);
        epoch = st.epoch();
        clusterFlags = st.records().isEmpty() ? 0 : st.records().get(0).flags;
        nodes = list;
        ring = VnodeRing.build(list);
    }

    /** The newest epoch record (cluster copies, policy, flags), or null if the node has none yet. */
    EpochRecord latestEpoch() throws IOException {
        int n = Math.max(1, nodes.size());
        while (true) {
            SheepClient.ClusterStat st = client().statCluster(n, 1);
            if (st.result() == SdResult.BUFFER_SMALL && n < Proto.MAX_NODES) {
                n = Math.min(Proto.MAX_NODES, n * 2);
                continue;
            }
            return st.records().isEmpty() ? null : st.records().get(0);
        }
    }

    /** Index of a node in node-list order, or -1. */
    int nodeIndex(NodeId id) {
        for (int i = 0; i < nodes.size(); i++) if (nodes.get(i).nid().equals(id)) return i;
        return -1;
    }

    /**
     * Asks a yes/no question on stdout and reads the answer from stdin; anything but "yes", end of input included,
     * ends dog with status 1 and says that nothing was done. (Upstream exits 0 there, docs/dog.md §1.6, so a script
     * whose stdin is not a terminal could not tell a format that never happened from one that did.)
     */
    void confirm(String message) {
        out.print(message);
        io.flushIfInteractive();
        StringBuilder answer = new StringBuilder();
        try {
            int c;
            while ((c = io.in.read()) >= 0 && c != '\n' && answer.length() < 7) answer.append((char) c);
        } catch (IOException e) {
            // no answer is a "no"
        }
        if (!answer.toString().toLowerCase(Locale.ROOT).startsWith("yes")) {
            throw DogExit.failure((answer.isEmpty() ? "\nNo answer" : "Not confirmed")
                    + ": nothing was done (answer yes to go ahead, or pass -f to skip the question)");
        }
    }

    @Override
    public void close() {
        if (pool != null) pool.close();
    }
}
