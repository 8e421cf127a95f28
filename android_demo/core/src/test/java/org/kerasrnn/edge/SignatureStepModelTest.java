package org.kerasrnn.edge;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotSame;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class SignatureStepModelTest {
    /**
     * A stand-in for the TFLite "step" signature, with the manifest's names and shapes: state i
     * becomes state i + (i + 1) * token, and logit k is the sum of the new last state plus k. It
     * records the token and a copy of every state it was given, run by run.
     */
    private static final class AccumulatorSignature implements SignatureStepModel.SignatureRunner {
        private final List<StateSpec> states;
        final List<Integer> tokens = new ArrayList<Integer>();
        final List<float[][]> statesFed = new ArrayList<float[][]>();
        int runs;

        AccumulatorSignature(List<StateSpec> states) {
            this.states = states;
        }

        @Override
        public void run(Map<String, Object> inputs, Map<String, Object> outputs) {
            runs++;
            assertEquals(new HashSet<String>(Arrays.asList("token", "layer0_h", "layer0_c", "layer1_h", "layer1_c")),
                    inputs.keySet());
            assertEquals(new HashSet<String>(Arrays.asList("logits", "next_layer0_h", "next_layer0_c",
                    "next_layer1_h", "next_layer1_c")), outputs.keySet());
            int token = ((int[]) inputs.get("token"))[0];
            tokens.add(token);
            float[][] fed = new float[states.size()][];
            float sum = 0;
            for (int i = 0; i < states.size(); i++) {
                float[] state = ((float[][]) inputs.get(states.get(i).name))[0];
                fed[i] = state.clone();
                float[] next = ((float[][]) outputs.get(states.get(i).nextName()))[0];
                assertNotSame("a state is read and written in the same buffer", state, next);
                for (int j = 0; j < state.length; j++) {
                    next[j] = state[j] + (i + 1) * token;
                }
                sum = 0;
                for (float v : next) {
                    sum += v;
                }
            }
            statesFed.add(fed);
            float[] logits = ((float[][]) outputs.get("logits"))[0];
            for (int k = 0; k < logits.length; k++) {
                logits[k] = sum + k;
            }
        }
    }

    /** The manifest's start state, in the order of its states. */
    private static float[][] startState(BundleManifest manifest) {
        float[][] start = new float[manifest.states.size()][];
        for (int i = 0; i < start.length; i++) {
            start[i] = manifest.startState(manifest.states.get(i).name);
        }
        return start;
    }

    @Test
    public void carriesEachNextStateIntoTheFollowingStep() {
        BundleManifest manifest = ManifestTest.validManifest();
        AccumulatorSignature signature = new AccumulatorSignature(manifest.states);
        SignatureStepModel model = new SignatureStepModel(manifest, signature);
        model.reset();
        // Last state (i = 3, H = 3): starts at {1, 2, 4} (sum 7), then 4 * token per element, so
        // 7 + 12 * token summed over the step's tokens.
        assertArrayEquals(new float[] {31, 32, 33, 34, 35}, model.feed(2), 0f);
        assertArrayEquals(new float[] {67, 68, 69, 70, 71}, model.feed(3), 0f);
        float[] logits = model.feed(0);
        logits[0] = -1;  // the caller's copy: the model must not see this
        assertArrayEquals(new float[] {67, 68, 69, 70, 71}, model.feed(0), 0f);
        assertEquals(4, signature.runs);
        assertEquals(Arrays.asList(2, 3, 0, 0), signature.tokens);
    }

    @Test
    public void resetPutsTheStartStateIntoEveryState() {
        BundleManifest manifest = ManifestTest.validManifest();
        AccumulatorSignature signature = new AccumulatorSignature(manifest.states);
        SignatureStepModel model = new SignatureStepModel(manifest, signature);
        float[][] start = startState(manifest);
        // A new model is already in the start state.
        float[] first = model.feed(1);
        assertArrayEquals(start, signature.statesFed.get(0));
        model.feed(4);
        assertEquals(5f, signature.statesFed.get(1)[3][0], 0f);  // layer1_c: 1 + 4 * 1 after the first step
        model.reset();
        assertArrayEquals(first, model.feed(1), 0f);
        assertArrayEquals(start, signature.statesFed.get(2));
        // Both buffers of each state (fed, then written by the step) were reset-able: reset after an odd
        // number of steps too.
        model.reset();
        model.feed(3);
        model.feed(3);
        model.feed(3);
        model.reset();
        model.feed(0);
        assertArrayEquals(start, signature.statesFed.get(6));
    }

    @Test
    public void resetRestoresTheStartStateWhateverTheRunnerWroteIntoItsBuffers() {
        final BundleManifest manifest = ManifestTest.validManifest();
        final List<float[][]> statesFed = new ArrayList<float[][]>();
        SignatureStepModel model = new SignatureStepModel(manifest, new SignatureStepModel.SignatureRunner() {
            @Override
            public void run(Map<String, Object> inputs, Map<String, Object> outputs) {
                float[][] fed = new float[manifest.states.size()][];
                for (int i = 0; i < fed.length; i++) {
                    float[] state = ((float[][]) inputs.get(manifest.states.get(i).name))[0];
                    fed[i] = state.clone();
                    Arrays.fill(state, Float.NaN);  // scribbles on its inputs, too
                    Arrays.fill(((float[][]) outputs.get(manifest.states.get(i).nextName()))[0], -7f);
                }
                statesFed.add(fed);
            }
        });
        float[][] start = startState(manifest);
        model.feed(1);
        model.feed(1);
        model.reset();
        model.feed(1);
        assertArrayEquals(start, statesFed.get(0));
        assertArrayEquals(new float[] {-7, -7, -7}, statesFed.get(1)[0], 0f);
        assertArrayEquals(start, statesFed.get(2));
        // The model copied the start state: the manifest's own values are untouched.
        assertArrayEquals(start, startState(manifest));
        assertArrayEquals(new float[] {0.5f, -1, 2}, start[0], 0f);
    }

    @Test
    public void startTokenIsTheManifests() {
        BundleManifest manifest = ManifestTest.validManifest();
        SignatureStepModel model = new SignatureStepModel(manifest, new AccumulatorSignature(manifest.states));
        assertEquals(2, manifest.startToken);
        assertEquals(manifest.startToken, model.startToken());
    }

    /** A batch-2 model: row r gets tokens[r] and its own state; reset puts the start state in every row. */
    @Test
    public void aBatchModelRunsEveryRowOnItsOwnState() {
        final BundleManifest manifest = ManifestTest.validManifest();
        final List<int[]> tokensFed = new ArrayList<int[]>();
        SignatureStepModel model = new SignatureStepModel(manifest, new SignatureStepModel.SignatureRunner() {
            @Override
            public void run(Map<String, Object> inputs, Map<String, Object> outputs) {
                int[] tokens = (int[]) inputs.get("token");
                tokensFed.add(tokens.clone());
                float[][] logits = (float[][]) outputs.get("logits");
                for (int r = 0; r < tokens.length; r++) {
                    for (StateSpec spec : manifest.states) {  // every state: itself plus the row's token
                        float[] state = ((float[][]) inputs.get(spec.name))[r];
                        float[] next = ((float[][]) outputs.get(spec.nextName()))[r];
                        for (int j = 0; j < state.length; j++) {
                            next[j] = state[j] + tokens[r];
                        }
                    }
                    float[] last = ((float[][]) outputs.get("next_layer1_c"))[r];
                    Arrays.fill(logits[r], last[0]);
                }
            }
        }, 2);
        assertEquals(2, model.batch());
        model.reset();
        // layer1_c starts at {1, 2, 4}: row r's logits are 1 plus its tokens so far.
        float[][] logits = model.feed(new int[] {3, 10});
        assertArrayEquals(new float[] {4, 4, 4, 4, 4}, logits[0], 0f);
        assertArrayEquals(new float[] {11, 11, 11, 11, 11}, logits[1], 0f);
        logits = model.feed(new int[] {1, 0});
        assertArrayEquals(new float[] {5, 5, 5, 5, 5}, logits[0], 0f);
        assertArrayEquals(new float[] {11, 11, 11, 11, 11}, logits[1], 0f);
        model.reset();
        assertArrayEquals(new float[] {1, 1, 1, 1, 1}, model.feed(new int[] {0, 0})[1], 0f);
        assertArrayEquals(new int[] {3, 10}, tokensFed.get(0));
    }
}
