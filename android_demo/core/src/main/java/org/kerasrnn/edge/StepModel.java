package org.kerasrnn.edge;

/**
 * A recurrent language model run one token at a time, holding its own state between calls.
 * The app implements it with LiteRT; tests implement it with fixed tables.
 */
public interface StepModel {
    /**
     * Sets every state tensor to the model's start state (a bundle's {@code "start.state"}; not
     * zeros since sampling contract 2). A text then begins by feeding {@link #startToken()}.
     */
    void reset();

    /**
     * The token id fed first after every {@link #reset()}, before the prime (a bundle's
     * {@code "start.token"}): the logits after it are the first logits when the prime is empty.
     */
    int startToken();

    /** Feeds one token id and returns the V logits for the next token (a fresh array the caller may keep). */
    float[] feed(int token);
}
