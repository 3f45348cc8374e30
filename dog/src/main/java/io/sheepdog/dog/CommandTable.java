package io.sheepdog.dog;

import java.io.PrintStream;
import java.util.List;

/**
 * The commands dog knows: for every {@code <command> <subcommand>} its option letters (in the order the usage line
 * shows them), argument text, description, sub-subcommands and whether it needs the node list or an argument.
 * Plain data, so that starting dog costs no reflection or lambda bootstrapping; {@link Dog} dispatches by name.
 */
final class CommandTable {
    private CommandTable() {}

    static final String VERSION = "0.1.0";

    /** An option letter with its long name, whether it takes an argument and its help text. */
    record Opt(char ch, String name, boolean hasArg, String desc) { }

    record SubSub(String name, String desc) { }

    record Sub(String family, String name, String opts, String arg, String desc, List<SubSub> subs,
               boolean nodeList, boolean needArg) { }

    record Family(String name, List<Sub> subs) { }

    private static final int NL = 1, ARG = 2;

    private static Sub sub(String family, String name, String opts, String arg, String desc, int flags, SubSub... subs) {
        return new Sub(family, name, opts, arg, desc, subs.length == 0 ? null : List.of(subs), (flags & NL) != 0,
                (flags & ARG) != 0);
    }

    private static SubSub ss(String name, String desc) { return new SubSub(name, desc); }

    static final List<Family> FAMILIES = List.of(
        new Family("vdi", List.of(
            sub("vdi", "check", "seaphT", "<vdiname>", "check and repair image's consistency", NL | ARG),
            sub("vdi", "create", "PycaphrvzT", "<vdiname> <size>", "create an image", NL | ARG),
            sub("vdi", "snapshot", "saphrvTR", "<vdiname>", "create a snapshot", NL | ARG),
            sub("vdi", "clone", "sPnaphrvT", "<src vdi> <dst vdi>", "clone an image", NL | ARG),
            sub("vdi", "delete", "saphTBIm", "<vdiname>", "delete an image", NL | ARG),
            sub("vdi", "rollback", "saphfrvTBI", "<vdiname>", "rollback to a snapshot", NL | ARG),
            sub("vdi", "list", "aprhoT", "[vdiname]", "list images", NL),
            sub("vdi", "tree", "aphT", null, "show images in tree view format", NL),
            sub("vdi", "graph", "aphT", null, "show images in Graphviz dot format", NL),
            sub("vdi", "object", "isaphT", "<vdiname>", "show object information in the image", NL | ARG,
                ss("location", "show object location information"), ss("map", "show object map information"),
                ss("dump-inode", "dump inode information")),
            sub("vdi", "track", "isaphoT", "<vdiname>", "show the object epoch trace in the image", NL | ARG),
            sub("vdi", "setattr", "dxaphT", "<vdiname> <key> [value]", "set a VDI attribute", NL | ARG),
            sub("vdi", "getattr", "aphT", "<vdiname> <key>", "get a VDI attribute", NL | ARG),
            sub("vdi", "resize", "aphT", "<vdiname> <new size>", "resize an image", NL | ARG),
            sub("vdi", "read", "saphT", "<vdiname> [<offset> [<len>]]", "read data from an image", NL | ARG),
            sub("vdi", "write", "apwhT", "<vdiname> [<offset> [<len>]]", "write data to an image", NL | ARG),
            sub("vdi", "backup", "sFaphT", "<vdiname>", "create an incremental backup between two snapshots and outputs to STDOUT", NL | ARG),
            sub("vdi", "restore", "saphTBI", "<vdiname>", "restore snapshot images from a backup provided in STDIN", NL | ARG),
            sub("vdi", "alter-copy", "caphTf", "<vdiname>", "set the vdi's redundancy level", NL | ARG),
            sub("vdi", "lock", "saphT", null, "See 'dog vdi lock' for more information", NL,
                ss("list", "list locked VDIs"), ss("unlock", "unlock locked VDI forcibly")))),
        new Family("node", List.of(
            sub("node", "kill", "aprhlT", "<node id>", "kill node", NL),
            sub("node", "list", "aprhT", null, "list nodes", NL),
            sub("node", "info", "aprhT", null, "show information about each node", NL),
            sub("node", "recovery", "aphPrT", "<max> <interval>", "show recovery information or set/get recovery speed throttling of nodes", NL,
                ss("info", "show recovery information of nodes (default)"), ss("set-throttle", "set new throttling"),
                ss("get-throttle", "get current throttling")),
            sub("node", "md", "aprAfhT", "[disks]", "See 'dog node md' for more information", NL,
                ss("info", "show multi-disk information"), ss("plug", "plug more disk(s) into node"),
                ss("unplug", "unplug disk(s) from node")),
            sub("node", "stat", "aprwhTv", null, "show stat information about the node", 0),
            sub("node", "log", "aphT", null, "show or set log level of the node", 0,
                ss("level", "set/get loglevel of the node")),
            sub("node", "vnodes", "aph", "<num of vnodes>", "set new vnodes", 0, ss("set", "set new vnodes")),
            sub("node", "format", "aphT", "<directory of sheep> <a name of store format>", "initialize store format of the node", ARG))),
        new Family("cluster", List.of(
            sub("cluster", "info", "aprhvTd", null, "show cluster information", NL),
            sub("cluster", "format", "bcltaphzTVRfF", null, "create a Sheepdog store", NL),
            sub("cluster", "shutdown", "aphT", null, "stop Sheepdog", 0),
            sub("cluster", "snapshot", "aphTm", "<tag|idx> <path> [vdi1] [vdi2] ...", "snapshot/restore the cluster", 0,
                ss("save", "save snapshot to localpath"), ss("list", "list snapshot of localpath"),
                ss("load", "load snapshot from localpath"), ss("show", "show vdi list from snapshot")),
            sub("cluster", "recover", "afphT", null, "See 'dog cluster recover' for more information", 0,
                ss("force", "force recover cluster immediately"),
                ss("enable", "enable automatic recovery and run once recover if necessary"),
                ss("disable", "disable automatic recovery")),
            sub("cluster", "reweight", "aphT", null, "reweight the cluster", 0),
            sub("cluster", "check", "aphT", null, "check and repair cluster", NL),
            sub("cluster", "alter-copy", "aphTcf", null, "set the cluster's redundancy level", NL))),
        new Family("vm", List.of(
            sub("vm", "list", "aprhT", null, "list VDIs in use and the clients using them", NL))),
        new Family("upgrade", List.of(
            sub("upgrade", "inode-convert", "hTo", "<path of original inode file> <path of new inode file>", "upgrade inode object file", ARG),
            sub("upgrade", "epoch-convert", "hTo", "<path of original epoch log file> <path of new epoch log file>", "upgrade epoch log file", ARG),
            sub("upgrade", "config-convert", "hT", "<path of original config file> <path of new config file>", "upgrade config file", ARG),
            sub("upgrade", "object-location", "hT", "<path of latest epoch file> <oid>", "print object location", ARG))),
        new Family("benchmark", List.of(
            sub("benchmark", "io", "aprhTfwtn", "<vdiname>", "benchmark I/O performance", NL | ARG))));

    private static final List<Opt> GLOBAL = List.of(
        new Opt('a', "address", true, "specify the daemon address (default: localhost)"),
        new Opt('p', "port", true, "specify the daemon port"),
        new Opt('r', "raw", false, "raw output mode: omit headers, separate fields with single spaces and print all sizes in decimal bytes"),
        new Opt('v', "verbose", false, "print more information than default"),
        new Opt('h', "help", false, "display this help and exit"),
        new Opt('T', "time", false, "show elapsed time"));

    private static final List<Opt> VDI = List.of(
        new Opt('P', "prealloc", false, "preallocate all the data objects"),
        new Opt('n', "no-share", false, "share nothing with its parent"),
        new Opt('i', "index", true, "specify the index of data objects"),
        new Opt('s', "snapshot", true, "specify a snapshot id or tag name"),
        new Opt('x', "exclusive", false, "write in an exclusive mode"),
        new Opt('d', "delete", false, "delete a key"),
        new Opt('w', "writeback", false, "use writeback mode"),
        new Opt('c', "copies", true, "specify the data redundancy level"),
        new Opt('F', "from", true, "create a differential backup from the snapshot"),
        new Opt('f', "force", false, "do operation forcibly"),
        new Opt('y', "hyper", false, "create a hyper volume"),
        new Opt('o', "oid", true, "specify the object id of the tracking object"),
        new Opt('e', "exist", false, "only check objects exist or not, neither comparing nor repairing"),
        new Opt('z', "block_size_shift", true, "specify the bit shift num for data object size"),
        new Opt('R', "reduce-identical-snapshots", false, "do not create snapshot if working VDI doesn't have its own objects"),
        new Opt('B', "nr-batched-reclamation", true, "specify a number of batched reclamation"),
        new Opt('I', "reclamation-interval", true, "specify an interval of batched reclamation (seconds)"),
        new Opt('m', "max-reclaim", true, "specify a max number of reclaimed objects"));

    private static final List<Opt> NODE = List.of(
        new Opt('A', "all", false, "show md information of all the nodes"),
        new Opt('P', "progress", false, "show progress of recovery in the node"),
        new Opt('w', "watch", false, "watch the stat every second"),
        new Opt('l', "local", false, "issue request to the local node"),
        new Opt('f', "force", false, "do operation forcibly"));

    private static final List<Opt> CLUSTER = List.of(
        new Opt('b', "store", true, "specify backend store"),
        new Opt('c', "copies", true, "specify the default data redundancy (number of copies)"),
        new Opt('f', "force", false, "do not prompt for confirmation"),
        new Opt('F', "avoid-diskfull", false, "avoid recovery that would make a node's disk full"),
        new Opt('l', "lock", false, "use locking for VDIs"),
        new Opt('m', "multithread", false, "use multi-thread for 'cluster snapshot save'"),
        new Opt('R', "recyclevid", false, "recycle the VIDs of deleted VDI families"),
        new Opt('t', "strict", false, "do not serve write requests if number of nodes is not sufficient"),
        new Opt('z', "block_size_shift", true, "specify the shift num of default data object size"),
        new Opt('V', "fixedvnodes", false, "disable automatic vnodes calculation"),
        new Opt('d', "diff", false, "show the difference between adjacent epochs"));

    private static final List<Opt> UPGRADE = List.of(
        new Opt('o', "orig-version", true, "specify original version of file format (v0.7 or v0.8)"));

    private static final List<Opt> BENCHMARK = List.of(
        new Opt('f', "force", false, "do operation forcibly"),
        new Opt('w', "workqueue", true, "specify workqueue type (ordered, dynamic or fixed)"),
        new Opt('t', "total", true, "specify a number of total requests"),
        new Opt('n', "nr-threads", true, "specify a number of threads of fixed workqueue"));

    /** The option of {@code family} with letter {@code ch} (family options shadow global ones). */
    static Opt opt(String family, char ch) {
        List<Opt> fam = switch (family) {
            case "vdi" -> VDI;
            case "node" -> NODE;
            case "cluster" -> CLUSTER;
            case "upgrade" -> UPGRADE;
            case "benchmark" -> BENCHMARK;
            default -> List.of();
        };
        for (Opt o : fam) if (o.ch() == ch) return o;
        for (Opt o : GLOBAL) if (o.ch() == ch) return o;
        throw new IllegalStateException("no option -" + ch + " in " + family);
    }

    static Family family(String name) {
        for (Family f : FAMILIES) if (f.name().equals(name)) return f;
        return null;
    }

    static Sub find(String family, String sub) {
        Family f = family(family);
        if (f == null || sub == null) return null;
        for (Sub s : f.subs()) if (s.name().equals(sub)) return s;
        return null;
    }

    /** {@code dog --help}. */
    static void printHelp(PrintStream out) {
        out.print("Sheepdog administrator utility (version " + VERSION + ")\n");
        out.print("Usage: dog <command> <subcommand> [options]\n");
        out.print("\nAvailable commands:\n");
        for (Family f : FAMILIES) {
            for (Sub s : f.subs()) out.print("  " + Fmt.left(f.name() + " " + s.name(), 24) + s.desc() + "\n");
        }
        out.print("\n");
        out.print("For more information, run 'dog <command> <subcommand> --help'.\n");
    }

    /** The usage line, without "Usage: ". */
    static String usageLine(Sub s) {
        StringBuilder b = new StringBuilder("dog ").append(s.family()).append(' ').append(s.name());
        if (s.subs() != null) {
            if (s.subs().size() == 1) b.append(' ').append(s.subs().get(0).name());
            else {
                b.append(" {");
                for (int i = 0; i < s.subs().size(); i++) b.append(i == 0 ? "" : "|").append(s.subs().get(i).name());
                b.append('}');
            }
        }
        for (char ch : s.opts().toCharArray()) {
            Opt o = opt(s.family(), ch);
            b.append(o.hasArg() ? " [-" + ch + " " + o.name() + "]" : " [-" + ch + "]");
        }
        if (s.arg() != null) b.append(' ').append(s.arg());
        return b.toString();
    }

    /** {@code dog <cmd> <sub> --help}. */
    static void printUsage(PrintStream out, Sub s) {
        out.print("Usage: " + usageLine(s) + "\n");
        if (s.subs() != null) {
            out.print("Available subcommands:\n");
            for (SubSub x : s.subs()) out.print("  " + Fmt.left(x.name(), 24) + x.desc() + "\n");
        }
        out.print("Options:\n");
        for (char ch : s.opts().toCharArray()) {
            Opt o = opt(s.family(), ch);
            out.print("  " + Fmt.left("-" + ch + ", --" + o.name(), 24) + o.desc() + "\n");
        }
    }
}
