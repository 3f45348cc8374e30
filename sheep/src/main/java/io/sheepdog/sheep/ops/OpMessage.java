package io.sheepdog.sheep.ops;

import io.sheepdog.proto.Header48;
import io.sheepdog.proto.SdRequest;
import io.sheepdog.proto.SdResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A cluster operation as broadcast through the cluster driver: the origin's request id, the main-phase request
 * (header and data) and the response the work phase produced. Only Java sheep read this format.
 */
public record OpMessage(long originId, SdRequest req, byte[] reqData, SdResponse rsp, byte[] rspData) {
    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(8 + 2 * Header48.SIZE + 8 + reqData.length + rspData.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(originId).put(req.bytes()).put(rsp.bytes());
        b.putInt(reqData.length).put(reqData).putInt(rspData.length).put(rspData);
        return b.array();
    }

    public static OpMessage decode(byte[] raw) {
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        long id = b.getLong();
        byte[] rq = new byte[Header48.SIZE];
        b.get(rq);
        byte[] rs = new byte[Header48.SIZE];
        b.get(rs);
        byte[] rqd = new byte[b.getInt()];
        b.get(rqd);
        byte[] rsd = new byte[b.getInt()];
        b.get(rsd);
        return new OpMessage(id, new SdRequest(rq), rqd, new SdResponse(rs), rsd);
    }
}
