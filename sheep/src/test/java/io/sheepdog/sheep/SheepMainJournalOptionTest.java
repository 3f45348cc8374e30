package io.sheepdog.sheep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.store.FileObjectStore;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code sheep --journal} / {@code -j}: sizes as ours and as the original's {@code size=} form, off, and refusals; and
 * {@code -D}/{@code --directio}, the other option of how writes reach the disk.
 */
class SheepMainJournalOptionTest {

    @Test
    void sizesOffAndTheDefault() {
        assertEquals(32L << 20, SheepMain.journalBytes("32M"));
        assertEquals(32L << 20, SheepMain.journalBytes("size=32m"));
        assertEquals(4096L << 10, SheepMain.journalBytes("4096k"));
        assertEquals(1L << 30, SheepMain.journalBytes("1G"));
        assertEquals(2L << 20, SheepMain.journalBytes("2097152"));
        assertEquals(0, SheepMain.journalBytes("off"));
        assertEquals(FileObjectStore.DEFAULT_JOURNAL_BYTES, SheepMain.journalBytes(null));
    }

    @Test
    void whatIsNotASizeIsRefusedWithTheReason() {
        for (String bad : new String[] {"1M", "2G", "dir=/j,size=32M", "skip", "32X", "", "-5M", "99999999999M"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SheepMain.journalBytes(bad), bad);
            assertTrue(e.getMessage().startsWith("Invalid journal '" + bad + "'"), e.getMessage());
        }
    }

    /** {@code -D}/{@code --directio} as the original takes it (no value: the default here), {@code --no-directio}. */
    @Test
    void directioIsOnUnlessTurnedOff() {
        assertEquals(FileObjectStore.DIRECT_WRITES, parse("/tmp/s").directWrites());
        assertTrue(parse("-D", "/tmp/s").directWrites(), "the original's -D, before the store path");
        assertTrue(parse("--directio", "/tmp/s").directWrites());
        assertFalse(parse("--no-directio", "/tmp/s").directWrites());
        assertEquals("/tmp/s", parse("-D", "/tmp/s").storeDir().toString(), "-D takes no value");
    }

    private static SheepOptions parse(String... args) {
        SheepMain m = new SheepMain();
        new CommandLine(m).parseArgs(args);
        return m.parse();
    }
}
