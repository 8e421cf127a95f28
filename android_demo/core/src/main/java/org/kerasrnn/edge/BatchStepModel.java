package org.kerasrnn.edge;

/**
 * A recurrent language model run for a fixed number of streams at once, one token per stream per
 * call (a bundle's batch model, export/SPEC.md "Batch models"); rows do not influence each other.
 */
public interface BatchStepModel {
    /** The number of streams (rows) every call runs. */
    int batch();

    /** Sets every row of every state tensor to the model's start state. */
    void reset();

    /** The token id fed first to every row after a {@link #reset()}, before the prime. */
    int startToken();

    /** Feeds {@code tokens[r]} to row r ({@link #batch()} ids); returns each row's V logits (fresh arrays). */
    float[][] feed(int[] tokens);

    /**
     * Row r takes the state row {@code rows[r]} held ({@link #batch()} indices): beam search continues
     * each beam from its parent's state.
     */
    void select(int[] rows);
}
