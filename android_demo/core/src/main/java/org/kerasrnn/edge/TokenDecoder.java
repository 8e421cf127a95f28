package org.kerasrnn.edge;

/** Turns a stream of generated ids into text, one id at a time. */
public interface TokenDecoder {
    /** The text that {@code id} completes; may be empty (byte mode, inside a multi-byte character). */
    String decode(int id);
}
