"""The trained weights as plain numpy arrays: what both the TFLite and the ONNX builders read.

Layout follows Keras: kernels are [inputs, gates * H] with gates in Keras order (LSTM i, f, c, o;
GRU z, r, h), so `x @ kernel` is the input projection. A GRU (reset_after=True) has two biases,
`bias` for the input projection and `recurrent_bias` inside the reset gate; the other cells have one.
"""
import dataclasses

import numpy as np

from kerasrnn.model import get_start, recurrent


@dataclasses.dataclass
class Layer:
    kernel: np.ndarray            # [inputs, gates * H]
    recurrent_kernel: np.ndarray  # [H, gates * H]
    bias: np.ndarray              # [gates * H]
    recurrent_bias: np.ndarray    # [gates * H]; zeros except for a GRU


@dataclasses.dataclass
class Weights:
    cell: str                     # lstm | gru | rnn
    embedding: np.ndarray         # [V, E]
    layers: list                  # of Layer
    dense_kernel: np.ndarray      # [H, V]
    dense_bias: np.ndarray        # [V]
    start_token: int              # sampling feeds it first, from the start state
    start_state: list             # of [H] arrays, in `state_names` order

    @property
    def rnn_size(self):
        return self.layers[0].recurrent_kernel.shape[0]

    @property
    def state_widths(self):
        """Every state tensor's size (each is float32 [1, size])."""
        return [self.rnn_size] * len(self.state_names)

    @property
    def state_names(self):
        """Every state tensor, in order: layer0_h (, layer0_c), layer1_h, ..."""
        parts = ("h", "c") if self.cell == "lstm" else ("h",)
        return [f"layer{i}_{p}" for i in range(len(self.layers)) for p in parts]


def from_model(model):
    import keras

    def numpy(variable):
        return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)

    stack = recurrent(model)
    layers = []
    for cell in (rnn.cell for rnn in stack.rnns):
        bias = numpy(cell.bias)
        if stack.cell == "gru":
            if not cell.reset_after:
                raise ValueError("only GRUs with reset_after=True (the Keras default) can be exported")
            bias, recurrent_bias = bias[0], bias[1]
        else:
            recurrent_bias = np.zeros_like(bias)
        layers.append(Layer(numpy(cell.kernel), numpy(cell.recurrent_kernel), bias, recurrent_bias))
    dense = model.get_layer("logits")
    start_token, start_state = get_start(model)
    return Weights(stack.cell, numpy(model.get_layer("embedding").embeddings), layers, numpy(dense.kernel),
                   numpy(dense.bias), start_token, [numpy(s) for s in start_state])
