package org.kerasrnn.edge;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link StepModel} over any runtime that runs a named signature on maps of Java arrays, which
 * is what LiteRT's {@code Interpreter.runSignature(inputs, outputs, key)} does. It owns the state
 * buffers the manifest describes: each step feeds {@code token} and every state, then the
 * {@code next_<state>} outputs become the next step's state. {@link #reset()} copies the manifest's
 * start state into those buffers, and {@link #startToken()} is the manifest's start token. Built with a
 * batch B (a "batch_files" model of the manifest), it runs B streams per call as a {@link BatchStepModel}.
 */
public final class SignatureStepModel implements StepModel, BatchStepModel {
    /** Runs the model's signature once: reads {@code inputs}, fills the arrays in {@code outputs}. */
    public interface SignatureRunner {
        void run(Map<String, Object> inputs, Map<String, Object> outputs);
    }

    private final SignatureRunner runner;
    private final List<StateSpec> states;
    private final int batch;
    private final int[] token;
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
        this(manifest, runner, 1);
    }

    /** The same for a signature of {@code batch} rows: every input and output [batch, ...]. */
    public SignatureStepModel(BundleManifest manifest, SignatureRunner runner, int batch) {
        this.runner = runner;
        this.batch = batch;
        this.states = manifest.states;
        this.startToken = manifest.startToken;
        this.token = new int[batch];
        this.logits = new float[batch][manifest.vocab.size()];
        this.state = new float[states.size()][][];
        this.next = new float[states.size()][][];
        this.start = new float[states.size()][];
        for (int i = 0; i < states.size(); i++) {
            state[i] = new float[batch][states.get(i).size];
            next[i] = new float[batch][states.get(i).size];
            start[i] = manifest.startState(states.get(i).name);
        }
        inputs.put("token", token);
        outputs.put("logits", logits);
        bindStates();
        reset();
    }

    /** Copies the manifest's start state into every row of every state buffer. */
    @Override
    public void reset() {
        for (int i = 0; i < state.length; i++) {
            for (float[] row : state[i]) {
                System.arraycopy(start[i], 0, row, 0, start[i].length);
            }
        }
    }

    @Override
    public int batch() {
        return batch;
    }

    /** The manifest's {@code "start.token"}. */
    @Override
    public int startToken() {
        return startToken;
    }

    /** One token for a batch-1 model. */
    @Override
    public float[] feed(int tokenId) {
        if (batch != 1) {
            throw new IllegalStateException("a batch-" + batch + " model takes one token per row: feed(int[])");
        }
        return feed(new int[] {tokenId})[0];
    }

    @Override
    public float[][] feed(int[] tokens) {
        if (tokens.length != batch) {
            throw new IllegalArgumentException(tokens.length + " tokens for a batch-" + batch + " model");
        }
        System.arraycopy(tokens, 0, token, 0, batch);
        runner.run(inputs, outputs);
        for (int i = 0; i < state.length; i++) {
            float[][] fed = state[i];
            state[i] = next[i];
            next[i] = fed;
        }
        bindStates();
        float[][] copy = new float[batch][];
        for (int r = 0; r < batch; r++) {
            copy[r] = logits[r].clone();
        }
        return copy;
    }

    @Override
    public void select(int[] rows) {
        if (rows.length != batch) {
            throw new IllegalArgumentException(rows.length + " rows for a batch-" + batch + " model");
        }
        for (int i = 0; i < state.length; i++) {
            for (int r = 0; r < batch; r++) {
                System.arraycopy(state[i][rows[r]], 0, next[i][r], 0, next[i][r].length);
            }
            float[][] selected = next[i];
            next[i] = state[i];
            state[i] = selected;
        }
        bindStates();
    }

    private void bindStates() {
        for (int i = 0; i < states.size(); i++) {
            inputs.put(states.get(i).name, state[i]);
            outputs.put(states.get(i).nextName(), next[i]);
        }
    }
}
