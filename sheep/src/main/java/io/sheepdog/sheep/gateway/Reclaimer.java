package io.sheepdog.sheep.gateway;

import io.sheepdog.proto.Inode;
import io.sheepdog.proto.Oids;
import io.sheepdog.sheep.ops.SdError;
import io.sheepdog.sheep.vdi.VdiRegistry;
import io.sheepdog.sheep.vdi.VdiState;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import io.sheepdog.sheep.log.RateLimitedLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Frees data objects nobody reads any more. An inode entry that stops naming object (V, i) drops a reference; the
 * object is removed only when no VDI of V's family (V's ancestors and every snapshot and clone descended from them)
 * still names it at index i. Sharing only ever happens inside a family, through copy-on-write table copies, so the
 * family is the whole set of possible readers.
 */
final class Reclaimer {
    private static final Logger LOG = LoggerFactory.getLogger(Reclaimer.class);
    private static final RateLimitedLog WARN = new RateLimitedLog(LOG);
    private final Gateway gateway;
    private final VdiRegistry vdis;

    Reclaimer(Gateway gateway, VdiRegistry vdis) {
        this.gateway = gateway;
        this.vdis = vdis;
    }

    void release(long dataOid) {
        int owner = Oids.vid(dataOid);
        long idx = Oids.index(dataOid);
        // an entry naming a VDI that never existed (a client wrote garbage into the table) frees nothing
        if (vdis.state(owner) == null) return;
        try {
            for (int vid : family(owner)) {
                byte[] e = gateway.read(Oids.inodeOid(vid), Inode.dataVdiIdOffset(idx), 4);
                if (ByteBuffer.wrap(e).order(ByteOrder.LITTLE_ENDIAN).getInt() == owner) return; // still read by vid
            }
            gateway.remove(dataOid, 0);
        } catch (SdError e) {
            // keeping an object too long costs space; removing one too early would lose data
            WARN.warn("reclaim", "could not reclaim {}: {}", Oids.fileName(dataOid), e.getMessage());
        }
    }

    /** Every VID connected to {@code vid} through parent links. */
    private Set<Integer> family(int vid) {
        List<VdiState> all = vdis.all();
        Map<Integer, Integer> parent = new HashMap<>();
        for (VdiState s : all) parent.put(s.vid, s.parentVid);
        int root = vid;
        Set<Integer> seen = new HashSet<>();
        while (parent.getOrDefault(root, 0) != 0 && seen.add(root)) root = parent.get(root);
        Set<Integer> fam = new HashSet<>();
        fam.add(root);
        boolean grew = true;
        while (grew) {
            grew = false;
            for (VdiState s : all) {
                if (!fam.contains(s.vid) && s.parentVid != 0 && fam.contains(s.parentVid)) {
                    fam.add(s.vid);
                    grew = true;
                }
            }
        }
        fam.add(vid);
        return fam;
    }
}
