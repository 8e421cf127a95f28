package org.kerasrnn.edge;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import org.junit.Test;

public class VocabTest {
    private final Vocab chars = Vocab.chars(Arrays.asList("\n", " ", "a", "b", "é", "😀"));

    @Test
    public void charIdsIndexCodePoints() {
        assertEquals(6, chars.size());
        assertArrayEquals(new int[] {2, 5, 1, 4, 0}, chars.encode("a😀 é\n"));
        TokenDecoder decoder = chars.newDecoder();
        assertEquals("😀", decoder.decode(5));
        assertEquals("b", decoder.decode(3));
    }

    @Test
    public void aPrimeOutsideTheVocabularyNamesTheCharacters() {
        try {
            chars.encode("abcxc\t");
            fail("expected an error");
        } catch (IllegalArgumentException e) {
            assertEquals("the prime has characters outside the vocabulary: '\\x09' 'c' 'x'; remove them, "
                    + "or train in byte mode (--tokens byte)", e.getMessage());
        }
    }

    @Test
    public void byteIdsAreUtf8() {
        Vocab bytes = Vocab.bytes();
        assertEquals(256, bytes.size());
        assertArrayEquals(new int[] {0x61, 0xC3, 0xA9}, bytes.encode("aé"));
    }

    @Test
    public void aGrownVocabularyIsUnsortedAndIdsFollowItsOrder() {
        // a fine-tuned run's list: the old run's sorted characters, then the new ones (export/SPEC.md)
        Vocab grown = Vocab.chars(Arrays.asList("\n", " ", "a", "b", "\u00df", "\u00e9", "\u2192", "!"));
        assertArrayEquals(new int[] {2, 6, 5, 7, 1, 4, 0}, grown.encode("a\u2192\u00e9! \u00df\n"));
        TokenDecoder decoder = grown.newDecoder();
        assertEquals("!", decoder.decode(7));
        assertEquals("\u2192", decoder.decode(6));
        assertEquals("a", decoder.decode(2));
    }

    @Test
    public void charsMustBeSingleCodePointsListedOnce() {
        for (String[] bad : new String[][] {{"a", "b", "a"}, {"a", "a"}, {"ab"}, {""}}) {
            try {
                Vocab.chars(Arrays.asList(bad));
                fail("accepted " + Arrays.toString(bad));
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("vocabulary"));
            }
        }
    }
}
