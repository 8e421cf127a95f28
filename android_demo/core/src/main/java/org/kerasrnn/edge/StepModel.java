package org.kerasrnn.edge;

/**
 * A recurrent language model run one token at a time, holding its own state between calls.
 * The app implements it with LiteRT; tests implement it with fixed tables.
 */
public interface StepModel {
    /** Sets every state tensor to zeros. */
    void reset();

    /** Feeds one token id and returns the V logits for the next token (a fresh array the caller may keep). */
    float[] feed(int token);
}
