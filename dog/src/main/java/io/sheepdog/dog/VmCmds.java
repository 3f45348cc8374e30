package io.sheepdog.dog;

import io.sheepdog.client.SheepClient;
import io.sheepdog.client.SheepdogException;
import io.sheepdog.client.VdiEnumerator;
import io.sheepdog.proto.Inode;
import io.sheepdog.proto.SdNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code dog vm list}: the VDIs and which client holds each (revived from the 2009-2010 {@code collie vm list},
 * docs/dog.md §9). The lock holders come from GET_VM_LIST (0x83).
 */
final class VmCmds {
    private VmCmds() {}

    static int list(Ctx c) throws IOException {
        List<SheepClient.VmEntry> vms;
        try {
            vms = new ArrayList<>(c.client().getVmList());
        } catch (SheepdogException e) {
            throw DogExit.failure("Failed to get the list of VMs: " + e.getMessage());
        }
        // the lock holders are the cluster's; clients waiting to take a lock over are each node's own: ask them all
        for (SdNode n : c.nodes) {
            try {
                for (SheepClient.VmEntry e : c.client(n.nid()).getVmList()) if (e.waiting()) vms.add(e);
            } catch (IOException e) {
                // a node that does not answer shows no waiters
            }
        }
        Map<String, String> running = new HashMap<>();
        Map<String, Set<String>> waiting = new HashMap<>();
        for (SheepClient.VmEntry e : vms) {
            String who = Addr.host(e.hostAddr()) + ":" + e.hostPort();
            if (e.waiting()) waiting.computeIfAbsent(e.name(), k -> new TreeSet<>()).add(who);
            else running.putIfAbsent(e.name(), who);
        }
        List<Inode> all = VdiEnumerator.list(c.client(), true, vid -> c.err.println("Failed to read inode header"));
        if (!c.raw) {
            c.out.print("Name            |Vdi size |Allocated| Shared  | Status\n");
            c.out.print("----------------+---------+---------+---------+------------\n");
        }
        for (Inode n : all) {
            if (n.isSnapshot()) continue;
            long[] u = Vdis.usage(n);
            long alloc = u[0] * n.objectSize(), shared = u[1] * n.objectSize();
            String where = running.get(n.name);
            Set<String> waiters = waiting.getOrDefault(n.name, Set.of());
            if (c.raw) {
                c.out.print(Fmt.escapeRaw(n.name) + " " + n.vdiSize + " " + alloc + " " + shared + " "
                        + (where == null ? "-" : where) + (waiters.isEmpty() ? "" : " " + String.join(",", waiters)) + "\n");
            } else {
                c.out.print(Fmt.left(n.name, 16) + "|" + Fmt.right(Fmt.human(n.vdiSize), 9) + "|" + Fmt.right(Fmt.human(alloc), 9)
                        + "|" + Fmt.right(Fmt.human(shared), 9) + "|" + (where == null ? " not running" : " running on " + where)
                        + (waiters.isEmpty() ? "" : ", waiting: " + String.join(", ", waiters)) + "\n");
            }
        }
        return ExitCodes.SUCCESS;
    }
}
