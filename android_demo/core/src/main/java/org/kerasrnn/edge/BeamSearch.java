package org.kerasrnn.edge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;

/**
 * Beam search (export/SPEC.md, "Beam search"): the likeliest continuation the model gives, found by
 * keeping the {@code width} likeliest sequences at each step, each a row of a {@link BatchStepModel}
 * of at least {@code width} rows, reordered by {@link BatchStepModel#select} as beams continue their
 * parents. Deterministic: no random number is drawn.
 */
public final class BeamSearch {
    private BeamSearch() {
    }

    /** One result sequence: its ids, its text (cut before a stop string), log-probability and score. */
    public static final class Beam {
        public final int[] ids;
        public final String text;
        public final double logProb;
        public final double score;
        public final boolean stopped;

        Beam(int[] ids, String text, double logProb, double score, boolean stopped) {
            this.ids = ids;
            this.text = text;
            this.logProb = logProb;
            this.score = score;
            this.stopped = stopped;
        }
    }

    private static final class Seq {
        final int[] ids;
        final double logProb;
        final int parent;

        Seq(int[] ids, double logProb, int parent) {
            this.ids = ids;
            this.logProb = logProb;
            this.parent = parent;
        }
    }

    /** log softmax of float32 logits in double, the sum in ascending id order. */
    static double[] logProbs(float[] logits) {
        double m = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            m = Math.max(m, v);
        }
        double sum = 0;
        for (float v : logits) {
            sum += Math.exp(v - m);
        }
        double log = Math.log(sum);
        double[] out = new double[logits.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (logits[i] - m) - log;
        }
        return out;
    }

    /** The {@code width} best sequences of at most {@code length} tokens after {@code prime}, best first. */
    public static List<Beam> search(BatchStepModel model, Vocab vocab, String prime, int length, int width,
                                    double lengthPenalty, List<String> stop) {
        if (width < 1) {
            throw new IllegalArgumentException("the beam width must be >= 1 (got " + width + ")");
        }
        if (!(lengthPenalty >= 0)) {
            throw new IllegalArgumentException("the length penalty must be >= 0 (got " + lengthPenalty + ")");
        }
        if (length < 0) {
            throw new IllegalArgumentException("length must be >= 0 (got " + length + ")");
        }
        new StopText(stop);  // checks the stop strings
        if (model.batch() < width) {
            throw new IllegalArgumentException("a beam of " + width + " needs a batch model of at least " + width
                    + " rows (this one has " + model.batch() + ")");
        }
        int[] primeIds = vocab.encode(prime);
        int rows = model.batch();
        int[] tokens = new int[rows];
        float[][] logits = BatchGeneration.readPrime(model, primeIds);
        List<Seq> live = new ArrayList<Seq>();
        live.add(new Seq(new int[0], 0.0, 0));
        List<Seq> finished = new ArrayList<Seq>();
        for (int n = 0; n < length; n++) {
            final int beams = live.size();
            int vocabSize = logits[0].length;
            final double[] scores = new double[beams * vocabSize];  // index token * beams + parent
            for (int b = 0; b < beams; b++) {
                double[] lp = logProbs(logits[b]);
                for (int t = 0; t < vocabSize; t++) {
                    scores[t * beams + b] = live.get(b).logProb + lp[t];
                }
            }
            Integer[] order = new Integer[scores.length];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            Arrays.sort(order, new Comparator<Integer>() {  // stable: ties to the lower token, then parent
                @Override
                public int compare(Integer a, Integer b) {
                    return scores[a] > scores[b] ? -1 : scores[a] < scores[b] ? 1 : 0;
                }
            });
            List<Seq> kept = new ArrayList<Seq>();
            for (int k = 0; k < Math.min(width, order.length); k++) {
                int token = order[k] / beams;
                int parent = order[k] % beams;
                int[] ids = Arrays.copyOf(live.get(parent).ids, live.get(parent).ids.length + 1);
                ids[ids.length - 1] = token;
                Seq seq = new Seq(ids, scores[order[k]], parent);
                if (!stop.isEmpty() && StopText.index(text(vocab, ids), stop, 0) >= 0) {
                    finished.add(seq);
                } else {
                    kept.add(seq);
                }
            }
            live = kept;
            if (kept.isEmpty() || n + 1 == length) {
                break;
            }
            int[] parents = new int[rows];
            for (int r = 0; r < rows; r++) {
                Seq seq = kept.get(r < kept.size() ? r : 0);  // spare rows copy the first
                parents[r] = seq.parent;
                tokens[r] = seq.ids[seq.ids.length - 1];
            }
            model.select(parents);
            logits = model.feed(tokens);
        }
        List<Beam> result = new ArrayList<Beam>();
        for (Seq seq : finished) {
            result.add(beam(vocab, seq, lengthPenalty, stop, true));
        }
        for (Seq seq : live) {
            result.add(beam(vocab, seq, lengthPenalty, stop, false));
        }
        Collections.sort(result, new Comparator<Beam>() {  // stable: ties keep the order above
            @Override
            public int compare(Beam a, Beam b) {
                return a.score > b.score ? -1 : a.score < b.score ? 1 : 0;
            }
        });
        return new ArrayList<Beam>(result.subList(0, Math.min(width, result.size())));
    }

    private static String text(Vocab vocab, int[] ids) {
        TokenDecoder decoder = vocab.newDecoder();
        StringBuilder text = new StringBuilder();
        for (int id : ids) {
            text.append(decoder.decode(id));
        }
        return text.toString();
    }

    private static Beam beam(Vocab vocab, Seq seq, double lengthPenalty, List<String> stop, boolean stopped) {
        String text = text(vocab, seq.ids);
        if (stopped) {
            text = text.substring(0, StopText.index(text, stop, 0));
        }
        double score = seq.logProb / Math.pow((5.0 + seq.ids.length) / 6.0, lengthPenalty);
        return new Beam(seq.ids, text, seq.logProb, score, stopped);
    }
}
