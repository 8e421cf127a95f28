"""The GPT family's step graphs (export/SPEC.md, "Transformer step models"): one token in, with the cache of the
last `context` positions as float32 states, as TensorFlow ops (a tf.Module of builtin ops, which the TFLite writer
converts) and as ONNX (onnx.helper), both from the weights as numpy arrays, handed to kerasrnn_export as its
StepGraphs.

The states, each float32 [batch, N] as the RNN's are, so every runtime drives both alike:
`layer{i}_k` and `layer{i}_v` [batch, context * width] (slot j's key or value at [j * width, (j + 1) * width),
the oldest slot first) and `filled` [batch, context] (1 where a slot holds a position). A step shifts every
cache one slot left, puts the token's key and value in the newest slot, and attends over all slots with
ALiBi's bias (alibi.slot_bias) where filled.
"""
import dataclasses

import numpy as np

from kerasrnn_export.onnx_graph import OPSET, serialized
from kerasrnn_export.step_graphs import StepGraphs

from .alibi import MASKED, slot_bias
from .language_model import core, get_start, numpy

EPSILON = 1e-5  # the LayerNorms' (kerasrnn.gpt)
BLOCK_WEIGHTS = ("ln_1_gamma", "ln_1_beta", "qkv_kernel", "qkv_bias", "proj_kernel", "proj_bias", "ln_2_gamma",
                 "ln_2_beta", "fc_kernel", "fc_bias", "fc_proj_kernel", "fc_proj_bias")


@dataclasses.dataclass
class GPTWeights:
    embedding: np.ndarray      # [V, W]
    blocks: list               # of {name in BLOCK_WEIGHTS: array}; kernels [inputs, outputs]
    ln_f_gamma: np.ndarray
    ln_f_beta: np.ndarray
    dense_kernel: np.ndarray   # [W, V]
    dense_bias: np.ndarray
    num_heads: int
    context: int
    start_token: int

    @property
    def width(self):
        return self.embedding.shape[1]

    @property
    def state_names(self):
        return [f"layer{i}_{part}" for i in range(len(self.blocks)) for part in ("k", "v")] + ["filled"]

    @property
    def state_widths(self):
        return [self.context * self.width] * (2 * len(self.blocks)) + [self.context]

    @property
    def start_state(self):
        """The empty cache (SPEC.md: a GPT starts from an empty context, with the start token read)."""
        return [np.zeros(n, np.float32) for n in self.state_widths]


def from_model(model):
    decoder = core(model)
    blocks = []
    for block in decoder.blocks:
        parts = {"ln_1": block.ln_1, "qkv": block.qkv, "proj": block.proj, "ln_2": block.ln_2, "fc": block.fc,
                 "fc_proj": block.fc_proj}
        weights = {}
        for name, layer in parts.items():
            if name.startswith("ln"):
                weights[f"{name}_gamma"], weights[f"{name}_beta"] = numpy(layer.gamma), numpy(layer.beta)
            else:
                weights[f"{name}_kernel"], weights[f"{name}_bias"] = numpy(layer.kernel), numpy(layer.bias)
        blocks.append(weights)
    dense = model.get_layer("logits")
    return GPTWeights(numpy(model.get_layer("embedding").embeddings), blocks, numpy(decoder.ln_f.gamma),
                      numpy(decoder.ln_f.beta), numpy(dense.kernel), numpy(dense.bias), decoder.num_heads,
                      decoder.context, get_start(model)[0])


def step_graphs(model):
    weights = from_model(model)
    return StepGraphs(
        model={"type": "gpt", "num_layers": len(weights.blocks), "num_heads": weights.num_heads,
               "width": weights.width, "context": weights.context, "positions": "alibi"},
        vocab_size=weights.embedding.shape[0], state_names=weights.state_names, state_widths=weights.state_widths,
        start_token=weights.start_token, start_state=weights.start_state,
        tf_step=lambda batch: step_core(weights, batch), onnx_step=lambda batched: build_onnx(weights),
        onnx_steps=False)


# -- TFLite ---------------------------------------------------------------------------------------------------

def step_core(weights, batch=1):
    """The tf.Module whose `forward(token, states)` is one step at a fixed batch (its reshapes need it)."""
    import tensorflow as tf

    class GPTStep(tf.Module):
        def __init__(self):
            super().__init__()
            self.embedding = tf.Variable(weights.embedding)
            self.blocks = [{k: tf.Variable(v) for k, v in block.items()} for block in weights.blocks]
            self.ln_f = (tf.Variable(weights.ln_f_gamma), tf.Variable(weights.ln_f_beta))
            self.dense = (tf.Variable(weights.dense_kernel), tf.Variable(weights.dense_bias))

        def forward(self, token, states):
            context, width, heads = weights.context, weights.width, weights.num_heads
            size = width // heads
            filled = tf.concat([states[-1][:, 1:], tf.ones([batch, 1], tf.float32)], axis=1)
            bias = slot_bias(heads, context)[None, :, None, :] + ((filled - 1.0) * -MASKED)[:, None, None, :]
            x, new = tf.gather(self.embedding, token), []
            for i, block in enumerate(self.blocks):
                q, k, v = tf.split(tf.matmul(_layer_norm(x, block["ln_1_gamma"], block["ln_1_beta"]),
                                             block["qkv_kernel"]) + block["qkv_bias"], 3, axis=1)
                keys = tf.concat([tf.reshape(states[2 * i], [batch, context, width])[:, 1:], k[:, None]], axis=1)
                values = tf.concat([tf.reshape(states[2 * i + 1], [batch, context, width])[:, 1:], v[:, None]], axis=1)
                new += [tf.reshape(keys, [batch, context * width]), tf.reshape(values, [batch, context * width])]
                scores = tf.matmul(tf.reshape(q, [batch, heads, 1, size]),
                                   tf.transpose(tf.reshape(keys, [batch, context, heads, size]), [0, 2, 3, 1]))
                attention = tf.nn.softmax(scores * (1.0 / size ** 0.5) + bias, axis=-1)
                y = tf.matmul(attention, tf.transpose(tf.reshape(values, [batch, context, heads, size]), [0, 2, 1, 3]))
                x = x + tf.matmul(tf.reshape(y, [batch, width]), block["proj_kernel"]) + block["proj_bias"]
                hidden = tf.matmul(_layer_norm(x, block["ln_2_gamma"], block["ln_2_beta"]), block["fc_kernel"])
                hidden = tf.nn.gelu(hidden + block["fc_bias"], approximate=False)
                x = x + tf.matmul(hidden, block["fc_proj_kernel"]) + block["fc_proj_bias"]
            return tf.matmul(_layer_norm(x, *self.ln_f), self.dense[0]) + self.dense[1], new + [filled]

    return GPTStep()


def _layer_norm(x, gamma, beta):
    import tensorflow as tf

    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + EPSILON) * gamma + beta


# -- ONNX -----------------------------------------------------------------------------------------------------

def build_onnx(weights):
    """The serialized ONNX step model: token int32 [1], the states [1, N]; opset 13 as the RNN's (its LayerNorm
    and GELU as their formulas: LayerNormalization and Gelu ops came in opsets 17 and 20)."""
    from onnx import TensorProto, helper, numpy_helper

    context, width, heads = weights.context, weights.width, weights.num_heads
    size = width // heads
    nodes, inits = [], []
    counter = iter(range(1_000_000))

    def const(array, name=None):
        name = name or f"c{next(counter)}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, **attributes):
        out = f"t{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attributes))
        return out

    def shape(*dims):
        return const(np.array(dims, np.int64))

    def linear(x, kernel, bias):
        return node("Add", [node("MatMul", [x, const(kernel)]), const(bias)])

    def layer_norm(x, gamma, beta):
        centred = node("Sub", [x, node("ReduceMean", [x], axes=[-1], keepdims=1)])
        variance = node("ReduceMean", [node("Mul", [centred, centred])], axes=[-1], keepdims=1)
        scale = node("Reciprocal", [node("Sqrt", [node("Add", [variance, const(np.float32(EPSILON))])])])
        return node("Add", [node("Mul", [node("Mul", [centred, scale]), const(gamma)]), const(beta)])

    def shifted(cache, new):
        """The cache [1, context * width] without its oldest slot, `new` [1, width] appended."""
        kept = node("Slice", [cache, shape(width), shape(context * width), shape(1)])
        return node("Concat", [kept, new], axis=1)

    one = const(np.ones((1, 1), np.float32))
    filled = node("Concat", [node("Slice", ["filled", shape(1), shape(context), shape(1)]), one], axis=1)
    mask = node("Mul", [node("Sub", [filled, one]), const(np.float32(-MASKED))])
    bias = node("Add", [const(slot_bias(heads, context)[None, :, None, :]),
                        node("Reshape", [mask, shape(1, 1, 1, context)])])
    x = node("Gather", [const(weights.embedding), "token"])  # [1, W]
    outputs = []
    for i, block in enumerate(weights.blocks):
        qkv = linear(layer_norm(x, block["ln_1_gamma"], block["ln_1_beta"]), block["qkv_kernel"], block["qkv_bias"])
        q, k, v = f"q{i}", f"k{i}", f"v{i}"
        nodes.append(helper.make_node("Split", [qkv, shape(width, width, width)], [q, k, v], axis=1))
        keys, values = shifted(f"layer{i}_k", k), shifted(f"layer{i}_v", v)
        outputs += [keys, values]
        keys_t = node("Transpose", [node("Reshape", [keys, shape(1, context, heads, size)])], perm=[0, 2, 3, 1])
        scores = node("MatMul", [node("Reshape", [q, shape(1, heads, 1, size)]), keys_t])
        scores = node("Add", [node("Mul", [scores, const(np.float32(1.0 / size ** 0.5))]), bias])
        attention = node("Softmax", [scores], axis=-1)
        values_t = node("Transpose", [node("Reshape", [values, shape(1, context, heads, size)])], perm=[0, 2, 1, 3])
        y = node("Reshape", [node("MatMul", [attention, values_t]), shape(1, width)])
        x = node("Add", [x, linear(y, block["proj_kernel"], block["proj_bias"])])
        hidden = linear(layer_norm(x, block["ln_2_gamma"], block["ln_2_beta"]), block["fc_kernel"], block["fc_bias"])
        erf = node("Erf", [node("Mul", [hidden, const(np.float32(2 ** -0.5))])])
        hidden = node("Mul", [node("Mul", [hidden, const(np.float32(0.5))]), node("Add", [erf, const(np.float32(1))])])
        x = node("Add", [x, linear(hidden, block["fc_proj_kernel"], block["fc_proj_bias"])])
    logits = linear(layer_norm(x, weights.ln_f_gamma, weights.ln_f_beta), weights.dense_kernel, weights.dense_bias)
    for name, value in zip(["logits", *(f"next_{n}" for n in weights.state_names)], [logits, *outputs, filled]):
        nodes.append(helper.make_node("Identity", [value], [name]))

    vocab = weights.embedding.shape[0]
    states = list(zip(weights.state_names, weights.state_widths))
    graph = helper.make_graph(
        nodes, "kerasrnn_gpt_step", initializer=inits,
        inputs=[helper.make_tensor_value_info("token", TensorProto.INT32, [1]),
                *(helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, w]) for n, w in states)],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, vocab]),
                 *(helper.make_tensor_value_info(f"next_{n}", TensorProto.FLOAT, [1, w]) for n, w in states)])
    return serialized(graph)
