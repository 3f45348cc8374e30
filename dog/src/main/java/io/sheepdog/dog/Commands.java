package io.sheepdog.dog;

import java.io.IOException;

/** Dispatch from {@code <command> <subcommand>} to the code that runs it. */
final class Commands {
    private Commands() {}

    static int run(Ctx c) throws IOException {
        String key = c.sub.family() + " " + c.sub.name();
        return switch (key) {
            case "node list" -> NodeCmds.list(c);
            case "node info" -> NodeCmds.info(c);
            case "node kill" -> NodeCmds.kill(c);
            case "node recovery" -> NodeCmds.recovery(c);
            case "node md" -> NodeCmds.md(c);
            case "node stat" -> NodeCmds.stat(c);
            case "node log" -> NodeCmds.log(c);
            case "node vnodes" -> NodeCmds.vnodes(c);
            case "node format" -> NodeCmds.format(c);
            case "cluster info" -> ClusterCmds.info(c);
            case "cluster format" -> ClusterCmds.format(c);
            case "cluster shutdown" -> ClusterCmds.shutdown(c);
            case "cluster recover" -> ClusterCmds.recover(c);
            case "cluster reweight" -> ClusterCmds.reweight(c);
            case "cluster check" -> ClusterCmds.check(c);
            case "cluster alter-copy" -> ClusterCmds.alterCopy(c);
            case "vdi create" -> VdiCmds.create(c);
            case "vdi list" -> VdiCmds.list(c);
            case "vdi delete" -> VdiCmds.delete(c);
            case "vdi snapshot" -> VdiCmds.snapshot(c);
            case "vdi clone" -> VdiCmds.cloneVdi(c);
            case "vdi rollback" -> VdiCmds.rollback(c);
            case "vdi resize" -> VdiCmds.resize(c);
            case "vdi tree" -> VdiCmds.tree(c);
            case "vdi graph" -> VdiCmds.graph(c);
            case "vdi object" -> VdiCmds.object(c);
            case "vdi track" -> VdiCmds.track(c);
            case "vdi setattr" -> VdiCmds.setattr(c);
            case "vdi getattr" -> VdiCmds.getattr(c);
            case "vdi lock" -> VdiCmds.lock(c);
            case "vdi alter-copy" -> VdiCmds.alterCopy(c);
            case "vdi read" -> VdiIo.read(c);
            case "vdi write" -> VdiIo.write(c);
            case "vdi check" -> VdiCheck.check(c);
            case "vdi backup" -> Backup.backup(c);
            case "vdi restore" -> Backup.restore(c);
            case "vm list" -> VmCmds.list(c);
            default -> {
                c.err.println("dog " + key + " is not supported by this version of dog");
                yield ExitCodes.FAILURE;
            }
        };
    }
}
