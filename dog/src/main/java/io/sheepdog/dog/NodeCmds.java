package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.SdNode;
import io.sheepdog.client.VdiEnumerator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** {@code dog node ...} (docs/dog.md §3). */
final class NodeCmds {
    private NodeCmds() {}

    static String addr(SdNode n) { return Addr.of(n.nid()); }

    /** {@code node list}. */
    static int list(Ctx c) {
        if (!c.raw) c.out.print("  Id   Host:Port         V-Nodes       Zone\n");
        for (int i = 0; i < c.nodes.size(); i++) {
            SdNode n = c.nodes.get(i);
            if (c.raw) c.out.print(i + " " + addr(n) + " " + n.nrVnodes() + " " + n.zone() + "\n");
            else c.out.print(Fmt.right(Integer.toString(i), 4) + "   " + Fmt.left(addr(n), 20) + "\t"
                    + Fmt.right(Integer.toString(n.nrVnodes()), 2) + Fmt.right(Long.toString(n.zone()), 11) + "\n");
        }
        return ExitCodes.SUCCESS;
    }

    private static int percent(long used, long size) { return size == 0 ? 0 : (int) (100.0 * used / size); }

    /** {@code node info}: store usage per node, totals and the virtual size of all working VDIs. */
    static int info(Ctx c) throws IOException {
        if (!c.raw) c.out.print("Id\tSize\tUsed\tAvail\tUse%\n");
        long size = 0, used = 0, free = 0;
        int answered = 0;
        for (int i = 0; i < c.nodes.size(); i++) {
            SheepClient.StoreStat s;
            try {
                s = c.client(c.nodes.get(i).nid()).statSheep();
            } catch (IOException e) {
                continue; // a node that does not answer is left out, as the original does
            }
            answered++;
            size += s.size();
            used += s.used();
            free += s.free();
            String row = c.raw
                    ? i + " " + Fmt.size(s.size(), true) + " " + Fmt.size(s.used(), true) + " " + Fmt.size(s.free(), true) + " "
                      + percent(s.used(), s.size()) + "%\n"
                    : Fmt.right(Integer.toString(i), 2) + "\t" + Fmt.human(s.size()) + "\t" + Fmt.human(s.used()) + "\t"
                      + Fmt.human(s.free()) + "\t" + Fmt.right(Integer.toString(percent(s.used(), s.size())), 3) + "%\n";
            c.out.print(row);
        }
        if (answered == 0) throw DogExit.sysfail("Cannot get information from any nodes");
        long virtual = 0;
        for (Inode n : VdiEnumerator.list(c.client(), false, vid -> c.err.println("Failed to read inode header"))) {
            if (!n.isSnapshot()) virtual += n.vdiSize;
        }
        if (c.raw) {
            c.out.print("Total " + size + " " + used + " " + free + " " + percent(used, size) + "% " + virtual + "\n");
        } else {
            c.out.print("Total\t" + Fmt.human(size) + "\t" + Fmt.human(used) + "\t" + Fmt.human(free) + "\t"
                    + Fmt.right(Integer.toString(percent(used, size)), 3) + "%\n\nTotal virtual image size\t" + Fmt.human(virtual) + "\n");
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code node kill <id>} or {@code node kill -l}. */
    static int kill(Ctx c) throws IOException {
        String id = c.arg(0);
        boolean local = c.has('l');
        if (id == null && !local) throw DogExit.usage("please specify -l option or node id");
        if (id != null && local) throw DogExit.usage("don't use -l option and specify node id at the same time");
        SheepClient target;
        if (local) {
            target = c.client();
        } else {
            int idx;
            try {
                idx = Integer.parseInt(id);
            } catch (NumberFormatException e) {
                throw DogExit.usage("Invalid node id '" + id + "', please specify a numeric value");
            }
            if (idx < 0 || idx >= c.nodes.size()) throw DogExit.usage("Invalid node id '" + idx + "'");
            target = c.client(c.nodes.get(idx).nid());
        }
        try {
            target.killNode();
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to execute request");
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code node recovery [info|set-throttle|get-throttle]}. */
    static int recovery(Ctx c) throws IOException {
        String what = c.args.isEmpty() ? "info" : c.args.get(0);
        switch (what) {
            case "info" -> { return c.has('P') ? recoveryProgress(c) : recoveryInfo(c); }
            case "set-throttle" -> { return setThrottle(c); }
            case "get-throttle" -> {
                SheepClient.RecoveryThrottle t = c.client().getRecoveryThrottle();
                c.err.println("max (" + t.max() + "), interval (" + t.intervalMs() + ")");
                return ExitCodes.SUCCESS;
            }
            default -> {
                CommandTable.printUsage(c.out, c.sub);
                return ExitCodes.FAILURE;
            }
        }
    }

    private static int recoveryInfo(Ctx c) throws IOException {
        if (!c.raw) {
            c.out.print("Nodes In Recovery:\n");
            c.out.print("  Id   Host:Port         V-Nodes       Zone       Progress\n");
        }
        for (int i = 0; i < c.nodes.size(); i++) {
            SdNode n = c.nodes.get(i);
            SheepClient.RecoveryState st;
            try {
                st = c.client(n.nid()).statRecovery();
            } catch (IOException e) {
                continue;
            }
            if (!st.inRecovery()) continue;
            double pct = st.nrTotal() == 0 ? 0 : 100.0 * st.nrFinished() / st.nrTotal();
            if (c.raw) {
                c.out.print(i + " " + addr(n) + " " + n.nrVnodes() + " " + n.zone() + " " + st.nrFinished() + " " + st.nrTotal() + "\n");
            } else {
                c.out.print(Fmt.right(Integer.toString(i), 4) + "   " + Fmt.left(addr(n), 20) + Fmt.right(Integer.toString(n.nrVnodes()), 5)
                        + Fmt.right(Long.toString(n.zone()), 11) + Fmt.right(Fmt.fixed(pct, 1), 11) + "%\n");
            }
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code node recovery -P}: follows the contacted node's recovery until it is done. */
    private static int recoveryProgress(Ctx c) throws IOException {
        SheepClient cl = c.client();
        Progress bar = null;
        while (true) {
            SheepClient.RecoveryState st = cl.statRecovery();
            if (!st.inRecovery()) break;
            switch (st.state()) {
                case 0 -> c.out.print("preparing a checked object list...\n");
                case 2 -> c.out.print("notifying a completion of recovery...\n");
                default -> {
                    if (bar == null) bar = new Progress(c.io, st.nrTotal(), true);
                    bar.update(st.nrFinished());
                }
            }
            c.io.flushIfInteractive();
            try { Thread.sleep(1000); } catch (InterruptedException e) { Thread.currentThread().interrupt(); break; }
        }
        if (bar != null) bar.done();
        return ExitCodes.SUCCESS;
    }

    private static boolean decimal(String s) {
        if (s == null || s.isEmpty()) return false;
        for (int i = 0; i < s.length(); i++) if (!Character.isDigit(s.charAt(i))) return false;
        return true;
    }

    private static int setThrottle(Ctx c) throws IOException {
        String maxS = c.arg(1), intS = c.arg(2);
        if (maxS == null || intS == null) {
            throw DogExit.usage("Invalid interval max (" + (maxS == null ? "(null)" : maxS) + "), interval ("
                    + (intS == null ? "(null)" : intS) + ")");
        }
        if (!decimal(maxS) || maxS.length() > 10 || Long.parseLong(maxS) > 0xffffffffL) throw DogExit.usage("Invalid max (" + maxS + ")");
        if (!decimal(intS) || intS.length() > 18) throw DogExit.usage("Invalid interval (" + intS + ")");
        long max = Long.parseLong(maxS), interval = Long.parseLong(intS);
        if ((max == 0) != (interval == 0)) throw DogExit.usage("Invalid interval max (" + max + "), interval (" + interval + ")");
        c.client().setRecoveryThrottle(max, interval);
        return ExitCodes.SUCCESS;
    }

    /** {@code node md {info|plug|unplug}}. */
    static int md(Ctx c) throws IOException {
        String what = c.args.isEmpty() ? "info" : c.args.get(0);
        switch (what) {
            case "info" -> {
                if (!c.raw) c.out.print("Id\tSize\tUsed\tAvail\tUse%\tPath\n");
                if (c.has('A')) {
                    for (int i = 0; i < c.nodes.size(); i++) {
                        if (!c.raw) c.out.print("Node " + i + ":\n");
                        mdInfo(c, c.nodes.get(i));
                    }
                } else {
                    mdInfo(c, null);
                }
                return ExitCodes.SUCCESS;
            }
            case "plug", "unplug" -> {
                String disks = c.arg(1);
                if (disks == null) throw DogExit.usage(null);
                if (!c.has('f')) {
                    c.confirm(Prompts.sheep(what.equals("plug") ? "Caution! The directories to be plugged will be purged."
                            : "Caution! Recovery will be triggered after unplugging."));
                }
                try {
                    if (what.equals("plug")) c.client().mdPlug(disks);
                    else c.client().mdUnplug(disks);
                } catch (SheepdogException e) {
                    throw DogExit.failure("Failed to execute request, look for sheep.log for more information");
                }
                return ExitCodes.SUCCESS;
            }
            default -> {
                CommandTable.printUsage(c.out, c.sub);
                return ExitCodes.FAILURE;
            }
        }
    }

    private static void mdInfo(Ctx c, SdNode node) throws IOException {
        SheepClient cl = node == null ? c.client() : c.client(node.nid());
        List<SheepClient.MdDisk> disks;
        try {
            disks = cl.mdInfo();
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to get multi-disk information: " + e.getMessage());
        }
        String where = node == null ? c.host + ":" + c.port : addr(node);
        for (SheepClient.MdDisk d : disks) {
            long size = d.free() + d.used();
            int pct = percent(d.used(), size);
            if (c.raw) {
                c.out.print(where + " " + d.idx() + " " + size + " " + d.used() + " " + d.free() + " " + pct + "% " + d.path() + "\n");
            } else {
                c.out.print(Fmt.right(Integer.toString(d.idx()), 2) + "\t" + Fmt.human(size) + "\t" + Fmt.human(d.used()) + "\t"
                        + Fmt.human(d.free()) + "\t" + Fmt.right(Integer.toString(pct), 3) + "%\t" + d.path() + "\n");
            }
        }
    }

    /** {@code node stat [-w] [-v]}; -v adds where the node's writes spend their time (this project's sheep only). */
    static int stat(Ctx c) throws IOException {
        SheepClient cl = c.client();
        long[] prev = null;
        while (true) {
            long[] v = c.verbose ? cl.statWithStages() : cl.stat();
            if (!c.raw) c.out.print("Request\tActive\tTotal\tWrite\tRead\tRemove\tFlush\tAll WR\tAll RD"
                    + (c.has('w') ? "\tWRBW\tRDBW\tRPS" : "") + "\n");
            // sd_stat: 0/1 active, 2/3 total, 4/5 gateway rx/tx, 6/7 peer rx/tx, 8-11 gateway remove/read/write/flush,
            // 12-14 peer remove/read/write. The original prints the read counts under "Write" and the write counts
            // under "Read"; here each column shows what its header says.
            StringBuilder client = new StringBuilder("Client\t").append(v[0]).append('\t').append(v[2]).append('\t').append(v[10])
                    .append('\t').append(v[9]).append('\t').append(v[8]).append('\t').append(v[11]).append('\t')
                    .append(Fmt.size(v[4], c.raw)).append('\t').append(Fmt.size(v[5], c.raw));
            StringBuilder peer = new StringBuilder("Peer\t").append(v[1]).append('\t').append(v[3]).append('\t').append(v[14])
                    .append('\t').append(v[13]).append('\t').append(v[12]).append('\t').append(0).append('\t')
                    .append(Fmt.size(v[6], c.raw)).append('\t').append(Fmt.size(v[7], c.raw));
            if (c.has('w') && prev != null) {
                client.append('\t').append(Fmt.size(v[4] - prev[4], c.raw)).append('\t').append(Fmt.size(v[5] - prev[5], c.raw))
                        .append('\t').append(v[2] - prev[2]);
                peer.append('\t').append(Fmt.size(v[6] - prev[6], c.raw)).append('\t').append(Fmt.size(v[7] - prev[7], c.raw))
                        .append('\t').append(v[3] - prev[3]);
            }
            c.out.print(client + "\n" + peer + "\n");
            if (c.verbose) printStages(c, v, c.has('w') ? prev : null);
            if (!c.has('w')) return ExitCodes.SUCCESS;
            c.io.flush();
            prev = v;
            try { Thread.sleep(1000); } catch (InterruptedException e) { return ExitCodes.SUCCESS; }
        }
    }

    private static final String[] STAGES = {"Client write", "Peer write", "  local copy", "  remote copies"};

    /**
     * The write stages after {@code sd_stat} (v[15..22], (count, ns) pairs): how many, and the mean time of each, since
     * the sheep started or, with {@code prev}, over the last interval; raw (-r): name, count, mean (us) and total (ns). "local copy" and "remote copies" are parts of
     * a client write on this node (its own copy; sending the others until their last reply); "Peer write" is this
     * node storing a copy for another gateway.
     */
    private static void printStages(Ctx c, long[] v, long[] prev) {
        if (v.length < 23) {
            c.err.println("the sheep does not report where writes spend their time");
            return;
        }
        if (!c.raw) c.out.print("Stage\tCount\tMean (us)\n");
        for (int i = 0; i < STAGES.length; i++) {
            long n = v[15 + 2 * i], ns = v[16 + 2 * i];
            if (prev != null && prev.length >= 23) {
                n -= prev[15 + 2 * i];
                ns -= prev[16 + 2 * i];
            }
            if (c.raw) { // for scripts: the total too, so that they can take differences between two readings
                String mean = n == 0 ? "-" : String.format(Locale.ROOT, "%.3f", ns / 1000.0 / n);
                c.out.print(STAGES[i].trim().replace(' ', '-') + " " + n + " " + mean + " " + ns + "\n");
            } else {
                String mean = n == 0 ? "-" : String.format(Locale.ROOT, "%.1f", ns / 1000.0 / n);
                c.out.print(STAGES[i] + "\t" + n + "\t" + mean + "\n");
            }
        }
    }

    private static final String[] LEVELS = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

    /** {@code node log level {set <level>|get|list}}. */
    static int log(Ctx c) throws IOException {
        if (!"level".equals(c.arg(0))) {
            CommandTable.printUsage(c.out, c.sub);
            return ExitCodes.FAILURE;
        }
        String what = c.arg(1);
        if (what == null) what = "get";
        switch (what) {
            case "get" -> {
                int lvl = c.client().getLogLevel();
                c.err.println((lvl >= 0 && lvl < LEVELS.length ? LEVELS[lvl] : "unknown") + " (" + lvl + ")");
            }
            case "list" -> { for (int i = 0; i < LEVELS.length; i++) c.err.println(LEVELS[i] + "\t(" + i + ")"); }
            case "set" -> {
                String name = c.arg(2);
                int lvl = -1;
                for (int i = 0; i < LEVELS.length; i++) if (LEVELS[i].equals(name)) lvl = i;
                if (lvl < 0) {
                    c.err.println("invalid loglevel: " + name);
                    for (int i = 0; i < LEVELS.length; i++) c.err.println(LEVELS[i] + "\t(" + i + ")");
                    return ExitCodes.FAILURE;
                }
                c.client().setLogLevel(lvl);
            }
            default -> {
                CommandTable.printUsage(c.out, c.sub);
                return ExitCodes.FAILURE;
            }
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code node vnodes set <n>}. */
    static int vnodes(Ctx c) throws IOException {
        if (!"set".equals(c.arg(0))) {
            CommandTable.printUsage(c.out, c.sub);
            return ExitCodes.FAILURE;
        }
        String n = c.arg(1);
        int v = -1;
        if (n != null && decimal(n) && n.length() <= 6) v = Integer.parseInt(n);
        if (v < 1 || v > 65535) throw DogExit.usage("Invalid number of vnodes '" + n + "': must be an integer between 1 and 65535");
        try {
            c.client().setVnodes(v);
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to execute request");
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code node format <dir> <plain|tree>}: offline, writes the node's store driver file. */
    static int format(Ctx c) throws IOException {
        String dir = c.arg(0), store = c.arg(1);
        if (store == null) throw DogExit.usage(null);
        if (!store.equals("plain") && !store.equals("tree")) throw DogExit.failure("expected store format: plain, tree");
        Path cfg = Path.of(dir, "node_config");
        if (Files.exists(cfg)) throw DogExit.failure("config file already exists: " + cfg);
        byte[] b = new byte[16];
        byte[] s = store.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(s, 0, b, 0, s.length);
        Files.write(cfg, b);
        return ExitCodes.SUCCESS;
    }
}
