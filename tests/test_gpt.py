"""The GPT (kerasrnn/models/gpt.py): its step model with a cache against the full-sequence model, within and past
the attention window (export/SPEC.md, "Transformer step models"), and training resumed against a run that
never stopped. Backend-independent: tests/test_backends.py runs this file under each backend."""
import math
import os

import keras
import numpy as np

from conftest import shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.models.gpt import KerasGPTStep, build_gpt
from kerasrnn.run import load_model, load_vocab
from kerasrnn.train import train

VOCAB = 23


def random_gpt(num_layers, context):
    """A GPT with random weights, scaled up so that attention is far from uniform."""
    keras.utils.set_random_seed(4)
    model = build_gpt(VOCAB, 1, None, num_layers=num_layers, num_heads=4, width=32, context=context)
    for weight in model.trainable_weights:
        if "kernel" in weight.path:
            weight.assign(keras.ops.convert_to_numpy(weight.value) * 2.0)
    return model


def stepped(model, ids):
    step = KerasGPTStep(model)
    return np.stack([step.feed([i]) for i in ids])


def full(model, ids):
    return keras.ops.convert_to_numpy(model(np.asarray(ids, np.int32)[None]))[0]


def test_step_model_with_its_cache_equals_the_full_sequence_model_over_300_positions():
    """A window of 64: the positions past it take the sliding window in both."""
    model = random_gpt(num_layers=2, context=64)
    ids = np.random.default_rng(1).integers(0, VOCAB, 300)
    expected = full(model, ids)
    np.testing.assert_allclose(stepped(model, ids), expected, atol=1e-4)
    assert np.abs(expected).max() > 1  # logits that differ between positions, not a constant


def test_past_the_window_a_position_sees_the_last_context_positions_alone():
    """SPEC.md: one block attends to the last `context` positions, at ALiBi's relative distances, so its
    logits at any position are those of the same model reading those positions alone from an empty cache."""
    context = 16
    model = random_gpt(num_layers=1, context=context)
    ids = np.random.default_rng(2).integers(0, VOCAB, 100)
    logits = stepped(model, ids)
    for i in (context - 1, context, 57, 99):
        np.testing.assert_allclose(logits[i], full(model, ids[i - context + 1:i + 1])[-1], atol=1e-4)
    wider = random_gpt(num_layers=1, context=100)  # the same weights, attending to all 58 positions
    assert not np.allclose(logits[57], full(wider, ids[:58])[-1], atol=1e-3)


def tiny_gpt(text, **overrides):
    return Config(**{**dict(text=text, model="gpt", num_layers=2, num_heads=2, embedding_size=16, context=16,
                            batch_size=4, seq_length=16, learning_rate=1e-2, eval_every=1000, dropout=0.1,
                            ema=0.9), **overrides})


def test_resumed_training_equals_a_run_that_never_stopped(tmp_path):
    """Dropout and weight averaging included; each checkpoint's start token set."""
    text = shakespeare_slice(tmp_path, 3000)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train(tiny_gpt(text, max_epochs=2), straight, verbose=0)
    train(tiny_gpt(text, max_epochs=1), resumed, verbose=0)
    records = train(tiny_gpt(text, max_epochs=2), resumed, resume=True, verbose=0)
    assert records["last"]["keras_epoch"] == 1
    a, b = load_model(os.path.join(straight, "last.keras")), load_model(os.path.join(resumed, "last.keras"))
    assert int(a.optimizer.iterations.value) == int(b.optimizer.iterations.value) > 0
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(wa.value), keras.ops.convert_to_numpy(wb.value),
                                   atol=1e-5, err_msg=wa.path)
    assert records["best"]["val_loss"] < math.log(load_vocab(straight).size) - 0.5  # it learned
    start = int(keras.ops.convert_to_numpy(a.get_layer("decoder").start_token.value))
    assert start == load_vocab(straight).encode("\n")[0]  # sampling starts after a paragraph break
