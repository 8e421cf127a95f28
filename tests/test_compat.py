"""The fence around private attributes (kerasrnn/compat.py): a release that renames any one of them turns
its fast path off with one warning line, and training gives what Keras's own per-layer path gives."""
import dataclasses

import keras
import numpy as np
import pytest

from conftest import only_on
from kerasrnn import compat
from kerasrnn.distribute import probe_whole_variables
from kerasrnn.models.language_model import core
from kerasrnn.models.recurrent import build_model

on_torch = only_on("torch", "the torch fast paths")
on_jax = only_on("jax", "the JAX fast path")
TORCH_PATHS = [path for path in compat.PRIVATE if path.startswith("torch")]
B, T, V = 3, 7, 11


def rename(monkeypatch, path, name):
    """`path`'s attribute `name` as a release that renamed it: compat looks for it and does not find it."""
    private = compat.PRIVATE[path][name]
    monkeypatch.setitem(compat.PRIVATE[path], name, dataclasses.replace(private, attribute=private.attribute + "_renamed"))


def fit(fused):
    """Two passes of `fit` with clipping and Adam: every torch fast path runs where it is on. Returns the
    model, and its weights and the loss `fit` logged after each batch."""
    rng = np.random.default_rng(3)
    x, y = (rng.integers(0, V, size=(5 * B, T)).astype("int32") for _ in range(2))
    keras.utils.set_random_seed(4)
    model = build_model(V, B, T, rnn_size=6, num_layers=2, embedding_size=5, fused=fused)
    model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=1.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = []
    logged = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"])))
    model.fit(x, y, batch_size=B, epochs=2, shuffle=False, verbose=0, callbacks=[logged])
    return model, [keras.ops.convert_to_numpy(w) for w in model.weights] + [np.array(losses)]


@pytest.fixture
def fresh(monkeypatch):
    """compat decides once per process: each case decides again."""
    monkeypatch.setattr(compat, "_enabled", {})


def warnings_in(capfd):
    return [line for line in capfd.readouterr().err.splitlines() if line.startswith("kerasrnn: warning")]


@on_torch
def test_every_fast_path_is_on_here(fresh, capfd):
    """The baseline the cases below depart from: with the installed releases, each torch fast path is on."""
    model, _ = fit(fused=True)
    assert warnings_in(capfd) == []
    assert core(model).runs_fused()
    assert all(compat._enabled[path] for path in TORCH_PATHS)


@on_torch
def test_deciding_the_fast_paths_draws_nothing_from_pytorchs_generator(monkeypatch):
    """The first `fit` in a process decides the fast paths (their probes run), a later one reads the decisions: both
    leave PyTorch's default generator, which Keras's dropout draws from, in the same state. Otherwise a process's
    first run trains with other dropout masks than its later ones (a run never stopped against a resumed one)."""
    import torch
    after = []
    for decide in (True, False):
        if decide:
            monkeypatch.setattr(compat, "_enabled", {})
        fit(fused=True)  # seeds the generator first
        after.append(torch.get_rng_state())
    assert torch.equal(after[0], after[1])


@on_torch
@pytest.mark.parametrize("path, name", [(p, n) for p in TORCH_PATHS for n in compat.PRIVATE[p]])
def test_a_renamed_private_attribute_turns_its_fast_path_off(path, name, fresh, monkeypatch, capfd):
    rename(monkeypatch, path, name)
    model, got = fit(fused=True)
    lines = warnings_in(capfd)
    assert len(lines) == 1, lines
    assert f"fast path {path} is off" in lines[0] and str(compat.PRIVATE[path][name]) in lines[0]
    assert compat.FALLBACK[path] in lines[0]
    assert {p: compat._enabled[p] for p in TORCH_PATHS} == {p: p != path for p in TORCH_PATHS}
    assert core(model).runs_fused() == (path != "torch-fused-rnn")
    transposed = [not w.value.is_contiguous() for w in model.trainable_weights]  # kernels in PyTorch's layout
    assert any(transposed) == (path != "torch-transposed-layout")

    for other in TORCH_PATHS:  # the reference: every fast path off, one Keras layer at a time
        for other_name in compat.PRIVATE[other]:
            if (other, other_name) != (path, name):
                rename(monkeypatch, other, other_name)
    monkeypatch.setattr(compat, "_enabled", {})
    _, want = fit(fused=False)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)


@on_jax
def test_the_jax_fast_path_is_on_here(fresh, capfd):
    """Saving variables spread over processes replaces an attribute Keras sets on each Variable (not on its
    class): the installed Keras has it, and replacing it changes what the Variable reads."""
    assert compat.enabled("jax-whole-variables", probe_whole_variables)
    assert warnings_in(capfd) == []


@on_jax
def test_a_renamed_jax_attribute_turns_its_fast_path_off(fresh, monkeypatch, capfd):
    rename(monkeypatch, "jax-whole-variables", "value")
    assert not compat.enabled("jax-whole-variables", probe_whole_variables)
    (line,) = warnings_in(capfd)
    assert "keras.Variable._value_renamed is missing" in line and compat.FALLBACK["jax-whole-variables"] in line


def int8_scales(fenced):
    """The number of scales of each int8 weight tensor of a small LSTM's int8 step model."""
    from ai_edge_litert.interpreter import Interpreter

    from kerasrnn.export import int8_weights
    from kerasrnn.models import family_of
    from kerasrnn_export import tflite
    model = build_model(V, 1, None, rnn_size=16, num_layers=1, embedding_size=8)
    bytes_ = tflite.convert(family_of(model).step_graphs(model), int8_weights)
    assert compat.enabled("tflite-per-tensor-dense", lambda: None) == fenced
    interpreter = Interpreter(model_content=bytes_)
    return [len(t["quantization_parameters"]["scales"]) for t in interpreter.get_tensor_details()
            if t["dtype"] == np.int8]


@only_on("tensorflow", "the TFLite converter")
def test_the_int8_files_quantize_dense_layers_per_tensor_and_per_channel_without_the_private_flag(
        fresh, monkeypatch, capfd):
    """tflite-runtime 2.14 loads per-tensor dense scales only (tests/test_edge_venvs.py runs it): the converter's
    private flag asks for them; a release without it gives per-channel scales, with one warning line."""
    scales = int8_scales(fenced=True)
    assert scales and set(scales) == {1} and warnings_in(capfd) == []
    monkeypatch.setattr(compat, "_enabled", {})
    rename(monkeypatch, "tflite-per-tensor-dense", "flag")
    assert max(int8_scales(fenced=False)) > 1
    (line,) = warnings_in(capfd)
    assert "fast path tflite-per-tensor-dense is off" in line and compat.FALLBACK["tflite-per-tensor-dense"] in line
