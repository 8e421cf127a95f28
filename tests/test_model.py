"""The model's own math: the fused cuDNN LSTM stack against Keras's per-layer one, and locked dropout.

The fused path runs on JAX with a GPU. Its weight packing is checked here on CPU against
jax.experimental.rnn.lstm_ref, JAX's reference for the cuDNN kernel (same signature, same layout)."""
import keras
import numpy as np
import pytest

from kerasrnn.model import StatefulRecurrent, build_model, fused_lstm, get_states, reset_states

jax = pytest.importorskip("jax")
from jax.experimental import rnn  # noqa: E402

B, T, E, H, L = 3, 7, 5, 6, 3


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


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the fused path is JAX's")
def test_fit_through_the_fused_path_equals_fit_through_the_per_layer_path(monkeypatch):
    """The whole layer on the fused path, as on a GPU, with cuDNN's kernel replaced by JAX's reference
    for it: training and the carried state come out as on the per-layer path."""
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
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    traced = []
    monkeypatch.setattr(rnn, "lstm", lambda *args, **kwargs: traced.append(kwargs) or reference_lstm(*args, **kwargs))
    got_weights, got_states = fit(fused=True)
    assert traced and all(kwargs["num_layers"] == L for kwargs in traced)
    for g, w in zip(got_weights + got_states, want_weights + want_states):
        np.testing.assert_allclose(g, w, atol=1e-4)
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
