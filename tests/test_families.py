"""A model family is one file. This one defines a toy family, registers it, and holds it to what the built-in
families do: it trains through `kerasrnn.Run.train`, samples, resumes exactly, exports to TFLite and ONNX, and
`kerasrnn-edge sample` of its bundle prints `kerasrnn sample`'s text. Nothing outside this file knows it.

The toy: an embedding, then one Dense layer over the embeddings of the last two tokens; its state is the
previous token's embedding (carried between stateful batches, and between sampling steps)."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers, ops

import kerasrnn
from conftest import run_cli, shakespeare_slice
from kerasrnn import models
from kerasrnn.models.language_model import StateLayer, get_start
from kerasrnn.run import load_model
from kerasrnn_export.onnx_graph import serialized
from kerasrnn_export.step_graphs import StepGraphs

SAMPLE = dict(prime="First", length=120, temperature=0.8, seed=3)


@keras.saving.register_keras_serializable(package="kerasrnn_tests")
class PreviousToken(StateLayer):
    """[batch, T, E] -> [batch, T, 2E]: each position's embedding after the previous position's (at the first
    position, the last one of the previous call, carried in the state)."""

    def build(self, input_shape):
        self.add_state(input_shape[0], [("previous", input_shape[-1])])

    def call(self, x):
        carried = ops.cast(self.state_weights[0].value, x.dtype)[:, None]
        previous = ops.concatenate([carried, x[:, :-1]], axis=1)
        self.carry([ops.cast(x[:, -1], "float32")])
        return ops.concatenate([previous, x], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * input_shape[-1])


class Toy(models.Family):
    name, preset, core_class = "toy", "tiny", PreviousToken
    shape = ("embedding_size",)

    def args(self, config):
        return {"embedding_size": config.embedding_size}

    def logits(self, tokens, vocab_size, embedding_size=16):
        x = layers.Embedding(vocab_size, embedding_size, name="embedding")(tokens)
        return layers.Dense(vocab_size, name="logits")(PreviousToken(name="previous_token")(x))

    def layer_names(self, config):
        return []

    def step_graphs(self, model):
        def numpy(variable):
            return np.asarray(ops.convert_to_numpy(variable), np.float32)
        embedding = numpy(model.get_layer("embedding").embeddings)
        kernel, bias = numpy(model.get_layer("logits").kernel), numpy(model.get_layer("logits").bias)
        (vocab, width), (start_token, start_state) = embedding.shape, get_start(model)

        def tf_step(batch):
            import tensorflow as tf

            class Step(tf.Module):
                def __init__(self):
                    super().__init__()
                    self.embedding, self.kernel, self.bias = map(tf.Variable, (embedding, kernel, bias))

                def forward(self, token, states):
                    x = tf.gather(self.embedding, token)
                    return tf.matmul(tf.concat([states[0], x], axis=1), self.kernel) + self.bias, [x]
            return Step()

        def onnx_step(batched):
            from onnx import TensorProto, helper, numpy_helper
            inits = [numpy_helper.from_array(a, n) for n, a in (("embedding", embedding), ("kernel", kernel),
                                                                 ("bias", bias))]
            nodes = [helper.make_node("Gather", ["embedding", "token"], ["next_previous"]),
                     helper.make_node("Concat", ["previous", "next_previous"], ["joined"], axis=1),
                     helper.make_node("Gemm", ["joined", "kernel", "bias"], ["logits"])]
            return serialized(helper.make_graph(
                nodes, "toy_step", initializer=inits,
                inputs=[helper.make_tensor_value_info("token", TensorProto.INT32, [1]),
                        helper.make_tensor_value_info("previous", TensorProto.FLOAT, [1, width])],
                outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, vocab]),
                         helper.make_tensor_value_info("next_previous", TensorProto.FLOAT, [1, width])]))

        return StepGraphs(model={"type": "toy", "embedding_size": width}, vocab_size=vocab,
                          state_names=["previous"], state_widths=[width], start_token=start_token,
                          start_state=[np.asarray(s, np.float32) for s in start_state], tf_step=tf_step,
                          onnx_step=onnx_step, onnx_steps=False)


@pytest.fixture
def toy():
    family = models.register(Toy())
    yield family
    models.unregister(family.name)


def train_toy(run_dir, text, **options):
    return kerasrnn.Run.train(run_dir, text=text, model="toy", embedding_size=16, batch_size=4, seq_length=16,
                              eval_every=1000, learning_rate=1e-2, lr_schedule="constant", ema=0.9, verbose=0,
                              **options)


def test_a_family_in_one_file_trains_resumes_samples_and_exports(toy, tmp_path):
    text = shakespeare_slice(tmp_path, 4000)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    run = train_toy(straight, text, max_epochs=2)
    assert models.family_of(run.model) is toy and run.config.model == "toy"
    assert run.record["val_loss"] < np.log(run.vocab.size) - 0.5  # it learned

    train_toy(resumed, text, max_epochs=1)
    train_toy(resumed, text, max_epochs=2, resume=True)
    a, b = load_model(os.path.join(straight, "last.keras")), load_model(os.path.join(resumed, "last.keras"))
    assert int(a.optimizer.iterations.value) == int(b.optimizer.iterations.value) > 0
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_allclose(ops.convert_to_numpy(wa.value), ops.convert_to_numpy(wb.value), atol=1e-6,
                                   err_msg=wa.path)

    sampled = run.sample(**SAMPLE)
    assert sampled.startswith("First") and len(sampled) == len("First") + SAMPLE["length"]
    assert run.sample(**SAMPLE) == sampled  # a seed gives one text
    bundle = str(tmp_path / "bundle")
    manifest = run.export(bundle)
    assert {f["path"] for f in manifest["files"]} == {"step_fp32.tflite", "step_int8.tflite", "step.onnx"}
    assert manifest["state"] == [{"name": "previous", "shape": [1, 16], "dtype": "float32"}]
    for runtime in ("ai-edge-litert", "onnxruntime"):
        edge = subprocess.run([sys.executable, "-m", "kerasrnn_edge.cli", "sample", bundle, "--runtime", runtime,
                               "--prime", "First", "--length", "120", "--temperature", "0.8", "--seed", "3"],
                              capture_output=True, text=True, timeout=300)
        assert edge.returncode == 0, edge.stderr
        assert edge.stdout == sampled + "\n", runtime


def test_a_family_refuses_the_options_of_the_others(toy, tmp_path):
    """Its own options are the shape it declares; the built-in families' are refused in one line."""
    text = shakespeare_slice(tmp_path, 2000)
    with pytest.raises(kerasrnn.KerasrnnError, match="num_heads= is not read by model='toy'"):
        train_toy(str(tmp_path / "heads"), text, num_heads=2)
    with pytest.raises(kerasrnn.KerasrnnError, match="cell=, rnn_size= are not read by model='toy'"):
        train_toy(str(tmp_path / "cell"), text, cell="gru", rnn_size=32)
    assert not os.path.exists(tmp_path / "heads") and not os.path.exists(tmp_path / "cell")


def test_the_command_line_refuses_a_family_it_does_not_know(tmp_path):
    """A family registered in another process is not a choice here: one line naming the registered ones."""
    result = run_cli("train", "--model", "toy", "--text", shakespeare_slice(tmp_path, 2000), "--run-dir",
                     tmp_path / "run")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--model must be one of rnn, gpt, mingru, minlstm (got 'toy')" in result.stderr
