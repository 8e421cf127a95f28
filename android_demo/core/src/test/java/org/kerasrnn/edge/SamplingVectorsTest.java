package org.kerasrnn.edge;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.junit.BeforeClass;
import org.junit.Test;

/** The sampling contract's test vectors, export/sampling_vectors.json, reproduced exactly. */
public class SamplingVectorsTest {
    /**
     * The step model of the "generate" vectors (export/make_sampling_vectors.py's TableModel): feed
     * number n after a reset, counting from {@code start}, of token t returns row (start + n + t)
     * mod rows of the table.
     */
    private static final class CounterTableModel implements StepModel {
        private final float[][] table;
        private final int startToken;
        private final long start;
        private long feeds;

        CounterTableModel(float[][] table, int startToken, long start) {
            this.table = table;
            this.startToken = startToken;
            this.start = start;
        }

        @Override
        public void reset() {
            feeds = start;
        }

        @Override
        public int startToken() {
            return startToken;
        }

        @Override
        public float[] feed(int token) {
            return table[(int) ((feeds++ + token) % table.length)].clone();
        }
    }

    /** Rows of CounterTableModels as one batched model (make_sampling_vectors.BatchTableModel). */
    private static final class BatchTableModel implements BatchStepModel {
        private final CounterTableModel[] rows;

        BatchTableModel(float[][] table, int startToken, long start, int batch) {
            rows = new CounterTableModel[batch];
            for (int r = 0; r < batch; r++) {
                rows[r] = new CounterTableModel(table, startToken, start);
            }
        }

        @Override
        public int batch() {
            return rows.length;
        }

        @Override
        public void reset() {
            for (CounterTableModel row : rows) {
                row.reset();
            }
        }

        @Override
        public int startToken() {
            return rows[0].startToken();
        }

        @Override
        public float[][] feed(int[] tokens) {
            float[][] logits = new float[rows.length][];
            for (int r = 0; r < rows.length; r++) {
                logits[r] = rows[r].feed(tokens[r]);
            }
            return logits;
        }

        @Override
        public void select(int[] selected) {
            long[] feeds = new long[rows.length];
            for (int r = 0; r < rows.length; r++) {
                feeds[r] = rows[selected[r]].feeds;
            }
            for (int r = 0; r < rows.length; r++) {
                rows[r].feeds = feeds[r];
            }
        }
    }

    /**
     * The batched model of the "beam" vectors (make_sampling_vectors.BeamTableModel): feeding token t to a
     * row in state s sets it to (7 s + t + 1) mod rows of the table and returns that row.
     */
    private static final class BeamTableModel implements BatchStepModel {
        private final float[][] table;
        private final int startToken;
        private final long start;
        private final long[] states;

        BeamTableModel(float[][] table, int startToken, long start, int batch) {
            this.table = table;
            this.startToken = startToken;
            this.start = start;
            this.states = new long[batch];
        }

        @Override
        public int batch() {
            return states.length;
        }

        @Override
        public void reset() {
            java.util.Arrays.fill(states, start);
        }

        @Override
        public int startToken() {
            return startToken;
        }

        @Override
        public float[][] feed(int[] tokens) {
            float[][] logits = new float[states.length][];
            for (int r = 0; r < states.length; r++) {
                states[r] = (7 * states[r] + tokens[r] + 1) % table.length;
                logits[r] = table[(int) states[r]].clone();
            }
            return logits;
        }

        @Override
        public void select(int[] rows) {
            long[] selected = new long[rows.length];
            for (int r = 0; r < rows.length; r++) {
                selected[r] = states[rows[r]];
            }
            System.arraycopy(selected, 0, states, 0, rows.length);
        }
    }

    private static Map<?, ?> vectors;

    @BeforeClass
    public static void readVectors() throws IOException {
        File file = vectorsFile();
        vectors = (Map<?, ?>) Json.parse(new String(Files.readAllBytes(file.toPath()), StandardCharsets.UTF_8));
        assertEquals((long) BundleManifest.SUPPORTED_SAMPLING_CONTRACT, vectors.get("contract_version"));
    }

    /** The system property run_jvm_tests.sh and Gradle set, else export/ found upward from the working directory. */
    static File vectorsFile() throws IOException {
        String property = System.getProperty("kerasrnn.vectors");
        if (property != null) {
            return new File(property);
        }
        for (File dir = new File("").getAbsoluteFile(); dir != null; dir = dir.getParentFile()) {
            File candidate = new File(dir, "export/sampling_vectors.json");
            if (candidate.isFile()) {
                return candidate;
            }
        }
        throw new IOException("export/sampling_vectors.json not found: set -Dkerasrnn.vectors=PATH");
    }

    @Test
    public void splitMix64ReproducesEveryOutput() {
        List<?> seeds = (List<?>) vectors.get("rng");
        assertEquals(5, seeds.size());
        for (Object entry : seeds) {
            Map<?, ?> vector = (Map<?, ?>) entry;
            long seed = Long.parseUnsignedLong((String) vector.get("seed"));
            SplitMix64 rng = new SplitMix64(seed);
            for (Object expected : (List<?>) vector.get("next_u64")) {
                assertEquals("seed " + vector.get("seed"), expected, Long.toUnsignedString(rng.nextU64()));
            }
            rng = new SplitMix64(seed);
            for (Object expected : (List<?>) vector.get("next_double")) {
                assertEquals("seed " + vector.get("seed"), (Double) expected, rng.nextDouble(), 0.0);
            }
        }
    }

    @Test
    public void chooseReproducesEveryId() {
        List<?> cases = (List<?>) vectors.get("cases");
        assertTrue("expected dozens of cases, got " + cases.size(), cases.size() >= 50);
        for (Object entry : cases) {
            Map<?, ?> testCase = (Map<?, ?>) entry;
            float[] logits = floats((List<?>) testCase.get("logits"));
            SamplingParams params = params(testCase);
            SplitMix64 rng = new SplitMix64(Long.parseUnsignedLong((String) testCase.get("seed")));
            List<?> expectedIds = (List<?>) testCase.get("ids");
            int draws = ((Number) testCase.get("draws")).intValue();
            assertEquals(draws, expectedIds.size());
            int[] expected = new int[draws];
            int[] actual = new int[draws];
            for (int n = 0; n < draws; n++) {
                expected[n] = ((Number) expectedIds.get(n)).intValue();
                actual[n] = Sampler.choose(logits, rng, params);
            }
            assertArrayEquals("case " + testCase.get("name"), expected, actual);
        }
    }

    @Test
    public void generateReproducesEveryText() {
        Map<?, ?> generate = (Map<?, ?>) vectors.get("generate");
        Vocab vocab = Vocab.fromJson(generate.get("vocab"));
        float[][] table = table(generate);
        List<?> cases = (List<?>) generate.get("cases");
        assertTrue("expected several generate cases, got " + cases.size(), cases.size() >= 3);
        boolean nonzeroStartToken = false;
        for (Object entry : cases) {
            Map<?, ?> testCase = (Map<?, ?>) entry;
            nonzeroStartToken |= ((Number) testCase.get("start_token")).intValue() != 0;
            assertEquals("case " + testCase.get("name"), testCase.get("text"), generated(table, vocab, testCase));
        }
        assertTrue("no case has a nonzero start token", nonzeroStartToken);
    }

    /** The text of a generate case over the counter table model. */
    private static String generated(float[][] table, Vocab vocab, Map<?, ?> testCase) {
        StepModel model = new CounterTableModel(table, ((Number) testCase.get("start_token")).intValue(),
                ((Number) testCase.get("start")).longValue());
        Generation generation = new Generation(model, vocab, (String) testCase.get("prime"),
                ((Number) testCase.get("length")).intValue(), params(testCase),
                Long.parseUnsignedLong((String) testCase.get("seed")), "", strings(testCase.get("stop")));
        StringBuilder text = new StringBuilder();
        while (generation.hasNext()) {
            text.append(generation.next());
        }
        return text.toString();
    }

    @Test
    public void bpeTokenizationReproducesEveryCase() {
        Map<?, ?> tokenization = (Map<?, ?>) vectors.get("tokenization");
        Vocab vocab = Vocab.fromJson(tokenization.get("vocab"));
        List<?> cases = (List<?>) tokenization.get("cases");
        assertTrue("expected tokenization cases", cases.size() >= 10);
        for (Object entry : cases) {
            Map<?, ?> testCase = (Map<?, ?>) entry;
            String text = (String) testCase.get("text");
            List<?> expected = (List<?>) testCase.get("ids");
            int[] ids = vocab.encode(text);
            int[] want = new int[expected.size()];
            for (int i = 0; i < want.length; i++) {
                want[i] = ((Number) expected.get(i)).intValue();
            }
            assertArrayEquals("ids of " + text, want, ids);
            TokenDecoder decoder = vocab.newDecoder();
            StringBuilder decoded = new StringBuilder();
            for (int id : ids) {
                decoded.append(decoder.decode(id));
            }
            assertEquals(text, decoded.toString());
        }
        for (Object entry : (List<?>) tokenization.get("generate")) {
            Map<?, ?> testCase = (Map<?, ?>) entry;
            assertEquals("case " + testCase.get("name"), testCase.get("text"),
                    generated(table(tokenization), vocab, testCase));
        }
    }

    @Test
    public void streamSeedsReproduceEverySeed() {
        Map<?, ?> many = (Map<?, ?>) ((Map<?, ?>) vectors.get("generate")).get("many");
        for (Object entry : (List<?>) many.get("stream_seeds")) {
            Map<?, ?> vector = (Map<?, ?>) entry;
            long seed = Long.parseUnsignedLong((String) vector.get("seed"));
            List<?> indices = (List<?>) vector.get("i");
            List<?> expected = (List<?>) vector.get("stream_seed");
            for (int k = 0; k < indices.size(); k++) {
                long i = Long.parseUnsignedLong((String) indices.get(k));
                assertEquals("seed " + seed + " stream " + indices.get(k), expected.get(k),
                        Long.toUnsignedString(SplitMix64.streamSeed(seed, i)));
            }
        }
    }

    /**
     * Stream i of a batch is the single generation with stream seed i, cut after its first delimiter;
     * and the streams run {@code batch} at a time give the same texts.
     */
    @Test
    public void manySamplesReproduceEveryText() {
        Map<?, ?> generate = (Map<?, ?>) vectors.get("generate");
        Vocab vocab = Vocab.fromJson(generate.get("vocab"));
        float[][] table = table(generate);
        List<?> cases = (List<?>) ((Map<?, ?>) generate.get("many")).get("cases");
        assertTrue("expected several batch cases, got " + cases.size(), cases.size() >= 3);
        for (Object entry : cases) {
            Map<?, ?> testCase = (Map<?, ?>) entry;
            long seed = Long.parseUnsignedLong((String) testCase.get("seed"));
            List<?> texts = (List<?>) testCase.get("texts");
            for (int i = 0; i < texts.size(); i++) {
                StepModel model = new CounterTableModel(table, ((Number) testCase.get("start_token")).intValue(),
                        ((Number) testCase.get("start")).longValue());
                Generation generation = new Generation(model, vocab, (String) testCase.get("prime"),
                        ((Number) testCase.get("length")).intValue(), params(testCase),
                        SplitMix64.streamSeed(seed, i), (String) testCase.get("until"));
                StringBuilder text = new StringBuilder();
                while (generation.hasNext()) {
                    text.append(generation.next());
                }
                assertEquals("case " + testCase.get("name") + " stream " + i, texts.get(i), text.toString());
            }
            long[] seeds = new long[texts.size()];
            for (int i = 0; i < seeds.length; i++) {
                seeds[i] = SplitMix64.streamSeed(seed, i);
            }
            BatchStepModel model = new BatchTableModel(table, ((Number) testCase.get("start_token")).intValue(),
                    ((Number) testCase.get("start")).longValue(), ((Number) testCase.get("batch")).intValue());
            assertEquals("case " + testCase.get("name") + " in batches", texts,
                    BatchGeneration.generate(model, vocab, (String) testCase.get("prime"),
                            ((Number) testCase.get("length")).intValue(), params(testCase), seeds,
                            (String) testCase.get("until")));
        }
    }

    /** The "generate" vectors' table of logits, one row per float32 array. */
    private static float[][] table(Map<?, ?> generate) {
        List<?> rows = (List<?>) generate.get("table");
        float[][] table = new float[rows.size()][];
        for (int r = 0; r < table.length; r++) {
            table[r] = floats((List<?>) rows.get(r));
        }
        return table;
    }

    private static SamplingParams params(Map<?, ?> testCase) {
        return new SamplingParams(((Number) testCase.get("temperature")).doubleValue(),
                ((Number) testCase.get("top_k")).intValue(), ((Number) testCase.get("top_p")).doubleValue(),
                (Boolean) testCase.get("argmax"));
    }

    /** JSON numbers that are float32 values, as floats (exact). */
    private static float[] floats(List<?> values) {
        float[] floats = new float[values.size()];
        for (int i = 0; i < floats.length; i++) {
            floats[i] = (float) ((Number) values.get(i)).doubleValue();
        }
        return floats;
    }

    /** A case's "stop" list (absent: none). */
    private static List<String> strings(Object values) {
        List<String> strings = new java.util.ArrayList<String>();
        if (values != null) {
            for (Object value : (List<?>) values) {
                strings.add((String) value);
            }
        }
        return strings;
    }

    @Test
    public void stopStringsReproduceEveryText() {
        for (String part : new String[] {"generate", "tokenization"}) {
            Map<?, ?> vectorsPart = (Map<?, ?>) vectors.get(part);
            Vocab vocab = Vocab.fromJson(vectorsPart.get("vocab"));
            List<?> cases = (List<?>) vectorsPart.get("stop");
            assertTrue("expected stop cases in " + part, cases.size() >= 2);
            for (Object entry : cases) {
                Map<?, ?> testCase = (Map<?, ?>) entry;
                assertEquals("case " + testCase.get("name"), testCase.get("text"),
                        generated(table(vectorsPart), vocab, testCase));
                long seed = Long.parseUnsignedLong((String) testCase.get("seed"));
                BatchStepModel model = new BatchTableModel(table(vectorsPart),
                        ((Number) testCase.get("start_token")).intValue(), ((Number) testCase.get("start")).longValue(), 2);
                assertEquals("case " + testCase.get("name") + " in batches",
                        java.util.Arrays.asList(testCase.get("text"), testCase.get("text"), testCase.get("text")),
                        BatchGeneration.generate(model, vocab, (String) testCase.get("prime"),
                                ((Number) testCase.get("length")).intValue(), params(testCase),
                                new long[] {seed, seed, seed}, "", strings(testCase.get("stop"))));
            }
        }
    }

    @Test
    public void beamSearchReproducesEverySequence() {
        Map<?, ?> generate = (Map<?, ?>) vectors.get("generate");
        Map<?, ?> beam = (Map<?, ?>) generate.get("beam");
        Map<?, ?> tokenization = (Map<?, ?>) vectors.get("tokenization");
        Map<String, Object> ties = new java.util.HashMap<String, Object>();
        ties.put("table", beam.get("ties_table"));
        int checked = 0;
        for (Object entry : (List<?>) beam.get("cases")) {
            Map<?, ?> testCase = (Map<?, ?>) entry;
            checkBeams(Vocab.fromJson(generate.get("vocab")),
                    table(((String) testCase.get("name")).contains("ties") ? ties : beam), testCase);
            checked++;
        }
        for (Object entry : (List<?>) tokenization.get("beam")) {
            checkBeams(Vocab.fromJson(tokenization.get("vocab")), table(tokenization), (Map<?, ?>) entry);
            checked++;
        }
        assertTrue("expected beam cases", checked >= 5);
    }

    private static void checkBeams(Vocab vocab, float[][] table, Map<?, ?> testCase) {
        int width = ((Number) testCase.get("width")).intValue();
        BatchStepModel model = new BeamTableModel(table, ((Number) testCase.get("start_token")).intValue(),
                ((Number) testCase.get("start")).longValue(), width);
        List<BeamSearch.Beam> beams = BeamSearch.search(model, vocab, (String) testCase.get("prime"),
                ((Number) testCase.get("length")).intValue(), width,
                ((Number) testCase.get("length_penalty")).doubleValue(), strings(testCase.get("stop")));
        List<?> expected = (List<?>) testCase.get("beams");
        String name = "case " + testCase.get("name");
        assertEquals(name, expected.size(), beams.size());
        for (int i = 0; i < beams.size(); i++) {
            Map<?, ?> want = (Map<?, ?>) expected.get(i);
            List<?> ids = (List<?>) want.get("ids");
            int[] wantIds = new int[ids.size()];
            for (int k = 0; k < wantIds.length; k++) {
                wantIds[k] = ((Number) ids.get(k)).intValue();
            }
            assertArrayEquals(name + " beam " + i, wantIds, beams.get(i).ids);
            assertEquals(name + " beam " + i, want.get("text"), beams.get(i).text);
            assertEquals(name + " beam " + i, want.get("stopped"), beams.get(i).stopped);
            assertEquals(name + " beam " + i, ((Number) want.get("score")).doubleValue(), beams.get(i).score, 1e-9);
        }
    }
}
