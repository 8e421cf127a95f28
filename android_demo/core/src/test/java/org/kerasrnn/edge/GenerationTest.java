package org.kerasrnn.edge;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.NoSuchElementException;
import org.junit.Test;

public class GenerationTest {
    /**
     * A step model whose n-th feed after reset returns row n of a fixed table (row 0: after the
     * start token); it records every reset and feed.
     */
    static final class TableModel implements StepModel {
        final List<String> calls = new ArrayList<String>();
        private final int startToken;
        private final float[][] rows;
        private int feeds;

        TableModel(int startToken, float[][] rows) {
            this.startToken = startToken;
            this.rows = rows;
        }

        TableModel(float[][] rows) {
            this(START, rows);
        }

        @Override
        public int startToken() {
            return startToken;
        }

        @Override
        public void reset() {
            calls.add("reset");
            feeds = 0;
        }

        @Override
        public float[] feed(int token) {
            calls.add("feed " + token);
            return rows[feeds++].clone();
        }
    }

    private static final Vocab ABCD = Vocab.chars(Arrays.asList("a", "b", "c", "d"));
    private static final SamplingParams GREEDY = new SamplingParams(1.0, 0, 1.0, true);
    /** The table models' start token ("d"): not 0, so that feeding 0 in its place shows. */
    private static final int START = 3;
    /** Greedy choices: row 0 -> c, row 1 -> d, row 2 -> a, row 3 -> b, row 4 -> c, row 5 -> d. */
    private static final float[][] ROWS = {{0, 1, 5, 2}, {0, 1, 2, 5}, {5, 1, 0, 2}, {0, 5, 1, 2}, {1, 0, 5, 2},
        {2, 1, 0, 5}};

    private static String all(Generation generation) {
        StringBuilder text = new StringBuilder();
        while (generation.hasNext()) {
            text.append(generation.next());
        }
        return text.toString();
    }

    @Test
    public void feedsTheStartTokenThenThePrimeThenEachChosenTokenButNotTheLast() {
        TableModel model = new TableModel(ROWS);
        Generation generation = new Generation(model, ABCD, "ab", 3, GREEDY, 0);
        assertEquals(Arrays.asList("reset", "feed 3", "feed 0", "feed 1"), model.calls);
        // The logits after the prime's last token are row 2 (a); then rows 3 (b) and 4 (c).
        assertEquals("abc", all(generation));
        assertEquals(Arrays.asList("reset", "feed 3", "feed 0", "feed 1", "feed 0", "feed 1"), model.calls);
    }

    @Test
    public void feedsTheModelsOwnStartToken() {
        TableModel model = new TableModel(1, ROWS);
        assertEquals("da", all(new Generation(model, ABCD, "c", 2, GREEDY, 0)));
        assertEquals(Arrays.asList("reset", "feed 1", "feed 2", "feed 3"), model.calls);
    }

    @Test
    public void anEmptyPrimeStartsFromTheLogitsAfterTheStartToken() {
        TableModel model = new TableModel(ROWS);
        // Row 0 (c), not uniform logits (whose greedy choice would be a).
        assertEquals("cd", all(new Generation(model, ABCD, "", 2, GREEDY, 0)));
        assertEquals(Arrays.asList("reset", "feed 3", "feed 2"), model.calls);
    }

    @Test
    public void everyGenerationResetsAndFeedsTheStartTokenAgain() {
        TableModel model = new TableModel(ROWS);
        assertEquals("c", all(new Generation(model, ABCD, "", 1, GREEDY, 0)));
        assertEquals("c", all(new Generation(model, ABCD, "", 1, GREEDY, 0)));
        assertEquals(Arrays.asList("reset", "feed 3", "reset", "feed 3"), model.calls);
    }

    @Test
    public void lengthZeroGeneratesNothing() {
        TableModel model = new TableModel(ROWS);
        Generation generation = new Generation(model, ABCD, "ab", 0, GREEDY, 0);
        assertFalse(generation.hasNext());
        try {
            generation.next();
            fail("generated past the length");
        } catch (NoSuchElementException expected) {
            assertEquals(Arrays.asList("reset", "feed 3", "feed 0", "feed 1"), model.calls);
        }
    }

    @Test
    public void drawsOneNumberPerTokenFromTheSeededGenerator() {
        SamplingParams params = new SamplingParams(0.7, 3, 0.95, false);
        long seed = Long.parseUnsignedLong("18446744073709551557");
        Generation generation = new Generation(new TableModel(ROWS), ABCD, "", 4, params, seed);
        SplitMix64 rng = new SplitMix64(seed);
        int[] expected = new int[4];
        int[] actual = new int[4];
        for (int n = 0; n < 4; n++) {
            // Row 0 is the logits after the start token (the prime is empty), row n + 1 after the n-th choice.
            expected[n] = Sampler.choose(ROWS[n], rng, params);
            actual[n] = "abcd".indexOf(generation.next());
        }
        assertArrayEquals(expected, actual);
    }

    @Test
    public void streamsBytesAsWholeCharacters() {
        float[][] rows = new float[4][256];
        rows[0]['?'] = 1;  // after the start token: the prime follows, so this row is never chosen from
        rows[1][0xC3] = 1;
        rows[2][0xA9] = 1;
        rows[3]['!'] = 1;
        Generation generation = new Generation(new TableModel(rows), Vocab.bytes(), "x", 3, GREEDY, 0);
        assertEquals("", generation.next());
        assertEquals("\u00e9", generation.next());
        assertEquals("!", generation.next());
        assertFalse(generation.hasNext());
    }

    @Test
    public void rejectsBadArgumentsBeforeTouchingTheModel() {
        TableModel model = new TableModel(ROWS);
        try {
            new Generation(model, ABCD, "abx", 5, GREEDY, 0);
            fail("accepted a prime outside the vocabulary");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("outside the vocabulary: 'x'"));
        }
        try {
            new Generation(model, ABCD, "ab", -1, GREEDY, 0);
            fail("accepted a negative length");
        } catch (IllegalArgumentException e) {
            assertEquals("length must be >= 0 (got -1)", e.getMessage());
        }
        for (int start : new int[] {-1, 4}) {
            TableModel badStart = new TableModel(start, ROWS);
            try {
                new Generation(badStart, ABCD, "ab", 5, GREEDY, 0);
                fail("accepted start token " + start);
            } catch (IllegalArgumentException e) {
                assertEquals("the model's start token " + start + " is not a token id of the 4-token vocabulary",
                        e.getMessage());
            }
            assertTrue(badStart.calls.isEmpty());
        }
        assertTrue(model.calls.isEmpty());
    }

    @Test
    public void validatesSamplingParameters() {
        String[] messages = new String[3];
        try {
            new SamplingParams(0, 0, 1.0, false);
        } catch (IllegalArgumentException e) {
            messages[0] = e.getMessage();
        }
        try {
            new SamplingParams(1, -1, 1.0, false);
        } catch (IllegalArgumentException e) {
            messages[1] = e.getMessage();
        }
        try {
            new SamplingParams(1, 0, 0.0, false);
        } catch (IllegalArgumentException e) {
            messages[2] = e.getMessage();
        }
        assertArrayEquals(new String[] {
            "temperature must be > 0 (got 0.0); use argmax for greedy decoding",
            "top-k must be >= 0 (got -1); 0 keeps every token",
            "top-p must be in (0, 1] (got 0.0); 1 keeps every token"}, messages);
    }
}
