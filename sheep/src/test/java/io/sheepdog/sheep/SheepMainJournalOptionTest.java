package io.sheepdog.sheep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sheepdog.sheep.store.FileObjectStore;
import org.junit.jupiter.api.Test;

/** {@code sheep --journal} / {@code -j}: sizes as ours and as the original's {@code size=} form, off, and refusals. */
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
}
