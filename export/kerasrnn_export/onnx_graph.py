"""The ONNX step model, built directly from the weights with onnx.helper (no converter).

The graph takes `token` int32 [T] with T dynamic: T = 1 is the "step" signature and any T >= 1 the
"steps" signature (one run primes with a whole prime). Gather -> one ONNX LSTM/GRU/RNN op per
layer (which loops over T inside the runtime) -> Gemm on the last hidden state.

The batch graph (`build(weights, batched=True)`) takes `token` int32 [B, T] and states [B, H] with B
dynamic too: B streams of T tokens each, the same math row by row.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13        # onnxruntime >= 1.6 (its compatibility table); IR version 7 for the same reason
IR_VERSION = 7
ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _onnx_gate_order(matrix, cell):
    """Rows of a [gates * H, ...] matrix from Keras gate order to ONNX's (LSTM: i,f,c,o -> i,o,f,c)."""
    if cell != "lstm":
        return matrix  # GRU: z, r, h in both; RNN: one gate
    i, f, c, o = np.split(matrix, 4, axis=0)
    return np.concatenate([i, o, f, c], axis=0)


def build(weights, batched=False):
    """The serialized ONNX model: batch 1 (token [T], states [1, H]), or `batched` (token [B, T], states [B, H])."""
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kerasrnn")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()
