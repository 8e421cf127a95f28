package org.kerasrnn.edge;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Byte-mode decoding: UTF-8 arriving one byte at a time. An incomplete sequence is held back until
 * it completes; an invalid one becomes U+FFFD, byte for byte as Python's incremental "replace"
 * decoder does, so that the Java and Python samplers print the same text.
 */
public final class Utf8StreamDecoder implements TokenDecoder {
    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    /** Holds at most one incomplete sequence (up to 3 bytes) plus the new byte. */
    private final ByteBuffer pending = ByteBuffer.allocate(4);
    private final CharBuffer out = CharBuffer.allocate(8);

    @Override
    public String decode(int id) {
        if (id < 0 || id > 255) {
            throw new IllegalArgumentException("byte id out of range: " + id);
        }
        StringBuilder text = new StringBuilder();
        if (pending.position() == 2 && pending.get(0) == (byte) 0xED && (pending.get(1) & 0xE0) == 0xA0) {
            // ED A0..BF starts an encoded surrogate, which is invalid UTF-8. Both decoders hold it
            // back, but then Java writes one U+FFFD for the whole sequence where Python writes one
            // per byte; follow Python: one for ED, one for the continuation byte, then go on afresh.
            text.append("\uFFFD\uFFFD");
            pending.clear();
        }
        pending.put((byte) id);
        pending.flip();
        CoderResult result;
        do {
            out.clear();
            // endOfInput=false: a sequence cut short at the end stays in `pending` for the next byte.
            result = decoder.decode(pending, out, false);
            out.flip();
            text.append(out);
        } while (result.isOverflow());
        pending.compact();
        return text.toString();
    }
}
