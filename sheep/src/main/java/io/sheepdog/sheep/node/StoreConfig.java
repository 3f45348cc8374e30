package io.sheepdog.sheep.node;

import io.sheepdog.proto.Proto;
import io.sheepdog.proto.Strings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * The 40-byte {@code config} file of a store directory (docs/daemon.md §3.1), rewritten atomically through
 * {@code config.tmp}.
 */
public final class StoreConfig {
    public static final int SIZE = 40;

    public long ctime;
    public int flags;
    public int copies;
    public String defaultStore = "";
    public boolean shutdown;
    public int copyPolicy;
    public int blockSizeShift;
    public int version = Proto.FORMAT_VERSION;
    public long space;

    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, ctime);
        b.putShort(8, (short) flags);
        b.put(10, (byte) copies);
        Strings.write(b, 11, 16, defaultStore);
        b.put(27, (byte) (shutdown ? 1 : 0));
        b.put(28, (byte) copyPolicy);
        b.put(29, (byte) blockSizeShift);
        b.putShort(30, (short) version);
        b.putLong(32, space);
        return b.array();
    }

    public static StoreConfig decode(byte[] raw) {
        if (raw.length < SIZE) throw new IllegalArgumentException("config file is " + raw.length + " bytes, expected 40");
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        StoreConfig c = new StoreConfig();
        c.ctime = b.getLong(0);
        c.flags = b.getShort(8) & 0xffff;
        c.copies = b.get(10) & 0xff;
        c.defaultStore = Strings.read(b, 11, 16);
        c.shutdown = b.get(27) != 0;
        c.copyPolicy = b.get(28) & 0xff;
        c.blockSizeShift = b.get(29) & 0xff;
        c.version = b.getShort(30) & 0xffff;
        c.space = b.getLong(32);
        return c;
    }

    public static StoreConfig load(Path file) throws IOException {
        if (!Files.exists(file)) return null;
        return decode(Files.readAllBytes(file));
    }

    public void save(Path file) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(encode()));
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
