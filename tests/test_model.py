"""The model's own math: the fused stacks against Keras's per-layer one, and locked dropout.

On torch, the fused path is PyTorch's own LSTM and GRU (oneDNN's fused RNN on a CPU for the LSTM), and
its tests run the real kernel on any machine. On JAX, the fused path runs with a GPU. On a CPU, cuDNN's kernel is replaced by
jax.experimental.rnn.lstm_ref, JAX's reference for it (same signature, same weight layout); on the
GPU host (KERAS_BACKEND=jax pytest tests/test_model.py) the same checks run against cuDNN itself."""
import keras
import numpy as np
import pytest

from conftest import only_on
from kerasrnn.models.language_model import copy_weights, core, get_states, reset_states, set_states
from kerasrnn.models.recurrent import StatefulRecurrent, build_model

B, T, E, H, L = 3, 7, 5, 6, 3
KERNELS = {"lstm": "lstm", "gru": "gru", "rnn": "rnn_tanh"}  # the aten op of each cell's fused kernel


def random_model(cell, num_layers, fused, seed=0, **options):
    """A model whose every weight and state is random, so that a misplaced bias, gate or state shows."""
    model = build_model(11, B, T, cell=cell, rnn_size=H, num_layers=num_layers, embedding_size=E, fused=fused,
                        **options)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.dtype == "float32":
            weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    return model


@only_on("torch", "the fused torch path")
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_torch_fused_stack_equals_the_per_layer_stack(cell, num_layers):
    """PyTorch's kernel against Keras's per-layer layers on the same weights: outputs, final states and
    the gradient of every weight."""
    import torch
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 11, size=(B, T)).astype("int32"), rng.integers(0, 11, size=(B, T)).astype("int32")

    def run(fused):
        model = random_model(cell, num_layers, fused)
        assert core(model).runs_fused() == fused
        with torch.profiler.profile() as profile:
            logits = model(x, training=True)
            loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            grads = torch.autograd.grad(loss, [v.value for v in model.trainable_variables])
        kernels = {event.key for event in profile.key_averages()}
        return (keras.ops.convert_to_numpy(logits), get_states(model), [keras.ops.convert_to_numpy(g) for g in grads],
                kernels)

    want_logits, want_states, want_grads, _ = run(fused=False)
    got_logits, got_states, got_grads, kernels = run(fused=True)
    assert f"aten::{KERNELS[cell]}" in kernels
    if torch.cuda.is_available():
        assert "aten::_cudnn_rnn_backward" in kernels
    elif cell == "lstm" and torch.backends.mkldnn.is_available():
        assert "aten::mkldnn_rnn_layer_backward" in kernels  # oneDNN's fused RNN, forward and backward
    tolerance = 2e-3 if torch.cuda.is_available() else 1e-5  # cuDNN computes in TF32 by default
    np.testing.assert_allclose(got_logits, want_logits, atol=tolerance)
    assert len(got_states) == len(want_states) == num_layers * (2 if cell == "lstm" else 1)
    for got, want in zip(got_states, want_states):
        np.testing.assert_allclose(got, want, atol=tolerance)
    assert len(got_grads) == len(want_grads)
    for got, want in zip(got_grads, want_grads):
        np.testing.assert_allclose(got, want, atol=tolerance)


@only_on("torch", "the fused torch path")
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fit_through_the_torch_fused_path_equals_fit_through_the_per_layer_path(cell):
    """Training through PyTorch's kernel: the weights and the carried state come out as on the per-layer path."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 11, size=(4, B, T)).astype("int32")
    y = rng.integers(0, 11, size=(4, B, T)).astype("int32")

    def fit(fused):
        model = random_model(cell, L, fused)
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for xb, yb in zip(x, y):
            model.train_on_batch(xb, yb)
        return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights], get_states(model)

    want_weights, want_states = fit(fused=False)
    got_weights, got_states = fit(fused=True)
    for got, want in zip(got_weights + got_states, want_weights + want_states):
        np.testing.assert_allclose(got, want, atol=1e-4)


@only_on("torch", "the fused torch path")
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_deep_stack_trained_with_dropout_runs_a_fused_kernel_per_layer(cell):
    """With dropout between layers, training calls PyTorch's kernel once per layer and Keras's dropout between
    the calls, which draws the masks the per-layer path draws: weights and carried state come out as there."""
    import torch
    rng = np.random.default_rng(6)
    x = rng.integers(0, 11, size=(4, B, T)).astype("int32")
    y = rng.integers(0, 11, size=(4, B, T)).astype("int32")

    def fit(fused):
        keras.utils.set_random_seed(7)
        model = random_model(cell, L, fused, dropout=0.3)
        assert core(model).runs_fused() == fused  # (compat's probe of the kernel runs here, once)
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.train_on_batch(x[0], y[0])  # the first step also builds (one call of the whole stack)
        with torch.profiler.profile() as profile:
            for xb, yb in zip(x[1:], y[1:]):
                model.train_on_batch(xb, yb)
        calls = sum(event.count for event in profile.key_averages() if event.key == f"aten::{KERNELS[cell]}")
        return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights], get_states(model), calls

    want_weights, want_states, _ = fit(fused=False)
    got_weights, got_states, calls = fit(fused=True)
    assert calls == (len(x) - 1) * L  # one call per layer and step
    for got, want in zip(got_weights + got_states, want_weights + want_states):
        np.testing.assert_allclose(got, want, atol=1e-4)


@only_on("torch", "LanguageModel's own steps run on torch")
@pytest.mark.parametrize("dropout", [0.3, 0.0], ids=["dropout-between-layers", "no-dropout"])
@pytest.mark.parametrize("metrics", [["accuracy"], []], ids=["accuracy", "loss-only"])
def test_the_torch_steps_equal_keras_own_steps(dropout, metrics, monkeypatch):
    """On torch, LanguageModel's training and validation steps call each layer's `call` and score flattened
    logits, and keep the optimizer's moments in the memory layout of the fused LSTM's kernels, so that
    PyTorch's fused Adam updates them from the first step; through `fit` (with dropout on the inputs and
    between layers, with a compiled metric and with the loss alone, and validation) they give what Keras's
    own steps give."""
    from kerasrnn.backends import torch as fast
    took = fast.calls_layers_directly
    rng = np.random.default_rng(3)
    x = rng.integers(0, 11, size=(5, B, T)).astype("int32")
    y = rng.integers(0, 11, size=(5, B, T)).astype("int32")

    def fit(direct):
        keras.utils.set_random_seed(4)
        model = build_model(11, B, T, rnn_size=H, num_layers=2, embedding_size=E, dropout=dropout,
                            input_dropout=0.2, locked_dropout=True)
        assert core(model).runs_fused()
        model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=1.0),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=metrics)
        steps = []
        monkeypatch.setattr(fast, "calls_layers_directly",
                            lambda *args: steps.append(took(*args)) or steps[-1] if direct else False)
        history = model.fit(x.reshape(-1, T), y.reshape(-1, T), batch_size=B, epochs=2, shuffle=False, verbose=0,
                            validation_data=(x[:2].reshape(-1, T), y[:2].reshape(-1, T))).history
        assert all(steps) and len(steps) == direct * 2 * (5 + 2)  # every training and validation step
        fused_steps = getattr(model.optimizer._parallel_update_step, "fused_steps", 0)
        assert fused_steps == direct * 2 * 5  # every training step
        if direct:
            kernels = [w for rnn in core(model).rnns for w in (rnn.cell.kernel, rnn.cell.recurrent_kernel)]
            assert all(w.value.t().is_contiguous() for w in kernels)  # PyTorch's layout in memory
            strides = {w.path.replace("/", "_"): w.value.stride() for w in model.trainable_weights}
            slots = [v for v in model.optimizer.variables if v.name.rsplit("_", 1)[0] in strides]
            assert len(slots) == 2 * len(strides)  # Adam's two moments per weight
            assert all(v.value.stride() == strides[v.name.rsplit("_", 1)[0]] for v in slots)
        return history, [keras.ops.convert_to_numpy(w) for w in model.weights]

    want_history, want_weights = fit(direct=False)
    got_history, got_weights = fit(direct=True)
    names = {"loss", *metrics}
    assert got_history.keys() == want_history.keys() == names | {f"val_{name}" for name in names}
    for key in want_history:
        np.testing.assert_allclose(got_history[key], want_history[key], atol=1e-6)
    assert want_history["loss"][1] < want_history["loss"][0]  # it trains
    for got, want in zip(got_weights, want_weights):  # PyTorch's Adam takes its bias corrections in float64,
        np.testing.assert_allclose(got, want, atol=1e-5)  # Keras's in float32: 6e-6 of each step


@only_on("torch", "LanguageModel's own steps run on torch")
@pytest.mark.parametrize("loss, plain", [
    (keras.losses.SparseCategoricalCrossentropy(from_logits=True), True),
    (keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0), False),
    (keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum"), False),
], ids=["plain", "ignore_class", "sum"])
def test_the_torch_steps_score_the_compiled_loss(loss, plain):
    """The torch steps compute kerasrnn's own loss (mean from-logits cross-entropy) by one PyTorch call, and
    any other compiled loss through Keras: either way, the loss Keras's `compute_loss` gives."""
    from kerasrnn.backends import torch as fast
    model = build_model(11, B, T, rnn_size=H, num_layers=2, embedding_size=E)
    model.compile(keras.optimizers.Adam(), loss)
    rng = np.random.default_rng(5)
    x, y = (keras.ops.convert_to_tensor(rng.integers(0, 11, size=(B, T)).astype("int32")) for _ in range(2))
    assert fast.laid_out(model).plain_loss == plain
    got, flat_y, logits = fast.scored(model, x, y, training=False)
    want = model.compute_loss(x=x, y=flat_y, y_pred=logits, training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), rtol=1e-6)


def test_training_a_copy_leaves_the_source_model_whole():
    """copy_weights copies buffers: JAX's fit and evaluate donate the copy's, which, shared, deleted the source's."""
    source = build_model(11, B, T, rnn_size=H, num_layers=1, embedding_size=E)
    copy = build_model(11, 2 * B, T, rnn_size=H, num_layers=1, embedding_size=E)
    before = [keras.ops.convert_to_numpy(w.value) for w in source.weights]
    copy_weights(source, copy)
    copy.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).integers(0, 11, size=(4 * B, T)).astype("int32")
    copy.evaluate(x, x, batch_size=2 * B, verbose=0)
    copy.fit(x, x, batch_size=2 * B, verbose=0)
    for weight, value in zip(source.weights, before, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight.value), value)


jax = pytest.importorskip("jax")
from jax.experimental import rnn  # noqa: E402

from kerasrnn.backends.jax import fused_lstm  # noqa: E402


def reference_lstm(x, h0, c0, weights, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional):
    """jax.experimental.rnn.lstm's signature over its pure-JAX reference."""
    W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, bidirectional)
    return rnn.lstm_ref(x, h0, c0, W_ih, W_hh, b_ih, b_hh, seq_lengths, input_size, hidden_size, num_layers,
                        dropout, bidirectional)


def random_stack(seed=0):
    layer = StatefulRecurrent("lstm", H, L, fused=False)
    layer.build((B, T, E))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:  # random biases and states too, so a misplaced one shows
        weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    return layer


@only_on("jax", "the fused path is JAX's")
def test_fused_stack_equals_the_per_layer_stack():
    layer = random_stack()
    x = np.random.default_rng(1).normal(size=(B, T, E)).astype("float32")
    initial = get_values(layer.state_weights)
    want = keras.ops.convert_to_numpy(layer(x))
    want_states = get_values(layer.state_weights)

    weights = [get_values([r.cell.kernel, r.cell.recurrent_kernel, r.cell.bias]) for r in layer.rnns]
    got, got_states = fused_lstm(x, initial, weights, reference_lstm)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
    assert len(got_states) == len(want_states) == 2 * L
    for g, w in zip(got_states, want_states):
        np.testing.assert_allclose(np.asarray(g), w, atol=1e-5)


def get_values(weights):
    return [keras.ops.convert_to_numpy(w.value) for w in weights]


ON_GPU = jax.default_backend() == "gpu"


@pytest.fixture
def fused_kernel(monkeypatch):
    """Where no GPU is at hand, cuDNN's kernel is replaced by JAX's reference, for the fused path and for
    Keras's per-layer one (which calls it one layer at a time, as on a GPU). Yields the calls traced,
    and the tolerance (cuDNN computes in TF32 by default)."""
    traced = []
    if not ON_GPU:
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
        monkeypatch.setattr(rnn, "lstm", lambda *a, **kw: traced.append(kw) or reference_lstm(*a, **kw))
    yield traced, (2e-3 if ON_GPU else 1e-5)


@only_on("jax", "the fused path is JAX's")
def test_fused_loss_and_gradients_equal_the_per_layer_ones(fused_kernel):
    traced, tolerance = fused_kernel
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 11, size=(B, T)).astype("int32"), rng.integers(0, 11, size=(B, T)).astype("int32")
    state = [rng.normal(0, 0.5, (B, H)).astype("float32") for _ in range(2 * L)]

    def loss_and_gradients(fused):
        keras.utils.set_random_seed(7)
        model = build_model(11, B, T, cell="lstm", rnn_size=H, num_layers=L, embedding_size=E, fused=fused)
        set_states(model, state)

        def loss(trainable):
            non_trainable = [v.value for v in model.non_trainable_variables]
            logits, _ = model.stateless_call(trainable, non_trainable, x, training=True)
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        value, grads = jax.value_and_grad(loss)([v.value for v in model.trainable_variables])
        return float(value), [np.asarray(g) for g in grads]

    want_loss, want_grads = loss_and_gradients(fused=False)
    got_loss, got_grads = loss_and_gradients(fused=True)
    assert ON_GPU or any(kwargs["num_layers"] == L for kwargs in traced)
    assert got_loss == pytest.approx(want_loss, rel=tolerance)
    for got, want in zip(got_grads, want_grads):
        assert np.linalg.norm(got - want) <= tolerance * np.linalg.norm(want) + 1e-7


@only_on("jax", "the fused path is JAX's")
def test_fit_through_the_fused_path_equals_fit_through_the_per_layer_path(fused_kernel):
    """Training through the fused path: the weights and the carried state come out as on the per-layer path."""
    traced, tolerance = fused_kernel
    rng = np.random.default_rng(2)
    x = rng.integers(0, 11, size=(4, B, T)).astype("int32")
    y = rng.integers(0, 11, size=(4, B, T)).astype("int32")

    def fit(fused):
        keras.utils.set_random_seed(5)
        model = build_model(11, B, T, cell="lstm", rnn_size=H, num_layers=L, embedding_size=E, fused=fused)
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for xb, yb in zip(x, y):
            model.train_on_batch(xb, yb)
        return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights], get_states(model)

    want_weights, want_states = fit(fused=False)
    got_weights, got_states = fit(fused=True)
    assert ON_GPU or any(kwargs["num_layers"] == L for kwargs in traced)
    for g, w in zip(got_weights + got_states, want_weights + want_states):
        np.testing.assert_allclose(g, w, atol=100 * tolerance)
    assert not np.allclose(want_states[0], 0)


def test_locked_dropout_keeps_one_mask_per_sequence():
    model = build_model(11, B, T, rnn_size=H, num_layers=2, embedding_size=E, dropout=0.5, input_dropout=0.5,
                        locked_dropout=True)
    ones = np.ones((B, T, E), "float32")
    dropped = keras.ops.convert_to_numpy(model.get_layer("input_dropout")(ones, training=True))
    assert (dropped == 0).any() and (dropped == 2).any()
    np.testing.assert_array_equal(dropped, np.repeat(dropped[:, :1], T, axis=1))
    for dropout in model.get_layer("recurrent").dropouts:
        dropped = keras.ops.convert_to_numpy(dropout(np.ones((B, T, H), "float32"), training=True))
        np.testing.assert_array_equal(dropped, np.repeat(dropped[:, :1], T, axis=1))

    unlocked = build_model(11, B, T, embedding_size=E, input_dropout=0.5)
    dropped = keras.ops.convert_to_numpy(unlocked.get_layer("input_dropout")(ones, training=True))
    assert not np.array_equal(dropped, np.repeat(dropped[:, :1], T, axis=1))
    reset_states(model)
