package org.kerasrnn.edge;

import java.util.Arrays;
import java.util.Comparator;

/**
 * choose() from export/SPEC.md, step by step, in double arithmetic with every sum taken left to
 * right, so that it returns the very ids the Python reference returns for the same logits and seed.
 */
public final class Sampler {
    private Sampler() {
    }

    /** One token id from {@code logits} (the V values the step model returned), drawing at most one number. */
    public static int choose(float[] logits, SplitMix64 rng, SamplingParams params) {
        int size = logits.length;
        if (params.argmax) {
            return argmax(logits);
        }
        double[] x = new double[size];
        for (int i = 0; i < size; i++) {
            x[i] = (double) logits[i] / params.temperature;
        }
        if (params.topK > 0 && params.topK < size) {
            Integer[] order = descendingOrder(x);
            for (int rank = params.topK; rank < size; rank++) {
                x[order[rank]] = Double.NEGATIVE_INFINITY;
            }
        }
        double max = Double.NEGATIVE_INFINITY;
        for (double v : x) {
            max = Math.max(max, v);
        }
        double[] w = new double[size];
        for (int i = 0; i < size; i++) {
            // StrictMath: the same bits on every JVM and Android runtime (Math.exp may differ by an ulp).
            w[i] = StrictMath.exp(x[i] - max);
        }
        if (params.topP < 1.0) {
            keepNucleus(w, params.topP);
        }
        double[] cumulative = new double[size];
        double sum = 0.0;
        for (int i = 0; i < size; i++) {
            sum += w[i];
            cumulative[i] = sum;
        }
        double target = rng.nextDouble() * cumulative[size - 1];
        for (int i = 0; i < size; i++) {
            if (target < cumulative[i]) {
                return i;
            }
        }
        for (int i = size - 1; i > 0; i--) {
            if (w[i] > 0) {
                return i;
            }
        }
        return 0;
    }

    /** The smallest id with the largest logit. */
    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Keeps the smallest set of largest weights whose sum reaches {@code topP} of the total; zeroes the rest. */
    private static void keepNucleus(double[] w, double topP) {
        Integer[] order = descendingOrder(w);
        double[] cumulative = new double[w.length];
        double sum = 0.0;
        for (int rank = 0; rank < w.length; rank++) {
            sum += w[order[rank]];
            cumulative[rank] = sum;
        }
        double threshold = topP * cumulative[w.length - 1];
        int kept = 0;
        while (kept < w.length && !(cumulative[kept] >= threshold)) {
            kept++;
        }
        for (int rank = kept + 1; rank < w.length; rank++) {
            w[order[rank]] = 0.0;
        }
    }

    /** Ids sorted by value, largest first; ties keep the smaller id first (the sort is stable). */
    private static Integer[] descendingOrder(final double[] values) {
        Integer[] ids = new Integer[values.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = i;
        }
        Arrays.sort(ids, new Comparator<Integer>() {
            @Override
            public int compare(Integer a, Integer b) {
                double va = values[a];
                double vb = values[b];
                // == makes 0.0 and -0.0 a tie, as in numpy; otherwise Double.compare's total order.
                return va == vb ? 0 : Double.compare(vb, va);
            }
        });
        return ids;
    }
}
