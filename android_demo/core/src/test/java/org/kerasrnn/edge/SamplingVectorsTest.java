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
    private static Map<?, ?> vectors;

    @BeforeClass
    public static void readVectors() throws IOException {
        File file = vectorsFile();
        vectors = (Map<?, ?>) Json.parse(new String(Files.readAllBytes(file.toPath()), StandardCharsets.UTF_8));
        assertEquals(1L, vectors.get("contract_version"));
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
            List<?> values = (List<?>) testCase.get("logits");
            float[] logits = new float[values.size()];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) ((Number) values.get(i)).doubleValue();  // exact: they are float32 values
            }
            SamplingParams params = new SamplingParams(((Number) testCase.get("temperature")).doubleValue(),
                    ((Number) testCase.get("top_k")).intValue(), ((Number) testCase.get("top_p")).doubleValue(),
                    (Boolean) testCase.get("argmax"));
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
}
