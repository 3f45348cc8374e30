package io.sheepdog.sheep.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The process's aligned buffers: what they are, and the bounds that keep the direct memory they take bounded. */
class AlignedBuffersTest {

    @Test
    void buffersAreAlignedAndSizedAndThePooledOnesRunOutWhereTheOthersAreMade() {
        List<ByteBuffer> held = new ArrayList<>();
        try {
            ByteBuffer b = AlignedBuffers.take(8192);
            held.add(b);
            assertTrue(AlignedBuffers.writable(b), "direct, aligned, whole blocks");
            assertEquals(8192, b.remaining());
            // the NBD front end's form never makes a buffer past the pooled small ones: it falls back to an array
            int pooled = 0;
            ByteBuffer p;
            while ((p = AlignedBuffers.takePooled(4096)) != null) {
                held.add(p);
                assertTrue(++pooled <= 16, "at most the pooled small buffers");
            }
            assertNull(AlignedBuffers.takePooled(4096));
            // while take() makes one of the payload's size (the I/O port's: its payload is not read yet)
            ByteBuffer made = AlignedBuffers.take(4096);
            assertNotNull(made);
            assertTrue(made.capacity() < AlignedBuffers.SMALL, "made for the payload, not a pooled one");
            held.add(made);
            // large ones are bounded for both forms
            int large = 0;
            while ((p = AlignedBuffers.take(1 << 20)) != null) {
                held.add(p);
                assertTrue(++large <= 4, "at most four large buffers");
            }
            assertNull(AlignedBuffers.takePooled(AlignedBuffers.LARGE));
        } finally {
            for (ByteBuffer x : held) AlignedBuffers.release(x);
        }
        // given back: a pooled one is there again
        ByteBuffer again = AlignedBuffers.takePooled(4096);
        assertNotNull(again);
        AlignedBuffers.release(again);
    }
}
