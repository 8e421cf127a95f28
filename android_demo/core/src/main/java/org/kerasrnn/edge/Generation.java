package org.kerasrnn.edge;

import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * The generate loop of export/SPEC.md as an iterator of text pieces, so that a caller can stream
 * the text and stop between any two tokens simply by not asking for the next one.
 *
 * <p>The constructor resets the model to its start state and feeds its start token, then the prime
 * (the slow part for a long prime); each {@link #next()} feeds the previous token, then chooses and
 * decodes one more. The last token is never fed, as in the Python sampler, so both do the same
 * model calls. With a delimiter ({@code until}), it stops after the token whose text completes it:
 * stream i of a batch (export/SPEC.md, "Many samples") is this with seed
 * {@link SplitMix64#streamSeed}(seed, i). With stop strings (export/SPEC.md, "Stop strings") it ends
 * at the first of them, and each piece is the text that may be written then: never the stop string.
 */
public final class Generation implements Iterator<String> {
    private final StepModel model;
    private final SamplingParams params;
    private final SplitMix64 rng;
    private final TokenDecoder decoder;
    private final int length;
    private final String until;
    private final StopText stopText;
    private final StringBuilder text = new StringBuilder();
    private float[] logits;
    private int emitted;
    private int lastToken = -1;

    /**
     * Resets {@code model}, feeds {@link StepModel#startToken()} and then {@code prime}; bad
     * arguments (a prime outside {@code vocab}, a negative length, a start token that is not a
     * token id of {@code vocab}) throw {@link IllegalArgumentException} before the model is reset.
     */
    public Generation(StepModel model, Vocab vocab, String prime, int length, SamplingParams params, long seed) {
        this(model, vocab, prime, length, params, seed, "");
    }

    /** As above, stopping after the text ends with {@code until} ("" never stops). */
    public Generation(StepModel model, Vocab vocab, String prime, int length, SamplingParams params, long seed,
                      String until) {
        this(model, vocab, prime, length, params, seed, until, Collections.<String>emptyList());
    }

    /** As above, also ending before the first of the {@code stop} strings (none empty). */
    public Generation(StepModel model, Vocab vocab, String prime, int length, SamplingParams params, long seed,
                      String until, List<String> stop) {
        if (length < 0) {
            throw new IllegalArgumentException("length must be >= 0 (got " + length + ")");
        }
        int[] primeIds = vocab.encode(prime);
        int startToken = model.startToken();
        if (startToken < 0 || startToken >= vocab.size()) {
            throw new IllegalArgumentException("the model's start token " + startToken + " is not a token id of the "
                    + vocab.size() + "-token vocabulary");
        }
        this.model = model;
        this.params = params;
        this.length = length;
        this.until = until;
        this.stopText = stop.isEmpty() ? null : new StopText(stop);
        this.rng = new SplitMix64(seed);
        this.decoder = vocab.newDecoder();
        model.reset();
        // The start token is always fed, so an empty prime starts from the logits after it.
        logits = model.feed(startToken);
        for (int id : primeIds) {
            logits = model.feed(id);
        }
    }

    @Override
    public boolean hasNext() {
        return emitted < length && (until.isEmpty() || !BatchGeneration.endsWith(text, until))
                && (stopText == null || !stopText.stopped());
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
        String piece = decoder.decode(lastToken);
        if (stopText != null) {
            piece = stopText.add(piece);
            if (!stopText.stopped() && emitted == length) {
                piece += stopText.rest();
            }
        }
        if (!until.isEmpty()) {
            text.append(piece);
        }
        return piece;
    }
}
