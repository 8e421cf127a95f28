"""The recurrent family's step graphs: the trained weights as plain numpy arrays (`Weights`, whose `forward` is the
inspector's numpy recomputation, the same step math), and from them one step of the model as TensorFlow ops
(`step_core`: the TFLite, micro and SavedModel writers convert it) and as an ONNX graph (`build_onnx`), handed to
kerasrnn_export as its StepGraphs.

Layout follows Keras: kernels are [inputs, gates * H] with gates in Keras order (LSTM i, f, c, o;
GRU z, r, h), so `x @ kernel` is the input projection. A GRU (reset_after=True) has two biases,
`bias` for the input projection and `recurrent_bias` inside the reset gate; the other cells have one.
"""
import dataclasses

import numpy as np

from kerasrnn_export.onnx_graph import serialized
from kerasrnn_export.step_graphs import StepGraphs

from .language_model import core, get_start, numpy
from .trace import Trace, sigmoid

GATES = {"lstm": ("input", "forget", "output"), "gru": ("update", "reset"), "rnn": ()}


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

    @property
    def label(self):
        """What the inspector's page calls the model's layers."""
        return self.cell

    @property
    def num_layers(self):
        return len(self.layers)

    @property
    def units(self):
        """The width of each layer's h."""
        return self.rnn_size

    def forward(self, ids, states, gates=False, progress=None):
        """The model's insides over `ids` [B, T] from `states` (`state_names` order, [B, H] each), in numpy: the
        inspector's (kerasrnn.models.trace). `progress(steps)` is called as steps complete (layers x T in all)."""
        cell, n = self.cell, len(self.state_names) // len(self.layers)
        x = self.embedding[np.asarray(ids)]
        batch, length = x.shape[:2]
        trace = Trace([], [], {name: [] for name in GATES[cell]} if gates else {}, None, [])
        for index, layer in enumerate(self.layers):
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
        trace.logits = x @ self.dense_kernel + self.dense_bias
        return trace


def from_model(model):
    stack = core(model)
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


def step_graphs(model):
    weights = from_model(model)
    return StepGraphs(
        model={"cell": weights.cell, "num_layers": len(weights.layers), "rnn_size": weights.rnn_size,
               "embedding_size": weights.embedding.shape[1]},
        vocab_size=weights.embedding.shape[0], state_names=weights.state_names, state_widths=weights.state_widths,
        start_token=weights.start_token, start_state=weights.start_state,
        tf_step=lambda batch: step_core(weights), onnx_step=lambda batched: build_onnx(weights, batched))


# -- TensorFlow -----------------------------------------------------------------------------------------------

def _recur(cell, xk, states, layer):
    """One step of one layer: `xk` is x @ kernel [batch, gates * H]; returns the new states.

    Sums in the order of Keras's cells (LSTM: x @ kernel + h @ recurrent_kernel, then the bias), so that
    the logits equal Keras's to the bit and sampled text does not drift from `kerasrnn sample`'s.
    """
    import tensorflow as tf

    hu = tf.matmul(states[0], layer["recurrent_kernel"])
    if cell == "lstm":
        h, c = states
        i, f, g, o = tf.split(xk + hu + layer["bias"], 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return [tf.sigmoid(o) * tf.tanh(c), c]
    xw = xk + layer["bias"]
    if cell == "gru":
        (h,) = states
        xz, xr, xh = tf.split(xw, 3, axis=1)
        hz, hr, hh = tf.split(hu + layer["recurrent_bias"], 3, axis=1)
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        return [z * h + (1 - z) * tf.tanh(xh + r * hh)]
    return [tf.tanh(xw + hu)]


def step_core(weights):
    """The weights as tf.Variables and one step of the whole model, at any batch: a tf.Module whose
    `forward(token, states)` gives (logits [batch, V], new states in `state_names` order). Plain TF ops, so that
    it converts to TFLite builtin ops (Keras's LSTM layer needs Flex ops: TensorList)."""
    import tensorflow as tf

    class RecurrentStep(tf.Module):
        def __init__(self):
            super().__init__()
            self.cell, self.per_layer = weights.cell, len(weights.state_names) // len(weights.layers)
            self.embedding = tf.Variable(weights.embedding)
            self.layers = [{k: tf.Variable(v) for k, v in vars(layer).items()} for layer in weights.layers]
            self.dense_kernel, self.dense_bias = tf.Variable(weights.dense_kernel), tf.Variable(weights.dense_bias)

        def forward(self, token, states):
            x, new, n = tf.gather(self.embedding, token), [], self.per_layer
            for i, layer in enumerate(self.layers):
                xk = tf.matmul(x, layer["kernel"])                                  # [batch, gates * H]
                layer_states = _recur(self.cell, xk, list(states[i * n:(i + 1) * n]), layer)
                new += layer_states
                x = layer_states[0]
            return tf.matmul(x, self.dense_kernel) + self.dense_bias, new

    return RecurrentStep()


# -- ONNX -----------------------------------------------------------------------------------------------------

ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _onnx_gate_order(matrix, cell):
    """Rows of a [gates * H, ...] matrix from Keras gate order to ONNX's (LSTM: i,f,c,o -> i,o,f,c)."""
    if cell != "lstm":
        return matrix  # GRU: z, r, h in both; RNN: one gate
    i, f, c, o = np.split(matrix, 4, axis=0)
    return np.concatenate([i, o, f, c], axis=0)


def build_onnx(weights, batched=False):
    """The serialized ONNX model, built directly with onnx.helper (no converter): batch 1 (token [T], states
    [1, H]), or `batched` (token [B, T], states [B, H]), T dynamic (T = 1 is the "step" signature, any T the
    "steps" signature: one run primes with a whole prime). Gather -> one ONNX LSTM/GRU/RNN op per layer (which
    loops over T inside the runtime) -> Gemm on the last hidden state; the batch graph runs the same math row
    by row."""
    from onnx import TensorProto, helper, numpy_helper

    cell, hidden = weights.cell, weights.rnn_size
    per_layer = len(weights.state_names) // len(weights.layers)
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    axis0, axis1 = const("axis0", np.array([0], np.int64)), const("axis1", np.array([1], np.int64))
    nodes.append(helper.make_node("Gather", [const("embedding", weights.embedding), "token"], ["embedded"]))
    if batched:
        nodes.append(helper.make_node("Transpose", ["embedded"], ["x0"], perm=[1, 0, 2]))  # [T, B, E]
    else:
        nodes.append(helper.make_node("Unsqueeze", ["embedded", axis1], ["x0"]))    # [T, batch 1, E]
    for i, layer in enumerate(weights.layers):
        names = weights.state_names[i * per_layer:(i + 1) * per_layer]
        w = _onnx_gate_order(layer.kernel.T, cell)[None]
        r = _onnx_gate_order(layer.recurrent_kernel.T, cell)[None]
        b = np.concatenate([_onnx_gate_order(layer.bias, cell), _onnx_gate_order(layer.recurrent_bias, cell)])[None]
        initial = []
        for name in names:
            nodes.append(helper.make_node("Unsqueeze", [name, axis0], [f"{name}_initial"]))
            initial.append(f"{name}_initial")
        outputs = [f"y{i}", *(f"{name}_final" for name in names)]
        attributes = {"hidden_size": hidden, **({"linear_before_reset": 1} if cell == "gru" else {})}
        nodes.append(helper.make_node(ONNX_OP[cell], [f"x{i}", const(f"w{i}", w), const(f"r{i}", r),
                                                      const(f"b{i}", b), "", *initial], outputs, **attributes))
        nodes.append(helper.make_node("Squeeze", [f"y{i}", axis1], [f"x{i + 1}"]))  # [T, B, H]
        for name in names:
            nodes.append(helper.make_node("Squeeze", [f"{name}_final", axis0], [f"next_{name}"]))
    last_h = f"next_{weights.state_names[-per_layer]}"
    nodes.append(helper.make_node("Gemm", [last_h, const("dense_kernel", weights.dense_kernel),
                                           const("dense_bias", weights.dense_bias)], ["logits"]))

    vocab, rows = weights.embedding.shape[0], "B" if batched else 1
    state = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [rows, hidden]) for n in weights.state_names]
    graph = helper.make_graph(
        nodes, "kerasrnn_step", initializer=inits,
        inputs=[helper.make_tensor_value_info("token", TensorProto.INT32, ["B", "T"] if batched else ["T"]), *state],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, [rows, vocab]),
                 *(helper.make_tensor_value_info(f"next_{n}", TensorProto.FLOAT, [rows, hidden])
                   for n in weights.state_names)])
    return serialized(graph)
