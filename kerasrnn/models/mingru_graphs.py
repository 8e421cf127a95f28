"""The minGRU and minLSTM families' step graphs: one token in, each block's h (and its convolution's last two inputs,
where it has one) as float32 states, as TensorFlow ops (a tf.Module of builtin ops, which the TFLite and SavedModel
writers convert) and as ONNX (onnx.helper), both from the weights as numpy arrays, handed to kerasrnn_export as its
StepGraphs.

The states, in `MinRecurrent.state_weights`' order: `layer{i}_h` [batch, inner] and, with the convolution,
`layer{i}_conv` [batch, 2 * width] (the older input first). A step is `MinBlock.step`: h ← h + z ⊙ (h̃ − h), the
sampling-time form of the recurrence the training scan computes. minLSTM's z = σ(k), k = log σ(i) − log σ(f), is
written σ(i) / (σ(i) + σ(f)), the same number in builtin ops.
"""
import dataclasses

import numpy as np

from kerasrnn_export.onnx_graph import serialized
from kerasrnn_export.step_graphs import StepGraphs

from .language_model import core, get_start, numpy
from .trace import Trace, gelu, sigmoid

EPSILON = 1e-5  # the RMSNorms' (mingru.py)
GATES = {"gru": ("update",), "lstm": ("forget", "input")}  # minLSTM's, normalised: f/(f+i), i/(f+i)


@dataclasses.dataclass
class MinWeights:
    cell: str                  # gru | lstm
    embedding: np.ndarray      # [V, W]
    blocks: list               # of {name: array}: norm_1, kernel, out, norm_2, fc_kernel, fc_bias, fc_proj_kernel,
                               # fc_proj_bias, and with the convolution depthwise_kernel [3, W], depthwise_bias,
                               # pointwise_kernel, pointwise_bias; kernels [inputs, outputs]
    norm: np.ndarray           # the final RMSNorm's scale
    dense_kernel: np.ndarray   # [W, V]
    dense_bias: np.ndarray
    expansion: float
    conv: bool
    start_token: int
    start_state: list

    @property
    def width(self):
        return self.embedding.shape[1]

    @property
    def conv_width(self):
        """The convolution's width (its kernel's rows: the inputs it reads, this one included)."""
        return self.blocks[0]["depthwise_kernel"].shape[0]

    @property
    def inner(self):
        return self.blocks[0]["out"].shape[0]

    @property
    def state_names(self):
        parts = ("h", "conv") if self.conv else ("h",)
        return [f"layer{i}_{part}" for i in range(len(self.blocks)) for part in parts]

    @property
    def state_widths(self):
        widths = [self.inner] + ([(self.conv_width - 1) * self.width] if self.conv else [])
        return widths * len(self.blocks)

    @property
    def label(self):
        """What the inspector's page calls the model's layers."""
        return f"min{self.cell}"

    @property
    def num_layers(self):
        return len(self.blocks)

    @property
    def units(self):
        """The width of each block's h."""
        return self.inner

    def forward(self, ids, states, gates=False, progress=None):
        """The model's insides over `ids` [B, T] from `states` (`state_names` order), in numpy: the inspector's
        (kerasrnn.models.trace). Each block's products over the whole sequence, its recurrence step by step (the
        sampling form); `progress(steps)` is called as blocks complete (blocks x T steps in all)."""
        x = self.embedding[np.asarray(ids)]
        batch, length = x.shape[:2]
        trace = Trace([], [], {name: [] for name in GATES[self.cell]} if gates else {}, None, [])
        per_block = len(self.state_names) // len(self.blocks)
        for i, block in enumerate(self.blocks):
            h, *past = [np.asarray(s, np.float32) for s in states[i * per_block:(i + 1) * per_block]]
            if self.conv:
                seen = np.concatenate([past[0].reshape(batch, self.conv_width - 1, self.width), x], axis=1)
                y = sum(seen[:, j:j + length] * block["depthwise_kernel"][j] for j in range(self.conv_width))
                x = x + (y + block["depthwise_bias"]) @ block["pointwise_kernel"] + block["pointwise_bias"]
                past = [seen[:, -(self.conv_width - 1):].reshape(batch, -1)]
            projected = _rms_norm(x, block["norm_1"]) @ block["kernel"]
            if self.cell == "gru":
                hidden, gate = np.split(projected, 2, axis=-1)
                z = sigmoid(gate)
                values = (z,)
            else:
                hidden, forget, input_ = np.split(projected, 3, axis=-1)
                forget, input_ = sigmoid(forget), sigmoid(input_)
                z = input_ / (input_ + forget)
                values = (1 - z, z)
            candidate = np.where(hidden >= 0, hidden + 0.5, sigmoid(hidden))
            hs = np.empty((batch, length, self.inner), np.float32)
            for t in range(length):
                h = h + z[:, t] * (candidate[:, t] - h)
                hs[:, t] = h
            trace.h.append(hs)
            for name, value in zip(GATES[self.cell], values):
                if name in trace.gates:
                    trace.gates[name].append(value.astype(np.float32))
            trace.states += [h, *past]
            x = x + hs @ block["out"]
            hidden = _rms_norm(x, block["norm_2"]) @ block["fc_kernel"] + block["fc_bias"]
            x = x + gelu(hidden) @ block["fc_proj_kernel"] + block["fc_proj_bias"]
            if progress:
                progress(length)
        trace.logits = _rms_norm(x, self.norm) @ self.dense_kernel + self.dense_bias
        return trace


def _rms_norm(x, scale):
    return x / np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True) + EPSILON) * scale


def from_model(model):
    stack = core(model)
    blocks = []
    for block in stack.blocks:
        weights = {"norm_1": numpy(block.norm_1.scale), "kernel": numpy(block.rnn.kernel.kernel),
                   "out": numpy(block.out.kernel), "norm_2": numpy(block.norm_2.scale),
                   "fc_kernel": numpy(block.fc.kernel), "fc_bias": numpy(block.fc.bias),
                   "fc_proj_kernel": numpy(block.fc_proj.kernel), "fc_proj_bias": numpy(block.fc_proj.bias)}
        if block.conv:
            weights.update(depthwise_kernel=numpy(block.depthwise_kernel), depthwise_bias=numpy(block.depthwise_bias),
                           pointwise_kernel=numpy(block.pointwise.kernel), pointwise_bias=numpy(block.pointwise.bias))
        blocks.append(weights)
    dense = model.get_layer("logits")
    start_token, start_state = get_start(model)
    return MinWeights(stack.cell, numpy(model.get_layer("embedding").embeddings), blocks, numpy(stack.norm.scale),
                      numpy(dense.kernel), numpy(dense.bias), stack.expansion, stack.conv, start_token,
                      [numpy(s) for s in start_state])


def step_graphs(model):
    weights = from_model(model)
    return StepGraphs(
        model={"type": f"min{weights.cell}", "num_layers": len(weights.blocks), "width": weights.width,
               "expansion": weights.expansion, "conv": weights.conv},
        vocab_size=weights.embedding.shape[0], state_names=weights.state_names, state_widths=weights.state_widths,
        start_token=weights.start_token, start_state=weights.start_state,
        tf_step=lambda batch: step_core(weights), onnx_step=lambda batched: build_onnx(weights), onnx_steps=False)


# -- TFLite ---------------------------------------------------------------------------------------------------

def step_core(weights):
    """The tf.Module whose `forward(token, states)` is one step, at any batch."""
    import tensorflow as tf

    def rms_norm(x, scale):
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + EPSILON) * scale

    class MinStep(tf.Module):
        def __init__(self):
            super().__init__()
            self.embedding = tf.Variable(weights.embedding)
            self.blocks = [{k: tf.Variable(v) for k, v in block.items()} for block in weights.blocks]
            self.norm = tf.Variable(weights.norm)
            self.dense = (tf.Variable(weights.dense_kernel), tf.Variable(weights.dense_bias))

        def forward(self, token, states):
            x, new, per_block = tf.gather(self.embedding, token), [], len(states) // len(self.blocks)
            for i, block in enumerate(self.blocks):
                h, *past = states[i * per_block:(i + 1) * per_block]
                if weights.conv:
                    reads = weights.conv_width
                    seen = tf.concat([tf.reshape(past[0], [-1, reads - 1, weights.width]), x[:, None]], axis=1)
                    y = sum(seen[:, j] * block["depthwise_kernel"][j] for j in range(reads))
                    y = tf.matmul(y + block["depthwise_bias"], block["pointwise_kernel"]) + block["pointwise_bias"]
                    x, past = x + y, [tf.reshape(seen[:, 1:], [-1, (reads - 1) * weights.width])]
                projected = tf.matmul(rms_norm(x, block["norm_1"]), block["kernel"])
                if weights.cell == "gru":
                    hidden, gate = tf.split(projected, 2, axis=1)
                    z = tf.sigmoid(gate)
                else:
                    hidden, forget, input_ = tf.split(projected, 3, axis=1)
                    z = tf.sigmoid(input_) / (tf.sigmoid(input_) + tf.sigmoid(forget))
                candidate = tf.where(hidden >= 0, hidden + 0.5, tf.sigmoid(hidden))
                h = h + z * (candidate - h)
                new += [h, *past]
                x = x + tf.matmul(h, block["out"])
                hidden = tf.matmul(rms_norm(x, block["norm_2"]), block["fc_kernel"]) + block["fc_bias"]
                hidden = tf.nn.gelu(hidden, approximate=False)
                x = x + tf.matmul(hidden, block["fc_proj_kernel"]) + block["fc_proj_bias"]
            return tf.matmul(rms_norm(x, self.norm), self.dense[0]) + self.dense[1], new

    return MinStep()


# -- ONNX -----------------------------------------------------------------------------------------------------

def build_onnx(weights):
    """The serialized ONNX step model: token int32 [1], the states [1, N]; opset 13 as the RNN's (the RMSNorm and
    the GELU as their formulas)."""
    from onnx import TensorProto, helper, numpy_helper

    width = weights.width
    nodes, inits = [], []
    counter = iter(range(1_000_000))

    def const(array):
        name = f"c{next(counter)}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, outputs=1, **attributes):
        names = [f"t{next(counter)}" for _ in range(outputs)]
        nodes.append(helper.make_node(op, inputs, names, **attributes))
        return names[0] if outputs == 1 else names

    def matmul(x, kernel, bias=None):
        y = node("MatMul", [x, const(kernel)])
        return y if bias is None else node("Add", [y, const(bias)])

    def rms_norm(x, scale):
        mean_square = node("ReduceMean", [node("Mul", [x, x])], axes=[-1], keepdims=1)
        inverse = node("Reciprocal", [node("Sqrt", [node("Add", [mean_square, const(np.float32(EPSILON))])])])
        return node("Mul", [node("Mul", [x, inverse]), const(scale)])

    def sizes(*dims):
        return const(np.array(dims, np.int64))

    x, outputs = node("Gather", [const(weights.embedding), "token"]), []  # [1, W]
    for i, block in enumerate(weights.blocks):
        if weights.conv:
            past = f"layer{i}_conv"
            seen = node("Concat", [past, x], axis=1)  # [1, 3 W], the oldest input first
            y = None
            for j in range(weights.conv_width):
                term = node("Mul", [node("Slice", [seen, sizes(j * width), sizes((j + 1) * width), sizes(1)]),
                                    const(block["depthwise_kernel"][j])])
                y = term if y is None else node("Add", [y, term])
            y = matmul(node("Add", [y, const(block["depthwise_bias"])]), block["pointwise_kernel"],
                       block["pointwise_bias"])
            x = node("Add", [x, y])
            next_past = node("Slice", [seen, sizes(width), sizes(weights.conv_width * width), sizes(1)])
        projected = matmul(rms_norm(x, block["norm_1"]), block["kernel"])
        if weights.cell == "gru":
            hidden, gate = node("Split", [projected], outputs=2, axis=1)
            z = node("Sigmoid", [gate])
        else:
            hidden, forget, input_ = node("Split", [projected], outputs=3, axis=1)
            input_, forget = node("Sigmoid", [input_]), node("Sigmoid", [forget])
            z = node("Div", [input_, node("Add", [input_, forget])])
        candidate = node("Where", [node("GreaterOrEqual", [hidden, const(np.float32(0))]),
                                   node("Add", [hidden, const(np.float32(0.5))]), node("Sigmoid", [hidden])])
        h = f"layer{i}_h"
        h = node("Add", [h, node("Mul", [z, node("Sub", [candidate, h])])])
        outputs += [h] + ([next_past] if weights.conv else [])
        x = node("Add", [x, matmul(h, block["out"])])
        hidden = matmul(rms_norm(x, block["norm_2"]), block["fc_kernel"], block["fc_bias"])
        erf = node("Erf", [node("Mul", [hidden, const(np.float32(2 ** -0.5))])])
        hidden = node("Mul", [node("Mul", [hidden, const(np.float32(0.5))]), node("Add", [erf, const(np.float32(1))])])
        x = node("Add", [x, matmul(hidden, block["fc_proj_kernel"], block["fc_proj_bias"])])
    logits = matmul(rms_norm(x, weights.norm), weights.dense_kernel, weights.dense_bias)
    for name, value in zip(["logits", *(f"next_{n}" for n in weights.state_names)], [logits, *outputs]):
        nodes.append(helper.make_node("Identity", [value], [name]))

    vocab = weights.embedding.shape[0]
    states = list(zip(weights.state_names, weights.state_widths))
    graph = helper.make_graph(
        nodes, f"kerasrnn_min{weights.cell}_step", initializer=inits,
        inputs=[helper.make_tensor_value_info("token", TensorProto.INT32, [1]),
                *(helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, w]) for n, w in states)],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, vocab]),
                 *(helper.make_tensor_value_info(f"next_{n}", TensorProto.FLOAT, [1, w]) for n, w in states)])
    return serialized(graph)
