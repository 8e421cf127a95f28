package org.kerasrnn.edge;

import java.util.Arrays;

/** The shape and dtype of one named input or output of a model signature. */
public final class TensorSpec {
    public final int[] shape;
    public final String dtype;

    public TensorSpec(int[] shape, String dtype) {
        this.shape = shape.clone();
        this.dtype = dtype;
    }

    boolean is(String dtype, int... shape) {
        return this.dtype.equals(dtype) && Arrays.equals(this.shape, shape);
    }

    @Override
    public String toString() {
        return dtype + Arrays.toString(shape);
    }
}
