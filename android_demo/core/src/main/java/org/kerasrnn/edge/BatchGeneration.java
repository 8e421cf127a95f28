package org.kerasrnn.edge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Many samples at once (export/SPEC.md, "Many samples"): {@code seeds.length} streams through a
 * {@link BatchStepModel}, {@code batch()} at a time, the last group padded with rows whose text is
 * thrown away. Stream j is exactly {@link Generation} with seed {@code seeds[j]} and the same
 * delimiter: the same prime handling, choices and stop. Seeds for stream i of a user's seed s:
 * {@link SplitMix64#streamSeed}(s, i).
 */
public final class BatchGeneration {
    private BatchGeneration() {
    }

    /** The texts of the streams, in order; each ends with {@code until}, or has {@code length} tokens. */
    public static List<String> generate(BatchStepModel model, Vocab vocab, String prime, int length,
                                        SamplingParams params, long[] seeds, String until) {
        return generate(model, vocab, prime, length, params, seeds, until, Collections.<String>emptyList());
    }

    /** As above, each stream also ending before its first stop string (export/SPEC.md, "Stop strings"). */
    public static List<String> generate(BatchStepModel model, Vocab vocab, String prime, int length,
                                        SamplingParams params, long[] seeds, String until, List<String> stop) {
        new StopText(stop);  // checks the stop strings
        if (length < 0) {
            throw new IllegalArgumentException("length must be >= 0 (got " + length + ")");
        }
        int[] primeIds = vocab.encode(prime);
        List<String> texts = new ArrayList<String>();
        for (int first = 0; first < seeds.length; first += model.batch()) {
            long[] group = Arrays.copyOfRange(seeds, first, Math.min(seeds.length, first + model.batch()));
            texts.addAll(generateGroup(model, vocab, primeIds, length, params, group, until, stop));
        }
        return texts;
    }

    private static List<String> generateGroup(BatchStepModel model, Vocab vocab, int[] primeIds, int length,
                                              SamplingParams params, long[] seeds, String until,
                                              List<String> stop) {
        int rows = seeds.length;
        SplitMix64[] rngs = new SplitMix64[rows];
        TokenDecoder[] decoders = new TokenDecoder[rows];
        StringBuilder[] texts = new StringBuilder[rows];
        boolean[] running = new boolean[rows];
        int[] stopAt = new int[rows];  // where a stopped stream's text ends, before its stop string
        for (int j = 0; j < rows; j++) {
            rngs[j] = new SplitMix64(seeds[j]);
            decoders[j] = vocab.newDecoder();
            texts[j] = new StringBuilder();
            running[j] = true;
            stopAt[j] = -1;
        }
        int[] tokens = new int[model.batch()];
        float[][] logits = readPrime(model, primeIds);
        int left = rows;
        for (int n = 0; n < length && left > 0; n++) {
            if (n > 0) {
                logits = model.feed(tokens);  // a stopped row is fed its last token again
            }
            for (int j = 0; j < rows; j++) {
                if (running[j]) {
                    tokens[j] = Sampler.choose(logits[j], rngs[j], params);
                    int checked = texts[j].length();
                    texts[j].append(decoders[j].decode(tokens[j]));
                    stopAt[j] = stop.isEmpty() ? -1 : StopText.index(texts[j], stop, checked);
                    if (!until.isEmpty() && endsWith(texts[j], until) || stopAt[j] >= 0) {
                        running[j] = false;
                        left--;
                    }
                }
            }
        }
        List<String> out = new ArrayList<String>();
        for (int j = 0; j < rows; j++) {
            out.add(stopAt[j] >= 0 ? texts[j].substring(0, stopAt[j]) : texts[j].toString());
        }
        return out;
    }

    static boolean endsWith(StringBuilder text, String suffix) {
        int start = text.length() - suffix.length();
        return start >= 0 && text.indexOf(suffix, start) == start;
    }

    /** Resets every row to the start state and feeds each the start token, then the prime: the logits after it. */
    static float[][] readPrime(BatchStepModel model, int[] primeIds) {
        int[] tokens = new int[model.batch()];
        model.reset();
        Arrays.fill(tokens, model.startToken());
        float[][] logits = model.feed(tokens);
        for (int id : primeIds) {
            Arrays.fill(tokens, id);
            logits = model.feed(tokens);
        }
        return logits;
    }
}
