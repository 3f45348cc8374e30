package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.client.VdiEnumerator;
import io.sheepdog.client.VdiState;
import io.sheepdog.client.Volume;
import io.sheepdog.proto.ClusterInfo;
import io.sheepdog.proto.EpochRecord;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.proto.Proto;
import io.sheepdog.proto.SdFlags;
import io.sheepdog.proto.SdNode;
import io.sheepdog.proto.SdResult;
import io.sheepdog.proto.Strings;
import io.sheepdog.proto.VdiAttr;
import io.sheepdog.proto.VnodeRing;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** {@code dog vdi ...} commands other than data transfer and check (docs/dog.md §2). */
final class VdiCmds {
    private VdiCmds() {}

    private static final String LIST_HEADER =
            "  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift\n";

    // ------------------------------------------------------------------ list

    /** {@code vdi list [-r] [-o oid] [name]}. */
    static int list(Ctx c) throws IOException {
        String only = c.arg(0);
        long oidFilter = 0;
        if (c.has('o')) {
            try {
                oidFilter = Long.parseUnsignedLong(c.opt('o').replaceFirst("^0[xX]", ""), 16);
            } catch (NumberFormatException e) {
                throw DogExit.failure("Invalid object id '" + c.opt('o') + "'");
            }
            if (!Oids.isData(oidFilter)) throw DogExit.failure("object " + Fmt.oid(oidFilter) + " is not a data object");
        }
        List<Inode> all = VdiEnumerator.list(c.client(), true, vid -> c.err.println("Failed to read inode header"));
        if (!c.raw) c.out.print(LIST_HEADER);
        for (Inode n : all) {
            if (only != null && !only.equals(n.name)) continue;
            if (c.has('o') && n.dataVid(Oids.index(oidFilter)) != Oids.vid(oidFilter)) continue;
            c.out.print(listRow(n, c.raw));
        }
        return ExitCodes.SUCCESS;
    }

    static char typeChar(Inode n, boolean raw) {
        if (n.isSnapshot()) return 's';
        if (n.isClone()) return 'c';
        return raw ? '=' : ' ';
    }

    /** One row of {@code vdi list}. */
    static String listRow(Inode n, boolean raw) {
        long[] u = Vdis.usage(n);
        long objSize = n.objectSize();
        long used = u[0] * objSize, shared = u[1] * objSize;
        int id = n.isSnapshot() ? n.snapId : 0;
        long ctime = n.createTime >>> 32;
        String copies = Fmt.copies(n.nrCopies, n.copyPolicy);
        if (raw) {
            return typeChar(n, true) + " " + Fmt.escapeRaw(n.name) + " " + id + " " + n.vdiSize + " " + used + " " + shared + " "
                    + ctime + " " + Fmt.hex(n.vdiId) + " " + copies + " " + n.tag + " " + n.blockSizeShift + "\n";
        }
        return typeChar(n, false) + " " + Fmt.left(n.name, 8) + " " + Fmt.right(Integer.toString(id), 5) + " "
                + Fmt.right(Fmt.human(n.vdiSize), 7) + " " + Fmt.right(Fmt.human(used), 7) + " " + Fmt.right(Fmt.human(shared), 7)
                + " " + Fmt.shortDate(ctime) + "  " + Fmt.right(Fmt.hex(n.vdiId), 7) + " " + Fmt.right(copies, 6) + " "
                + Fmt.right(n.tag, 13) + " " + Fmt.right(Integer.toString(n.blockSizeShift), 3) + "\n";
    }

    // ------------------------------------------------------------------ create

    /** {@code vdi create NAME SIZE [-c copies] [-P] [-y] [-z shift] [-v]}. */
    static int create(Ctx c) throws IOException {
        String name = c.arg(0);
        String sizeArg = c.arg(1);
        if (sizeArg == null) throw DogExit.usage("Please specify the VDI size");
        long size = parseSize(sizeArg);
        checkName(name);
        if (c.has('y') && c.has('z')) throw DogExit.usage("Don't specify both -y and -z options, please");
        Redundancy red = c.has('c') ? Redundancy.parse(c.opt('c')) : new Redundancy(0, 0);
        int shift;
        if (c.has('z')) {
            shift = Redundancy.parseShift(c.opt('z'));
        } else if (c.has('y')) {
            shift = Proto.DEFAULT_BLOCK_SIZE_SHIFT;
        } else {
            ClusterInfo ci = c.client().clusterInfo();
            if (ci.ctime == 0) throw DogExit.failure("Failed to create VDI " + name + ": " + SdResult.message(SdResult.WAIT_FOR_FORMAT));
            shift = ci.blockSizeShift == 0 ? Proto.DEFAULT_BLOCK_SIZE_SHIFT : ci.blockSizeShift;
        }
        long objSize = 1L << shift;
        if (!c.has('y') && size > objSize * Proto.OLD_MAX_DATA_OBJS) {
            throw DogExit.usage("VDI size is larger than " + Fmt.human(objSize * Proto.OLD_MAX_DATA_OBJS)
                    + " bytes, please use '-y' to create a hyper volume with size up to " + Fmt.human(Proto.MAX_VDI_SIZE)
                    + " bytes or use '-z' to create larger object size volume");
        }
        if (size > Proto.MAX_VDI_SIZE) throw DogExit.usage("VDI size is too large");
        SheepClient.VdiId id;
        try {
            id = c.client().newVdi(new SheepClient.NewVdi(name, size, 0, 0, red.copies(), red.copyPolicy(),
                    c.has('y') ? 1 : 0, shift));
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to create VDI " + name + ": " + e.getMessage());
        }
        if (c.has('P')) {
            try (Volume v = Volume.openWritable(c.client(), name, false)) {
                v.preallocate();
            } catch (SheepdogException e) {
                throw DogExit.failure("Failed to preallocate VDI " + name + ": " + e.getMessage());
            }
        }
        if (c.verbose) c.out.print(c.raw ? Fmt.hex(id.vid()) + "\n" : "VDI ID of newly created VDI: " + Fmt.hex(id.vid()) + "\n");
        return ExitCodes.SUCCESS;
    }

    static long parseSize(String s) {
        long v = Sizes.parse(s);
        if (v < 0) {
            throw DogExit.usage("Invalid size '" + s + "'\n"
                    + "You may use K, M, G, T or P suffixes for kilobytes, megabytes, gigabytes, terabytes or petabytes.");
        }
        return v;
    }

    static void checkName(String name) {
        if (name.getBytes(StandardCharsets.UTF_8).length >= Proto.MAX_VDI_LEN) throw DogExit.usage("VDI name is too long");
        if (name.isEmpty()) throw DogExit.usage("VDI name must not be empty");
    }

    // ------------------------------------------------------------------ delete, snapshot, clone, rollback

    private static int intOpt(Ctx c, char ch, int dflt) {
        if (!c.has(ch)) return dflt;
        try {
            int v = Integer.parseInt(c.opt(ch));
            if (v < 0) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw DogExit.usage("Invalid number '" + c.opt(ch) + "'");
        }
    }

    /** {@code vdi delete [-s snap] NAME}. */
    static int delete(Ctx c) throws IOException {
        String name = c.arg(0);
        Vdis.Snap s = Vdis.snapOption(c);
        int vid = Vdis.lookup(c, name, s);
        int batch = Math.max(1, intOpt(c, 'B', 128));
        int rc = Vdis.delete(c, name, s, vid, batch, intOpt(c, 'I', 0), intOpt(c, 'm', 0));
        // the original exits 0 even when the deletion failed; a script wants to know, so this returns 1
        if (rc != SdResult.SUCCESS) throw DogExit.failure("Failed to delete " + name + ": " + SdResult.message(rc));
        return ExitCodes.SUCCESS;
    }

    /** {@code vdi snapshot [-s tag] [-R] [-v] NAME}. */
    static int snapshot(Ctx c) throws IOException {
        String name = c.arg(0);
        Vdis.Snap s = Vdis.snapOption(c);
        if (s.id() != 0) throw DogExit.usage("Please specify a non-integer value for a snapshot tag name");
        if (!s.tag().isEmpty()) {
            try {
                c.client().getVdiInfo(name, 0, s.tag());
                throw DogExit.failure("Failed to create snapshot for " + name + ", maybe snapshot id (0) or tag (" + s.tag() + ") is existed");
            } catch (SheepdogException e) {
                if (e.result() != SdResult.NO_TAG) throw DogExit.failure("Failed to create snapshot for " + name + ": " + e.getMessage());
            }
        }
        int vid = Vdis.lookup(c, name, Vdis.Snap.WORKING);
        Inode n = Vdis.read(c, vid, c.has('R'));
        if (n.storePolicy != 0) throw DogExit.failure("creating a snapshot of hypervolume is not supported");
        if (c.has('R') && Vdis.usage(n)[0] == 0) return ExitCodes.SUCCESS;
        SheepClient cl = c.client();
        try {
            cl.writeObj(Oids.inodeOid(vid), 256, Strings.fixed(s.tag(), Proto.MAX_VDI_TAG_LEN));
            SheepClient.VdiId nv = cl.newVdi(new SheepClient.NewVdi(name, n.vdiSize, vid, 1, n.nrCopies, n.copyPolicy,
                    n.storePolicy, n.blockSizeShift));
            if (c.verbose) {
                c.out.print(c.raw ? Fmt.hex(nv.vid()) + " " + Fmt.hex(vid) + "\n"
                        : "new VID of original VDI: " + Fmt.hex(nv.vid()) + ", VDI ID of newly created snapshot: " + Fmt.hex(vid) + "\n");
            }
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to create snapshot for " + name + ": " + e.getMessage());
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code vdi clone -s snap [-P] [-n] SRC DST}. */
    static int cloneVdi(Ctx c) throws IOException {
        String src = c.arg(0), dst = c.arg(1);
        Vdis.Snap s = Vdis.snapOption(c);
        if (!s.given()) throw DogExit.usage("Only snapshot VDIs can be cloned\nPlease specify the '-s' option");
        if (dst == null) throw DogExit.usage("Please specify the name of the new VDI");
        checkName(dst);
        int vid = Vdis.lookup(c, src, s);
        Inode n = Vdis.read(c, vid, true);
        boolean noShare = c.has('n');
        SheepClient.VdiId nv;
        try {
            nv = c.client().newVdi(new SheepClient.NewVdi(dst, n.vdiSize, noShare ? 0 : vid, 0, n.nrCopies, n.copyPolicy,
                    n.storePolicy, n.blockSizeShift));
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to create VDI " + dst + ": " + e.getMessage());
        }
        if (noShare || c.has('P')) {
            try (Volume from = Volume.openReadOnly(c.client(), vid); Volume to = Volume.openWritable(c.client(), dst, false)) {
                copyObjects(c, from, to, noShare);
                if (c.has('P')) to.preallocate();
            } catch (IOException e) {
                // do not leave a half-copied clone behind
                try { Vdis.delete(c, dst, Vdis.Snap.WORKING, nv.vid(), 128, 0, 0); } catch (IOException ignored) { }
                throw DogExit.failure("Failed to clone VDI " + src + " to " + dst + ": " + e.getMessage());
            }
        }
        if (c.verbose) c.out.print(c.raw ? Fmt.hex(nv.vid()) + "\n" : "VDI ID of newly created clone: " + Fmt.hex(nv.vid()) + "\n");
        return ExitCodes.SUCCESS;
    }

    /** Copies every allocated object of {@code from} into {@code to} (a full copy for -n / -P). */
    private static void copyObjects(Ctx c, Volume from, Volume to, boolean all) throws IOException {
        long objSize = from.objectSize();
        int count = Inode.objectCount(from.size(), from.blockSizeShift());
        Progress bar = new Progress(c.io, count, true);
        for (int i = 0; i < count; i++) {
            if (from.dataVid(i) == 0) continue;
            if (!all && to.dataVid(i) != 0) continue;
            long off = (long) i * objSize;
            int len = (int) Math.min(objSize, from.size() - off);
            to.write(off, from.read(off, len));
            bar.update(i + 1);
        }
        bar.done();
    }

    /** {@code vdi rollback -s snap [-f] NAME}. */
    static int rollback(Ctx c) throws IOException {
        String name = c.arg(0);
        Vdis.Snap s = Vdis.snapOption(c);
        if (!s.given()) throw DogExit.usage("Please specify the '-s' option");
        int snapVid = Vdis.lookup(c, name, s);
        Inode snap = Vdis.read(c, snapVid, false);
        if (!c.has('f')) c.confirm(Prompts.ROLLBACK);
        int cur;
        try {
            cur = c.client().getVdiInfo(name, 0, "").vid();
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to find the current state of " + name + ": " + e.getMessage());
        }
        int rc = Vdis.delete(c, name, Vdis.Snap.WORKING, cur, Math.max(1, intOpt(c, 'B', 128)), intOpt(c, 'I', 0), 0);
        if (rc != SdResult.SUCCESS) throw DogExit.failure("Failed to delete the current state: " + SdResult.message(rc));
        SheepClient.VdiId nv;
        try {
            nv = c.client().newVdi(new SheepClient.NewVdi(name, snap.vdiSize, snapVid, 0, snap.nrCopies, snap.copyPolicy,
                    snap.storePolicy, snap.blockSizeShift));
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to create VDI " + name + ": " + e.getMessage());
        }
        if (c.verbose) c.out.print(c.raw ? Fmt.hex(nv.vid()) + "\n" : "New VDI ID of rollbacked VDI: " + Fmt.hex(nv.vid()) + "\n");
        return ExitCodes.SUCCESS;
    }

    /** {@code vdi resize NAME SIZE}: grow only. */
    static int resize(Ctx c) throws IOException {
        String name = c.arg(0);
        String sizeArg = c.arg(1);
        if (sizeArg == null) throw DogExit.usage("Please specify the new size for the VDI");
        long size = parseSize(sizeArg);
        int vid = Vdis.lookup(c, name, Vdis.Snap.WORKING);
        Inode n = Vdis.read(c, vid, false);
        if (n.storePolicy == 0) {
            long max = n.objectSize() * Proto.OLD_MAX_DATA_OBJS;
            if (size > max) throw DogExit.failure("New VDI size is too large. This volume's max size is " + max);
        } else if (size > Proto.MAX_VDI_SIZE) {
            throw DogExit.failure("New VDI size is too large. This volume's max size is " + Proto.MAX_VDI_SIZE);
        }
        if (size < n.vdiSize) throw DogExit.usage("Shrinking VDIs is not implemented");
        byte[] b = new byte[8];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, size);
        try {
            c.client().writeObj(Oids.inodeOid(vid), 536, b); // vdi_size in the inode header
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to update an inode header: " + e.getMessage());
        }
        return ExitCodes.SUCCESS;
    }

    // ------------------------------------------------------------------ tree and graph

    /** A VDI in the snapshot forest. */
    static final class TreeNode {
        final Inode inode;
        final String label;
        final int labelWidth;
        final List<TreeNode> children = new ArrayList<>();
        TreeNode parent;

        TreeNode(Inode inode, String label, int labelWidth) {
            this.inode = inode;
            this.label = label;
            this.labelWidth = labelWidth;
        }
    }

    /** {@code vdi tree}. */
    static int tree(Ctx c) throws IOException {
        List<Inode> all = VdiEnumerator.list(c.client(), false, vid -> c.err.println("Failed to read inode header"));
        boolean bold = c.io.stdoutTty && !c.raw;
        c.out.print(drawTree(all, bold));
        return ExitCodes.SUCCESS;
    }

    /**
     * The forest of VDIs: a VDI's parent is the VDI with its parent_vdi_id and the same name (clones start their
     * own tree). Drawn as in docs/dog.md §2.2.
     */
    static String drawTree(List<Inode> inodes, boolean bold) {
        Map<Integer, TreeNode> byVid = new HashMap<>();
        List<TreeNode> order = new ArrayList<>();
        for (Inode n : inodes) {
            String label = n.isSnapshot() ? "[" + Fmt.shortDate(n.createTime >>> 32) + "]" : "(you are here)";
            String shown = !n.isSnapshot() && bold ? "\033[1m" + label + "\033[0m" : label;
            TreeNode t = new TreeNode(n, shown, label.length());
            byVid.put(n.vdiId, t);
            order.add(t);
        }
        List<TreeNode> roots = new ArrayList<>();
        for (TreeNode t : order) {
            TreeNode p = byVid.get(t.inode.parentVdiId);
            if (p != null && p != t && p.inode.name.equals(t.inode.name) && !isAncestor(t, p)) {
                t.parent = p;
                p.children.add(t);
            } else {
                roots.add(t);
            }
        }
        StringBuilder out = new StringBuilder();
        for (TreeNode r : roots) {
            int[] width = new int[64];
            boolean[] more = new boolean[64];
            out.append(r.inode.name).append("---");
            width[0] = r.inode.name.length();
            draw(out, r, 1, width, more);
        }
        return out.toString();
    }

    private static boolean isAncestor(TreeNode maybeAncestor, TreeNode node) {
        for (TreeNode p = node; p != null; p = p.parent) if (p == maybeAncestor) return true;
        return false;
    }

    private static void draw(StringBuilder out, TreeNode t, int depth, int[] width, boolean[] more) {
        if (depth >= width.length) return; // absurdly deep chains are cut rather than overflow
        out.append(t.label);
        width[depth] = t.labelWidth;
        if (t.children.isEmpty()) {
            out.append('\n');
            return;
        }
        int n = t.children.size();
        for (int k = 0; k < n; k++) {
            boolean last = k == n - 1;
            if (depth + 1 < more.length) more[depth + 1] = !last;
            if (k == 0) {
                out.append(n == 1 ? "---" : "-+-");
            } else {
                for (int l = 0; l < depth; l++) {
                    spaces(out, width[l] + 1);
                    out.append(more[l + 1] ? "| " : "  ");
                }
                spaces(out, width[depth] + 1);
                out.append(last ? "`-" : "|-");
            }
            draw(out, t.children.get(k), depth + 1, width, more);
        }
    }

    private static void spaces(StringBuilder b, int n) { for (int i = 0; i < n; i++) b.append(' '); }

    /** {@code vdi graph}: Graphviz dot of the VDI forest. */
    static int graph(Ctx c) throws IOException {
        List<Inode> all = VdiEnumerator.list(c.client(), false, vid -> c.err.println("Failed to read inode header"));
        StringBuilder b = new StringBuilder();
        b.append("digraph G {\n");
        b.append("  node [shape = \"box\", fontname = \"Courier\"];\n\n");
        b.append("  \"0\" [shape = \"ellipse\", label = \"root\"];\n\n");
        for (Inode n : all) {
            long t = n.createTime >>> 32;
            b.append("  \"").append(Fmt.hex(n.parentVdiId)).append("\" -> \"").append(Fmt.hex(n.vdiId)).append("\";\n");
            b.append("  \"").append(Fmt.hex(n.vdiId)).append("\" [\n");
            b.append("    group = \"").append(n.name).append("\",\n");
            b.append("    label = \"Name: ").append(Fmt.right(n.name, 10)).append("\\nTag:  ").append(Fmt.right(Fmt.hex(n.snapId), 10))
                    .append("\\nSize: ").append(Fmt.right(Fmt.human(n.vdiSize), 10)).append("\\nDate: ").append(Fmt.right(Fmt.day(t), 10))
                    .append("\\nTime: ").append(Fmt.right(Fmt.time(t), 10));
            if (n.isSnapshot()) b.append("\"\n  ];\n\n");
            else b.append("\",\n    color=\"red\"\n  ];\n\n");
        }
        b.append("}\n");
        c.out.print(b);
        return ExitCodes.SUCCESS;
    }

    // ------------------------------------------------------------------ object, track

    /** {@code vdi object {location|map|dump-inode} [-i idx] [-s snap] NAME}. */
    static int object(Ctx c) throws IOException {
        String what = c.arg(0);
        if (what == null || !(what.equals("location") || what.equals("map") || what.equals("dump-inode"))) {
            CommandTable.printUsage(c.out, c.sub);
            return ExitCodes.FAILURE;
        }
        String name = c.arg(1);
        if (name == null) throw DogExit.usage(null);
        if (what.equals("dump-inode")) return dumpInode(c, name);
        Long idx = null;
        if (c.has('i')) idx = parseIndex(c.opt('i'));
        Vdis.Snap s = Vdis.snapOption(c);
        int vid = Vdis.lookup(c, name, s);
        Inode n = Vdis.read(c, vid, true);
        if (what.equals("map")) {
            c.out.print("Index       VID\n");
            int count = n.blockSizeShift == 0 ? 0 : n.objectCount();
            for (int i = 0; i < count; i++) {
                if (idx != null && idx != i) continue;
                int v = n.dataVid(i);
                if (v != 0) c.out.print(String.format("%08d %8x%n", i, v).replace(System.lineSeparator(), "\n"));
            }
            return ExitCodes.SUCCESS;
        }
        // location
        long oid;
        if (idx == null) {
            oid = Oids.inodeOid(vid);
            c.out.print("Looking for the inode object 0x" + Fmt.hex(vid) + " with " + c.nodes.size() + " nodes\n\n");
        } else {
            if (idx >= Proto.MAX_DATA_OBJS) throw DogExit.failure("The offset is too large!");
            int owner = n.dataVid(idx);
            if (owner == 0) throw DogExit.failure("The inode object 0x" + Fmt.hex(vid) + " idx " + idx + " is not allocated");
            oid = Oids.dataOid(owner, idx);
            c.out.print("Looking for the object " + Fmt.oid(oid) + " (vid 0x" + Fmt.hex(vid) + " idx " + idx + ", " + n.nrCopies
                    + " copies) with " + c.nodes.size() + " nodes\n\n");
        }
        for (SdNode node : c.nodes) {
            boolean has;
            try {
                has = c.client(node.nid()).exist(oid);
            } catch (IOException e) {
                has = false;
            }
            c.out.print(Addr.of(node.nid()) + (has ? " has the object\n" : " doesn't have the object\n"));
        }
        int copies = n.nrCopies;
        if (c.nodes.size() < copies) {
            c.out.print("\nBecause number of nodes (" + c.nodes.size() + ") is less than number of copies (" + copies
                    + "), the object should be located at every nodes.\n");
        } else {
            c.out.print("\nAccording to sheepdog algorithm, the object should be located at:\n");
            List<String> addrs = new ArrayList<>();
            for (SdNode t : c.ring.targets(oid, copies)) addrs.add(Addr.of(t.nid()));
            c.out.print(String.join(" ", addrs) + "\n");
        }
        return ExitCodes.SUCCESS;
    }

    static long parseIndex(String s) {
        try {
            long v = s.startsWith("0x") || s.startsWith("0X") ? Long.parseUnsignedLong(s.substring(2), 16) : Long.parseLong(s);
            if (v < 0) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw DogExit.usage("Invalid index '" + s + "'");
        }
    }

    /** {@code vdi object dump-inode FILE}: decodes a local inode object file. */
    private static int dumpInode(Ctx c, String file) throws IOException {
        byte[] b;
        try {
            b = Files.readAllBytes(Path.of(file));
        } catch (IOException e) {
            throw DogExit.failure("Failed to read " + file + ": " + e.getMessage());
        }
        if (b.length < Inode.HEADER_FIELDS_SIZE) throw DogExit.failure(file + " is not an inode object");
        Inode n = Inode.decode(b);
        StringBuilder o = new StringBuilder();
        o.append("name: ").append(n.name).append('\n').append("tag: ").append(n.tag).append('\n');
        o.append("create_time: ").append(Long.toHexString(n.createTime)).append('\n');
        o.append("snap_ctime: ").append(Long.toHexString(n.snapCtime)).append('\n');
        o.append("vm_clock_nsec: ").append(Long.toHexString(n.vmClockNsec)).append('\n');
        o.append("vdi_size: ").append(Long.toUnsignedString(n.vdiSize)).append('\n');
        o.append("vm_state_size: ").append(Long.toUnsignedString(n.vmStateSize)).append('\n');
        o.append("copy_policy: ").append(n.copyPolicy).append('\n').append("store_policy: ").append(n.storePolicy).append('\n');
        o.append("nr_copies: ").append(n.nrCopies).append('\n').append("block_size_shift: ").append(n.blockSizeShift).append('\n');
        o.append("snap_id: ").append(Integer.toUnsignedString(n.snapId)).append('\n');
        o.append("vdi_id: ").append(Fmt.hex(n.vdiId)).append('\n').append("parent_vdi_id: ").append(Fmt.hex(n.parentVdiId)).append('\n');
        o.append("btree_counter: ").append(Integer.toUnsignedString(n.btreeCounter)).append('\n');
        o.append("data_vdi_id:\n");
        for (int i = 0; i < n.dataVdiId.length; i++) if (n.dataVdiId[i] != 0) o.append(i).append(": ").append(Fmt.hex(n.dataVdiId[i])).append('\n');
        o.append("gref:\n");
        for (int i = 0; i < n.grefGeneration.length; i++) {
            if (n.dataVdiId[i] != 0 || n.grefGeneration[i] != 0 || n.grefCount[i] != 0) {
                o.append(i).append(": ").append(Fmt.hex(n.dataVdiId[i])).append(", ").append(n.grefGeneration[i]).append(", ")
                        .append(n.grefCount[i]).append('\n');
            }
        }
        c.out.print(o);
        return ExitCodes.SUCCESS;
    }

    /** {@code vdi track [-i idx] [-o oid] [-s snap] NAME}: where an object was placed in every epoch. */
    static int track(Ctx c) throws IOException {
        String name = c.arg(0);
        Vdis.Snap s = Vdis.snapOption(c);
        int vid = Vdis.lookup(c, name, s);
        Inode n = Vdis.read(c, vid, true);
        long oid;
        if (c.has('o')) {
            try {
                oid = Long.parseUnsignedLong(c.opt('o').replaceFirst("^0[xX]", ""), 16);
            } catch (NumberFormatException e) {
                throw DogExit.usage("Invalid object id '" + c.opt('o') + "'");
            }
            c.out.print("Tracking the object " + Fmt.oid(oid) + " (the inode vid 0x" + Fmt.hex(vid) + ") with " + c.nodes.size() + " nodes\n");
        } else if (c.has('i')) {
            long idx = parseIndex(c.opt('i'));
            int owner = n.dataVid(idx);
            if (owner == 0) throw DogExit.failure("The inode object 0x" + Fmt.hex(vid) + " idx " + idx + " is not allocated");
            oid = Oids.dataOid(owner, idx);
            c.out.print("Tracking the object " + Fmt.oid(oid) + " (the inode vid 0x" + Fmt.hex(vid) + " idx " + idx + ") with "
                    + c.nodes.size() + " nodes\n");
        } else {
            oid = Oids.inodeOid(vid);
            c.out.print("Tracking the inode object 0x" + Fmt.hex(vid) + " with " + c.nodes.size() + " nodes\n");
        }
        SheepClient.ClusterStat st = c.client().statClusterAll(c.nodes.size());
        List<EpochRecord> recs = st.records();
        for (int i = recs.size() - 1; i >= 0; i--) {
            EpochRecord r = recs.get(i);
            c.out.print("\nobj " + Fmt.oid(oid) + " locations at epoch " + r.epoch + ", copies = " + n.nrCopies + "\n");
            c.out.print("---------------------------------------------------\n");
            VnodeRing ring = VnodeRing.build(r.nodes);
            if (r.nodes.size() < n.nrCopies) {
                for (SdNode x : r.nodes) c.out.print(Addr.of(x.nid()) + "\n");
            } else {
                for (SdNode x : ring.targets(oid, n.nrCopies)) c.out.print(Addr.of(x.nid()) + "\n");
            }
        }
        return ExitCodes.SUCCESS;
    }

    // ------------------------------------------------------------------ attributes

    /** {@code vdi setattr [-d] [-x] NAME KEY [VALUE]}. */
    static int setattr(Ctx c) throws IOException {
        String name = c.arg(0), key = c.arg(1), value = c.arg(2);
        if (key == null) throw DogExit.usage(null);
        boolean del = c.has('d');
        byte[] val;
        if (value != null) {
            val = value.getBytes(StandardCharsets.UTF_8);
        } else if (!del) {
            val = readUpTo(c, Proto.MAX_ATTR_VALUE_LEN);
        } else {
            val = new byte[0];
        }
        if (val.length > Proto.MAX_ATTR_VALUE_LEN) throw DogExit.failure("The value is too long (at most " + Proto.MAX_ATTR_VALUE_LEN + " bytes)");
        VdiAttr a = attr(c, name, key);
        a.value = val;
        a.valueLen = val.length;
        int flags = del ? SdFlags.CMD_DEL : SdFlags.CMD_CREAT | (c.has('x') ? SdFlags.CMD_EXCL : 0);
        try {
            c.client().getVdiAttr(a, flags);
        } catch (SheepdogException e) {
            switch (e.result()) {
                case SdResult.VDI_EXIST -> throw new DogExit(ExitCodes.EXISTS, "The attribute '" + key + "' already exists");
                case SdResult.NO_OBJ -> throw new DogExit(ExitCodes.MISSING, "Attribute '" + key + "' not found");
                case SdResult.NO_VDI -> throw new DogExit(ExitCodes.MISSING, "VDI not found");
                default -> throw DogExit.failure("Failed to set attribute: " + e.getMessage());
            }
        }
        return ExitCodes.SUCCESS;
    }

    /** {@code vdi getattr NAME KEY}: writes the value to stdout as is. */
    static int getattr(Ctx c) throws IOException {
        String name = c.arg(0), key = c.arg(1);
        if (key == null) throw DogExit.usage(null);
        VdiAttr a = attr(c, name, key);
        SheepClient.AttrId id;
        try {
            id = c.client().getVdiAttr(a, 0);
        } catch (SheepdogException e) {
            switch (e.result()) {
                case SdResult.NO_OBJ -> throw new DogExit(ExitCodes.MISSING, "Attribute '" + key + "' not found");
                case SdResult.NO_VDI -> throw new DogExit(ExitCodes.MISSING, "VDI not found");
                default -> throw DogExit.failure("Failed to find attribute " + key + ": " + e.getMessage());
            }
        }
        byte[] raw;
        try {
            raw = c.client().readObj(id.oid(), 0, VdiAttr.SIZE);
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to read attribute oid: " + e.getMessage());
        }
        VdiAttr got = VdiAttr.decode(ByteBuffer.wrap(raw));
        c.io.rawOut.write(got.value, 0, got.value.length);
        return ExitCodes.SUCCESS;
    }

    private static VdiAttr attr(Ctx c, String name, String key) {
        Vdis.Snap s = Vdis.snapOption(c);
        if (key.getBytes(StandardCharsets.UTF_8).length >= Proto.MAX_ATTR_KEY_LEN) throw DogExit.usage("The key is too long");
        VdiAttr a = new VdiAttr();
        a.name = name;
        a.tag = s.tag();
        a.snapId = s.id();
        a.key = key;
        return a;
    }

    private static byte[] readUpTo(Ctx c, int max) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int n;
        while (b.size() <= max && (n = c.io.in.read(buf)) > 0) b.write(buf, 0, n);
        return b.toByteArray();
    }

    // ------------------------------------------------------------------ locks and redundancy

    /** {@code vdi lock {list|unlock NAME}}. */
    static int lock(Ctx c) throws IOException {
        String what = c.arg(0);
        if ("list".equals(what)) {
            List<VdiState> states = c.client().getVdiCopies();
            Map<Integer, Inode> inodes = new HashMap<>();
            for (Inode n : VdiEnumerator.list(c.client(), false, null)) inodes.put(n.vdiId, n);
            c.out.print("  Name         Id  VDI id  Tag            Owner node(s)\n");
            for (VdiState st : states) {
                if (st.lockState() != Proto.LOCK_STATE_LOCKED && st.lockState() != Proto.LOCK_STATE_SHARED) continue;
                Inode n = inodes.get(st.vid());
                if (n == null) continue;
                StringBuilder row = new StringBuilder();
                row.append(n.isSnapshot() ? 's' : ' ').append(' ').append(Fmt.left(n.name, 8)).append("  ")
                        .append(Fmt.right(Integer.toUnsignedString(n.isSnapshot() ? n.snapId : 0), 5)).append("  ")
                        .append(Fmt.right(Fmt.hex(n.vdiId), 6)).append("  ").append(Fmt.left(n.tag, 13)).append(' ');
                if (st.lockState() == Proto.LOCK_STATE_LOCKED) {
                    row.append(Addr.nodeString(st.lockOwner()));
                } else {
                    for (int i = 0; i < st.participants().size(); i++) {
                        int ps = st.participantStates()[i];
                        row.append(i > 0 ? " " : "").append(Addr.nodeString(st.participants().get(i)))
                                .append(ps == 1 ? "(modified)" : ps == 2 ? "(shared)" : ps == 3 ? "(invalidated)" : "");
                    }
                }
                c.out.print(row.append('\n'));
            }
            return ExitCodes.SUCCESS;
        }
        if ("unlock".equals(what)) {
            String name = c.arg(1);
            if (name == null) throw DogExit.usage(null);
            Vdis.Snap s = Vdis.snapOption(c);
            int vid = Vdis.lookup(c, name, s);
            VdiState found = null;
            for (VdiState st : c.client().getVdiCopies()) if (st.vid() == vid) found = st;
            if (found == null || (found.lockState() != Proto.LOCK_STATE_LOCKED && found.lockState() != Proto.LOCK_STATE_SHARED)) {
                throw DogExit.failure("VDI " + name + " is not locked");
            }
            try {
                c.client().releaseVdi(vid, found.lockState() == Proto.LOCK_STATE_SHARED ? Proto.LOCK_TYPE_SHARED : Proto.LOCK_TYPE_NORMAL);
            } catch (SheepdogException e) {
                throw DogExit.failure("Failed to unlock VDI " + name + ": " + e.getMessage());
            }
            return ExitCodes.SUCCESS;
        }
        CommandTable.printUsage(c.out, c.sub);
        return ExitCodes.FAILURE;
    }

    /** {@code vdi alter-copy -c N NAME}. */
    static int alterCopy(Ctx c) throws IOException {
        String name = c.arg(0);
        Redundancy red;
        if (c.has('c')) {
            red = Redundancy.parse(c.opt('c'));
            if (red.erasureCoded()) throw DogExit.usage("Changing redundancy level of erasure coded vdi is not supported yet.");
        } else {
            c.out.print("The vdi's redundancy level is not specified, use 3 as default.\n");
            red = new Redundancy(Proto.DEFAULT_COPIES, 0);
        }
        if (red.copies() > c.nodes.size() && !c.has('f')) {
            c.confirm("Number of copies (" + red.copies() + ") is larger than number of nodes (" + c.nodes.size()
                    + ").\nAre you sure you want to continue? [yes/no]: ");
        }
        int vid = Vdis.lookup(c, name, Vdis.Snap.WORKING);
        Inode n = Vdis.read(c, vid, false);
        if (n.copyPolicy != 0) throw DogExit.failure(name + "'s copy policy is erasure code, changing it is not supported yet.");
        if (n.nrCopies == red.copies()) {
            throw DogExit.failure(name + "'s redundancy level is already set to " + n.nrCopies + ", nothing changed.");
        }
        boolean hasChildren = false;
        for (Inode o : VdiEnumerator.list(c.client(), false, null)) if (o.parentVdiId == vid) hasChildren = true;
        if (n.parentVdiId != 0 || hasChildren) {
            throw DogExit.failure("Only standalone vdi supports changing redundancy level.\nPlease clone " + name
                    + " with -n (--no-share) option first.");
        }
        if (!c.has('f')) {
            c.confirm(Prompts.sheep2("Caution! Changing VDI's redundancy level will affect", "the VDI itself only and trigger recovery."));
        }
        try {
            c.client().writeObj(Oids.inodeOid(vid), 554, new byte[] {(byte) red.copies()}); // nr_copies in the header
            c.client().alterVdiCopy(vid, red.copies(), n.blockSizeShift);
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to change " + name + "'s redundancy level: " + e.getMessage());
        }
        c.err.println(name + "'s redundancy level is set to " + red.copies() + ", the old one was " + n.nrCopies + ".");
        return ExitCodes.SUCCESS;
    }
}
