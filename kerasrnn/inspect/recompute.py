"""The network's insides recomputed in numpy from its weights: every layer's h, an LSTM's c, the gates.

Keras returns h (and only the final states), and the gates exist only inside its cells, so the
inspector runs the model itself. The step math is kerasrnn.models.recurrent_graphs' `_recur` (Keras gate order:
LSTM i, f, c, o; GRU z, r, h with reset_after), and tests/test_inspect.py holds it to the Keras layers.
"""
import dataclasses

import numpy as np

GATES = {"lstm": ("input", "forget", "output"), "gru": ("update", "reset"), "rnn": ()}


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))  # no overflow for large negative x


@dataclasses.dataclass
class Trace:
    h: list        # per layer, [B, T, H]: the hidden state after each step
    c: list        # per layer, [B, T, H]: an LSTM's cell state (empty for GRU and SimpleRNN)
    gates: dict    # gate name -> per layer [B, T, H]; empty unless asked for
    logits: np.ndarray  # [B, T, V]: the prediction of the next token after each step
    states: list   # the final states, in `Weights.state_names` order, [B, H] each


def forward(weights, ids, states, gates=False, progress=None):
    """Runs the model over `ids` [B, T] from `states` (`Weights.state_names` order, [B, H] each).
    `progress(steps)` is called as steps complete (layers x T in all)."""
    cell, n = weights.cell, len(weights.state_names) // len(weights.layers)
    x = weights.embedding[np.asarray(ids)]
    batch, length = x.shape[:2]
    trace = Trace([], [], {name: [] for name in GATES[cell]} if gates else {}, None, [])
    for index, layer in enumerate(weights.layers):
        xw = x @ layer.kernel + layer.bias                       # every step's input projection at once
        h, *rest = [np.asarray(s, np.float32) for s in states[index * n:(index + 1) * n]]
        hs = np.empty((batch, length, h.shape[-1]), np.float32)
        cs = np.empty_like(hs) if cell == "lstm" else None
        kept = {name: np.empty_like(hs) for name in trace.gates}
        for t in range(length):
            hu = h @ layer.recurrent_kernel
            if cell == "lstm":
                i, f, g, o = np.split(xw[:, t] + hu, 4, axis=1)
                i, f, o = sigmoid(i), sigmoid(f), sigmoid(o)
                rest[0] = f * rest[0] + i * np.tanh(g)
                h = o * np.tanh(rest[0])
                cs[:, t] = rest[0]
                values = (i, f, o)
            elif cell == "gru":
                xz, xr, xh = np.split(xw[:, t], 3, axis=1)
                hz, hr, hh = np.split(hu + layer.recurrent_bias, 3, axis=1)
                z, r = sigmoid(xz + hz), sigmoid(xr + hr)
                h = z * h + (1 - z) * np.tanh(xh + r * hh)
                values = (z, r)
            else:
                h = np.tanh(xw[:, t] + hu)
                values = ()
            hs[:, t] = h
            for name, value in zip(GATES[cell], values):
                if name in kept:
                    kept[name][:, t] = value
            if progress and ((t + 1) % 100 == 0 or t + 1 == length):
                progress((t + 1) - (t // 100) * 100)
        trace.h.append(hs)
        if cs is not None:
            trace.c.append(cs)
        for name, value in kept.items():
            trace.gates[name].append(value)
        trace.states += [h, *rest]
        x = hs
    trace.logits = x @ weights.dense_kernel + weights.dense_bias
    return trace


def start_states(weights, batch=1):
    """The start state (where sampling and the inspector begin) for `batch` streams."""
    return [np.tile(s, (batch, 1)) for s in weights.start_state]


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class NumpyStepModel:
    """The sampling contract's step model (kerasrnn_edge.sampling.generate) on the numpy recomputation:
    samples without building a Keras model (the report's temperature gallery, samples during training)."""

    def __init__(self, weights):
        self.weights, self.start_token = weights, weights.start_token
        self.reset()

    def reset(self):
        self.states = start_states(self.weights)

    def feed(self, ids):
        trace = forward(self.weights, np.asarray(ids, np.int64)[None, :], self.states)
        self.states = trace.states
        return trace.logits[0, -1].astype(np.float32)
