package org.kerasrnn.edge;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;

/**
 * Runs the generate loop over a table of logits instead of a network, and prints the text as
 * UTF-8: the Java half of tests/test_java_sampler.py, which runs the Python sampler over the same
 * table and compares the two texts.
 *
 * <p>Usage: {@code GenerateFromLogits SPEC.json LOGITS.bin}. SPEC.json holds {@code vocab} (as in
 * a manifest), {@code start_token} (the table model's start token, a token id), {@code prime},
 * {@code length}, {@code temperature}, {@code top_k}, {@code top_p}, {@code argmax} and
 * {@code seed} (a decimal string, unsigned 64-bit). LOGITS.bin is float32 little-endian, rows of
 * V values; see {@link LogitsTable} for which row a feed returns, or, where SPEC.json lists
 * {@code fed}, {@link Recording}. An optional {@code stop} lists stop strings. Where SPEC.json has
 * {@code beam} ({@code width}, {@code length_penalty} and {@code calls}), it runs beam search instead
 * over a {@link BatchRecording} and prints the best text.
 */
public final class GenerateFromLogits {
    private GenerateFromLogits() {
    }

    /**
     * Feed number n (counting from 0 after reset, the start token being feed 0) returns row
     * (n + s) mod rows, where s is the sum of the ids fed since the reset, this one included: every
     * fed id, the start token too, changes all later rows.
     */
    static final class LogitsTable implements StepModel {
        private final float[][] rows;
        private final int startToken;
        private long feeds;
        private long fedSum;

        LogitsTable(float[][] rows, int startToken) {
            this.rows = rows;
            this.startToken = startToken;
        }

        static LogitsTable read(byte[] data, int vocabSize, int startToken) {
            if (data.length == 0 || data.length % (4 * vocabSize) != 0) {
                throw new IllegalArgumentException("the logits file holds " + data.length
                        + " bytes, not whole rows of " + vocabSize + " float32 values");
            }
            FloatBuffer values = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
            float[][] rows = new float[data.length / (4 * vocabSize)][vocabSize];
            for (float[] row : rows) {
                values.get(row);
            }
            return new LogitsTable(rows, startToken);
        }

        @Override
        public void reset() {
            feeds = 0;
            fedSum = 0;
        }

        @Override
        public int startToken() {
            return startToken;
        }

        @Override
        public float[] feed(int token) {
            fedSum += token;
            return rows[(int) ((feeds++ + fedSum) % rows.length)].clone();
        }
    }

    /**
     * A real model's logits, recorded by the Python sampler along its own text: feed n must be the
     * token {@code fed[n]} it fed (else an error: the Java prime's ids or choices differ), and returns
     * the logits the model returned then, row n.
     */
    static final class Recording implements StepModel {
        private final LogitsTable rows;
        private final long[] fed;
        private int feeds;

        Recording(LogitsTable rows, List<?> fed) {
            this.rows = rows;
            this.fed = new long[fed.size()];
            for (int i = 0; i < this.fed.length; i++) {
                this.fed[i] = (Long) fed.get(i);
            }
        }

        @Override
        public void reset() {
            feeds = 0;
        }

        @Override
        public int startToken() {
            return rows.startToken;
        }

        @Override
        public float[] feed(int token) {
            if (feeds >= fed.length || fed[feeds] != token) {
                throw new IllegalStateException("feed " + feeds + " is token " + token + ", the recording's "
                        + (feeds < fed.length ? String.valueOf(fed[feeds]) : "end"));
            }
            return rows.rows[feeds++].clone();
        }
    }

    /**
     * A batch model's calls, recorded by the Python beam search on a real model: {@code calls} lists
     * {@code {"select": rows}} and {@code {"feed": tokens}} (one token per row) in order; feed number n
     * returns rows [n * batch, (n + 1) * batch) of the logits file. A call that differs from the
     * recording is an error: the Java search chose otherwise.
     */
    static final class BatchRecording implements BatchStepModel {
        private final LogitsTable rows;
        private final List<?> calls;
        private final int batch;
        private int call;
        private int feeds;

        BatchRecording(LogitsTable rows, List<?> calls, int batch) {
            this.rows = rows;
            this.calls = calls;
            this.batch = batch;
        }

        @Override
        public int batch() {
            return batch;
        }

        @Override
        public void reset() {
            call = 0;
            feeds = 0;
        }

        @Override
        public int startToken() {
            return rows.startToken;
        }

        private void expect(String kind, int[] values) {
            Object recorded = call < calls.size() ? ((Map<?, ?>) calls.get(call)).get(kind) : null;
            List<?> want = recorded instanceof List ? (List<?>) recorded : null;
            boolean same = want != null && want.size() == values.length;
            for (int i = 0; same && i < values.length; i++) {
                same = ((Number) want.get(i)).intValue() == values[i];
            }
            if (!same) {
                throw new IllegalStateException("call " + call + " is " + kind + " " + java.util.Arrays.toString(values)
                        + ", the recording's " + (call < calls.size() ? calls.get(call) : "end"));
            }
            call++;
        }

        @Override
        public float[][] feed(int[] tokens) {
            expect("feed", tokens);
            float[][] logits = new float[batch][];
            for (int r = 0; r < batch; r++) {
                logits[r] = rows.rows[feeds * batch + r].clone();
            }
            feeds++;
            return logits;
        }

        @Override
        public void select(int[] selected) {
            expect("select", selected);
        }
    }

    private static List<String> stop(Map<?, ?> spec) {
        List<String> stop = new java.util.ArrayList<String>();
        if (spec.get("stop") instanceof List) {
            for (Object value : (List<?>) spec.get("stop")) {
                stop.add((String) value);
            }
        }
        return stop;
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            System.err.println("usage: GenerateFromLogits SPEC.json LOGITS.bin");
            System.exit(2);
        }
        Map<?, ?> spec = (Map<?, ?>) Json.parse(new String(Files.readAllBytes(Paths.get(args[0])),
                StandardCharsets.UTF_8));
        Vocab vocab = Vocab.fromJson(spec.get("vocab"));
        if (!(spec.get("start_token") instanceof Long)) {
            throw new IllegalArgumentException(args[0] + " needs an integer \"start_token\"");
        }
        int startToken = ((Long) spec.get("start_token")).intValue();
        LogitsTable table = LogitsTable.read(Files.readAllBytes(Paths.get(args[1])), vocab.size(), startToken);
        int length = ((Number) spec.get("length")).intValue();
        PrintStream out = new PrintStream(System.out, false, "UTF-8");
        if (spec.get("beam") instanceof Map) {
            Map<?, ?> beam = (Map<?, ?>) spec.get("beam");
            int width = ((Number) beam.get("width")).intValue();
            BatchRecording model = new BatchRecording(table, (List<?>) beam.get("calls"),
                    ((Number) beam.get("batch")).intValue());
            out.print(BeamSearch.search(model, vocab, (String) spec.get("prime"), length, width,
                    ((Number) beam.get("length_penalty")).doubleValue(), stop(spec)).get(0).text);
            out.flush();
            return;
        }
        SamplingParams params = new SamplingParams(((Number) spec.get("temperature")).doubleValue(),
                ((Number) spec.get("top_k")).intValue(), ((Number) spec.get("top_p")).doubleValue(),
                (Boolean) spec.get("argmax"));
        long seed = Long.parseUnsignedLong((String) spec.get("seed"));
        StepModel model = spec.get("fed") instanceof List ? new Recording(table, (List<?>) spec.get("fed")) : table;
        Generation generation = new Generation(model, vocab, (String) spec.get("prime"), length, params, seed, "",
                stop(spec));
        StringBuilder text = new StringBuilder();
        while (generation.hasNext()) {
            text.append(generation.next());
        }
        out.print(text);
        out.flush();
    }
}
