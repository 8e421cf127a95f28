package org.kerasrnn.edge;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotSame;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class SignatureStepModelTest {
    /**
     * A stand-in for the TFLite "step" signature, with the manifest's names and shapes: state i
     * becomes state i + (i + 1) * token, and logit k is the sum of the new last state plus k.
     */
    private static final class AccumulatorSignature implements SignatureStepModel.SignatureRunner {
        private final List<StateSpec> states;
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
            float sum = 0;
            for (int i = 0; i < states.size(); i++) {
                float[] state = ((float[][]) inputs.get(states.get(i).name))[0];
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
            float[] logits = ((float[][]) outputs.get("logits"))[0];
            for (int k = 0; k < logits.length; k++) {
                logits[k] = sum + k;
            }
        }
    }

    @Test
    public void carriesEachNextStateIntoTheFollowingStep() {
        BundleManifest manifest = ManifestTest.validManifest();
        AccumulatorSignature signature = new AccumulatorSignature(manifest.states);
        SignatureStepModel model = new SignatureStepModel(manifest, signature);
        model.reset();
        // Last state (i = 3, H = 3): 4 * token per element, so 12 * token summed over the step's tokens.
        assertArrayEquals(new float[] {24, 25, 26, 27, 28}, model.feed(2), 0f);
        assertArrayEquals(new float[] {60, 61, 62, 63, 64}, model.feed(3), 0f);
        float[] logits = model.feed(0);
        logits[0] = -1;  // the caller's copy: the model must not see this
        assertArrayEquals(new float[] {60, 61, 62, 63, 64}, model.feed(0), 0f);
        assertEquals(4, signature.runs);
    }

    @Test
    public void resetZeroesEveryState() {
        BundleManifest manifest = ManifestTest.validManifest();
        SignatureStepModel model = new SignatureStepModel(manifest, new AccumulatorSignature(manifest.states));
        model.reset();
        float[] first = model.feed(1);
        model.feed(4);
        model.reset();
        assertArrayEquals(first, model.feed(1), 0f);
    }
}
