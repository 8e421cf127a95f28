package org.kerasrnn.edge;

/** One recurrent state tensor, shape [1, size], float32: a layer's h, or an LSTM layer's c. */
public final class StateSpec {
    public final String name;
    public final int size;

    public StateSpec(String name, int size) {
        this.name = name;
        this.size = size;
    }

    /** The signature output that carries this state to the next step. */
    public String nextName() {
        return "next_" + name;
    }
}
