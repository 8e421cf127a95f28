package org.kerasrnn.edge;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link StepModel} over any runtime that runs a named signature on maps of Java arrays, which
 * is what LiteRT's {@code Interpreter.runSignature(inputs, outputs, key)} does. It owns the state
 * buffers the manifest describes: each step feeds {@code token} and every state, then the
 * {@code next_<state>} outputs become the next step's state. {@link #reset()} copies the manifest's
 * start state into those buffers, and {@link #startToken()} is the manifest's start token.
 */
public final class SignatureStepModel implements StepModel {
    /** Runs the model's signature once: reads {@code inputs}, fills the arrays in {@code outputs}. */
    public interface SignatureRunner {
        void run(Map<String, Object> inputs, Map<String, Object> outputs);
    }

    private final SignatureRunner runner;
    private final List<StateSpec> states;
    private final int[] token = new int[1];
    private final float[][] logits;
    /** state[i] is fed to the model; next[i] receives its update, then the two swap. */
    private final float[][][] state;
    private final float[][][] next;
    /** start[i]: state i's start values, this model's own copy of the manifest's. */
    private final float[][] start;
    private final int startToken;
    private final Map<String, Object> inputs = new HashMap<String, Object>();
    private final Map<String, Object> outputs = new HashMap<String, Object>();

    /** A model in the manifest's start state, running {@code runner} for each step. */
    public SignatureStepModel(BundleManifest manifest, SignatureRunner runner) {
        this.runner = runner;
        this.states = manifest.states;
        this.startToken = manifest.startToken;
        this.logits = new float[1][manifest.vocab.size()];
        this.state = new float[states.size()][][];
        this.next = new float[states.size()][][];
        this.start = new float[states.size()][];
        for (int i = 0; i < states.size(); i++) {
            state[i] = new float[1][states.get(i).size];
            next[i] = new float[1][states.get(i).size];
            start[i] = manifest.startState(states.get(i).name);
        }
        inputs.put("token", token);
        outputs.put("logits", logits);
        bindStates();
        reset();
    }

    /** Copies the manifest's start state into every state buffer. */
    @Override
    public void reset() {
        for (int i = 0; i < state.length; i++) {
            System.arraycopy(start[i], 0, state[i][0], 0, start[i].length);
        }
    }

    /** The manifest's {@code "start.token"}. */
    @Override
    public int startToken() {
        return startToken;
    }

    @Override
    public float[] feed(int tokenId) {
        token[0] = tokenId;
        runner.run(inputs, outputs);
        for (int i = 0; i < state.length; i++) {
            float[][] fed = state[i];
            state[i] = next[i];
            next[i] = fed;
        }
        bindStates();
        return logits[0].clone();
    }

    private void bindStates() {
        for (int i = 0; i < states.size(); i++) {
            inputs.put(states.get(i).name, state[i]);
            outputs.put(states.get(i).nextName(), next[i]);
        }
    }
}
