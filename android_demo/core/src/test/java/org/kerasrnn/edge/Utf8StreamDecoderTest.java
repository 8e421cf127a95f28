package org.kerasrnn.edge;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.nio.charset.StandardCharsets;
import org.junit.Test;

public class Utf8StreamDecoderTest {
    /** What the decoder returns for each byte of {@code bytes}, fed one at a time. */
    private static String[] piecesOf(int... bytes) {
        TokenDecoder decoder = new Utf8StreamDecoder();
        String[] pieces = new String[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            pieces[i] = decoder.decode(bytes[i]);
        }
        return pieces;
    }

    private static int[] utf8(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = bytes[i] & 0xFF;
        }
        return ids;
    }

    @Test
    public void splitMultiByteCharactersComeOutWhole() {
        assertArrayEquals(new String[] {"", "é", "", "", "€", "", "", "", "😀", "!"}, piecesOf(utf8("é€😀!")));
    }

    @Test
    public void anIncompleteSequenceEmitsNothing() {
        assertArrayEquals(new String[] {"a", "", "", ""}, piecesOf(0x61, 0xF0, 0x9F, 0x98));
    }

    @Test
    public void invalidBytesBecomeReplacementCharacters() {
        assertArrayEquals(new String[] {"\uFFFD", "\uFFFD", "A"}, piecesOf(0xFF, 0x80, 0x41));
        // A sequence cut short by a byte that cannot continue it: one U+FFFD, then that byte.
        assertArrayEquals(new String[] {"", "", "\uFFFDA"}, piecesOf(0xE2, 0x82, 0x41));
        assertArrayEquals(new String[] {"", "", "\uFFFD", "", "€"}, piecesOf(0xE2, 0x82, 0xE2, 0x82, 0xAC));
        // Overlong and surrogate encodings are invalid: one U+FFFD per byte, at the moments Python writes them.
        assertArrayEquals(new String[] {"\uFFFD", "\uFFFD"}, piecesOf(0xC0, 0xAF));
        assertArrayEquals(new String[] {"", "\uFFFD\uFFFD"}, piecesOf(0xE0, 0x80));
        assertArrayEquals(new String[] {"", "", "\uFFFD\uFFFD\uFFFD"}, piecesOf(0xED, 0xA0, 0x80));
        assertArrayEquals(new String[] {"", "", "\uFFFD\uFFFDA"}, piecesOf(0xED, 0xBF, 0x41));
        assertArrayEquals(new String[] {"", "", "\uFFFD\uFFFD", "", "€"}, piecesOf(0xED, 0xA0, 0xE2, 0x82, 0xAC));
    }

    @Test
    public void theDecoderKeepsWorkingAfterManyCharacters() {
        String text = "Grüße, 世界 😀\n";
        StringBuilder decoded = new StringBuilder();
        TokenDecoder decoder = new Utf8StreamDecoder();
        for (int round = 0; round < 1000; round++) {
            for (int b : utf8(text)) {
                decoded.append(decoder.decode(b));
            }
        }
        assertEquals(1000 * text.length(), decoded.length());
        assertEquals(text, decoded.substring(decoded.length() - text.length()));
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsIdsThatAreNotBytes() {
        new Utf8StreamDecoder().decode(256);
    }
}
