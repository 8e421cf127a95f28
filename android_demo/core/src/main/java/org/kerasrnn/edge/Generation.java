package org.kerasrnn.edge;

import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * The generate loop of export/SPEC.md as an iterator of text pieces, so that a caller can stream
 * the text and stop between any two tokens simply by not asking for the next one.
 *
 * <p>The constructor resets the model and feeds the prime (the slow part for a long prime);
 * each {@link #next()} feeds the previous token, then chooses and decodes one more. The last
 * token is never fed, as in the Python sampler, so both do the same model calls.
 */
public final class Generation implements Iterator<String> {
    private final StepModel model;
    private final SamplingParams params;
    private final SplitMix64 rng;
    private final TokenDecoder decoder;
    private final int length;
    private float[] logits;
    private int emitted;
    private int lastToken = -1;

    public Generation(StepModel model, Vocab vocab, String prime, int length, SamplingParams params, long seed) {
        if (length < 0) {
            throw new IllegalArgumentException("length must be >= 0 (got " + length + ")");
        }
        int[] primeIds = vocab.encode(prime);
        this.model = model;
        this.params = params;
        this.length = length;
        this.rng = new SplitMix64(seed);
        this.decoder = vocab.newDecoder();
        model.reset();
        // An empty prime starts from uniform logits: the first token is a uniform draw.
        logits = new float[vocab.size()];
        for (int id : primeIds) {
            logits = model.feed(id);
        }
    }

    @Override
    public boolean hasNext() {
        return emitted < length;
    }

    /** The text of the next token: one character, or in byte mode possibly "" or a completed character. */
    @Override
    public String next() {
        if (!hasNext()) {
            throw new NoSuchElementException("all " + length + " tokens have been generated");
        }
        if (lastToken >= 0) {
            logits = model.feed(lastToken);
        }
        lastToken = Sampler.choose(logits, rng, params);
        emitted++;
        return decoder.decode(lastToken);
    }
}
