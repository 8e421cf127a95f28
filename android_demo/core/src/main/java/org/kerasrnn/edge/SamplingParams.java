package org.kerasrnn.edge;

/** How {@link Sampler#choose} turns logits into a token; validated like the Python sampler's check_params. */
public final class SamplingParams {
    public final double temperature;
    /** 0 keeps every token. */
    public final int topK;
    /** 1 keeps every token. */
    public final double topP;
    /** Greedy decoding: the most likely token, no random number drawn. */
    public final boolean argmax;

    public SamplingParams(double temperature, int topK, double topP, boolean argmax) {
        if (!(temperature > 0)) {
            throw new IllegalArgumentException("temperature must be > 0 (got " + temperature
                    + "); use argmax for greedy decoding");
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be >= 0 (got " + topK + "); 0 keeps every token");
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top-p must be in (0, 1] (got " + topP + "); 1 keeps every token");
        }
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
        this.argmax = argmax;
    }
}
