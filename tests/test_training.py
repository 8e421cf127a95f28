"""Truncated BPTT inside fit: the state, its resets, validation, resume. Runs on the current backend;
test_backends.py runs this file again under the other one."""
import os

import keras
import numpy as np
import pytest

from conftest import shakespeare_slice
from kerasrnn.callbacks import TBPTTSchedule
from kerasrnn.config import Config
from kerasrnn.corpus import load_ids
from kerasrnn.data import StreamBatches, split, start_context
from kerasrnn.models.language_model import copy_weights, get_rng_states, get_start, get_states, reset_states, set_rng_states
from kerasrnn.models.recurrent import build_model
from kerasrnn.run import load_model
from kerasrnn.train import train

B, T = 3, 5


class StateLog(keras.callbacks.Callback):
    """Records the recurrent state at every point where the schedule acts."""

    def __init__(self):
        super().__init__()
        self.events = []

    def _log(self, event, epoch=None):
        self.events.append((event, epoch, get_states(self.model)))

    def on_epoch_begin(self, epoch, logs=None):
        self._log("epoch_begin", epoch)

    def on_test_begin(self, logs=None):
        self._log("test_begin")

    def on_test_end(self, logs=None):
        self._log("test_end")

    def on_epoch_end(self, epoch, logs=None):
        self._log("epoch_end", epoch)
        self.events[-1] += (logs["val_loss"],)


def step_streams(model, streams):
    """Feeds each stream one character at a time through a batch-1 copy of `model` from zero state;
    returns its final states and the per-character cross-entropy."""
    stepper = build_model(model.output_shape[-1], 1, 1, **MODEL)
    copy_weights(model, stepper)
    finals, losses = [], []
    for stream in streams:
        reset_states(stepper)
        for t in range(len(stream) - 1):
            logits = keras.ops.convert_to_numpy(stepper(stream[None, t:t + 1].astype(np.int32)))[0, 0]
            losses.append(np.logaddexp.reduce(logits) - logits[stream[t + 1]])
        finals.append(get_states(stepper))
    return [np.concatenate([f[i] for f in finals]) for i in range(len(finals[0]))], np.mean(losses)


MODEL = dict(cell="lstm", rnn_size=8, num_layers=2, embedding_size=4)


def test_state_after_training_equals_stepping_and_resets_at_epoch_start_and_before_validation(tmp_path):
    vocab, ids = load_ids(shakespeare_slice(tmp_path, 400), "char")
    train_ids, val_ids, _ = split(ids, 0.75, 0.25)
    batches, val_batches = StreamBatches(train_ids, B, T), StreamBatches(val_ids, B, T, what="validation")
    model = build_model(vocab.size, B, T, **MODEL)
    # learning rate 0: the weights stay those of the stepping reference, only the state moves
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    log = StateLog()
    model.fit(batches, validation_data=val_batches, epochs=2, callbacks=[TBPTTSchedule(batches), log], verbose=0,
              shuffle=False)

    events = [(e, epoch) for e, epoch, *_ in log.events]
    assert events == [("epoch_begin", 0), ("test_begin", None), ("test_end", None), ("epoch_end", 0),
                      ("epoch_begin", 1), ("test_begin", None), ("test_end", None), ("epoch_end", 1)]
    per_stream = (len(train_ids) - 1) // B
    seen = len(batches) * T
    expected, _ = step_streams(model, [np.asarray(train_ids[i * per_stream: i * per_stream + seen + 1]) for i in range(B)])
    for epoch_begin, test_begin, test_end, epoch_end in (log.events[0:4], log.events[4:8]):
        for state in epoch_begin[2]:  # reset when the pass begins
            np.testing.assert_array_equal(state, 0)
        for state in test_begin[2]:  # reset before validation
            np.testing.assert_array_equal(state, 0)
        for got, want in zip(test_end[2], expected):  # training state put back after validation
            np.testing.assert_allclose(got, want, atol=1e-5)
        for got, want in zip(epoch_end[2], expected):
            np.testing.assert_allclose(got, want, atol=1e-5)

    # validation ran statefully over its own streams: its loss is the stepped cross-entropy
    val_per_stream = (len(val_ids) - 1) // B
    val_seen = len(val_batches) * T
    _, stepped_val_loss = step_streams(
        model, [np.asarray(val_ids[i * val_per_stream: i * val_per_stream + val_seen + 1]) for i in range(B)])
    assert log.events[3][3] == pytest.approx(stepped_val_loss, abs=1e-4)


def tiny_config(text, **overrides):
    settings = dict(text=text, batch_size=4, seq_length=16, rnn_size=16, num_layers=2, embedding_size=8,
                    learning_rate=1e-2, eval_every=1000)
    return Config(**{**settings, **overrides})


REGULARIZED = dict(dropout=0.2, input_dropout=0.1, locked_dropout=True, ema=0.9)


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "per-element"])
def test_two_epochs_equal_one_epoch_then_resume(tmp_path, locked):
    """Dropout included: locked masks come from Keras's seed generators on every backend, per-element masks
    on torch from PyTorch's generator (Keras's fast path there)."""
    text = shakespeare_slice(tmp_path, 3000)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    regularized = {**REGULARIZED, "locked_dropout": locked}
    train(tiny_config(text, max_epochs=2, **regularized), straight, verbose=0)
    train(tiny_config(text, max_epochs=1, **regularized), resumed, verbose=0)
    records = train(tiny_config(text, max_epochs=2, **regularized), resumed, resume=True, verbose=0)
    assert records["last"]["keras_epoch"] == 1
    a, b = load_model(os.path.join(straight, "last.keras")), load_model(os.path.join(resumed, "last.keras"))
    assert int(a.optimizer.iterations.value) == int(b.optimizer.iterations.value) > 0
    assert len(a.optimizer.variables) == len(b.optimizer.variables) > len(a.trainable_weights) * 3  # + averages
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(wa.value), keras.ops.convert_to_numpy(wb.value),
                                   atol=1e-5, err_msg=wa.path)
    history = open(os.path.join(resumed, "history.csv")).read().split()
    assert history[0] == "epoch,learning_rate,loss,seconds,step,val_loss" and len(history) == 3


def test_random_states_of_a_checkpoint_written_before_torch_generators_were_saved_still_load():
    """checkpoint.json's "rng" was the list of the seed generators' states; such a run still resumes."""
    model = build_model(11, 2, 4, rnn_size=8, num_layers=2, embedding_size=4, dropout=0.5, locked_dropout=True)
    saved = get_rng_states(model)
    x = keras.ops.ones((2, 4), "int32")
    model(x, training=True)  # draws: the generators move on
    assert get_rng_states(model)["seed_generators"] != saved["seed_generators"]
    set_rng_states(model, saved["seed_generators"])
    assert get_rng_states(model)["seed_generators"] == saved["seed_generators"]


def test_validation_every_n_steps_checkpoints_each_time(tmp_path):
    text = shakespeare_slice(tmp_path, 6000)
    records = train(tiny_config(text, max_epochs=1, eval_every=20), str(tmp_path / "run"), verbose=0)
    rows = open(tmp_path / "run" / "history.csv").read().split()[1:]
    assert len(rows) == 4 and records["last"]["step"] == 84
    assert records["best"]["val_loss"] == min(float(r.split(",")[-1]) for r in rows)
    assert os.path.exists(tmp_path / "run" / "loss.png")


def test_weight_averaging_validates_and_keeps_the_averaged_weights(tmp_path):
    """With --ema, validation runs on the moving average of the weights and best.keras holds it; the
    recorded validation loss is what the saved best.keras scores."""
    text = shakespeare_slice(tmp_path, 6000)
    config = tiny_config(text, max_epochs=1, ema=0.9)
    records = train(config, str(tmp_path / "run"), verbose=0)
    best, last = (load_model(str(tmp_path / "run" / f"{which}.keras")) for which in ("best", "last"))
    averages = last.optimizer._model_variables_moving_average
    for saved, average, raw in zip(best.trainable_weights, averages, last.trainable_weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(average), atol=1e-6)
        assert not np.allclose(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(raw))

    vocab, ids = load_ids(text, "char")
    _, val_ids, _ = split(ids, config.train_frac, config.val_frac)
    model = build_model(vocab.size, config.batch_size, config.seq_length, **config.model_args())
    copy_weights(best, model)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    val_loss = model.evaluate(StreamBatches(val_ids, config.batch_size, config.seq_length), verbose=0)
    assert val_loss == pytest.approx(records["best"]["val_loss"], abs=1e-5)


def test_validation_reads_at_most_val_tokens_from_the_start_of_its_part(tmp_path):
    """--val-tokens bounds validation (a corpus of any size): the recorded validation loss is best.keras's
    loss on the first val_tokens of the validation part, not on the whole part."""
    text = shakespeare_slice(tmp_path, 12_000)
    config = tiny_config(text, max_epochs=1, val_tokens=400)
    records = train(config, str(tmp_path / "run"), verbose=0)
    vocab, ids = load_ids(text, "char")
    _, val_ids, _ = split(ids, config.train_frac, config.val_frac)
    model = build_model(vocab.size, config.batch_size, config.seq_length, **config.model_args())
    copy_weights(load_model(str(tmp_path / "run" / "best.keras")), model)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    head, whole = (model.evaluate(StreamBatches(part, config.batch_size, config.seq_length), verbose=0)
                   for part in (val_ids[:400], val_ids))
    assert records["best"]["val_loss"] == pytest.approx(head, abs=1e-5) and head != pytest.approx(whole, abs=1e-3)


def test_steps_per_execution_trains_the_same_model(tmp_path):
    """Several steps per compiled call (the GPU speed setting) keep truncated BPTT's state semantics:
    the same weights, state and validation loss as one step per call."""
    text = shakespeare_slice(tmp_path, 3000)
    runs = {spe: train(tiny_config(text, max_epochs=2, steps_per_execution=spe), str(tmp_path / f"spe{spe}"), verbose=0)
            for spe in (1, 4)}
    assert runs[1]["last"]["val_loss"] == pytest.approx(runs[4]["last"]["val_loss"], abs=1e-5)
    a, b = (load_model(str(tmp_path / f"spe{spe}" / "last.keras")) for spe in (1, 4))
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(wa.value), keras.ops.convert_to_numpy(wb.value),
                                   atol=1e-5, err_msg=wa.path)


def test_each_checkpoint_carries_the_start_state_of_its_own_weights(tmp_path):
    """best.keras (the averaged weights, with --ema) and last.keras (the training weights) each hold the
    state their weights reach reading the start context from zeros (here in one call of a batch-1 model;
    the checkpointer reads it in the training model's chunks), and the paragraph break's newline as the
    start token."""
    text = shakespeare_slice(tmp_path, 6000)
    config = tiny_config(text, max_epochs=1, ema=0.9)
    train(config, str(tmp_path / "run"), verbose=0)
    vocab, ids = load_ids(text, "char")
    train_ids = split(ids, config.train_frac, config.val_frac)[0]
    context, token = start_context(StreamBatches(train_ids, config.batch_size, config.seq_length).tokens, vocab,
                                   config.seq_length)
    assert vocab.decode([token]) == "\n" and vocab.decode(context[-1:]) == "\n" and len(context) > 0
    starts = {}
    for which in ("best", "last"):
        saved = load_model(str(tmp_path / "run" / f"{which}.keras"))
        reader = build_model(vocab.size, 1, None, **config.model_args())
        copy_weights(saved, reader)
        reset_states(reader)
        reader(context[None].astype(np.int32))
        starts[which] = get_start(saved)
        assert starts[which][0] == token
        for start, read in zip(starts[which][1], get_states(reader)):
            np.testing.assert_allclose(start, read[0], atol=1e-5, err_msg=which)
    assert not np.allclose(starts["best"][1][0], starts["last"][1][0])  # each from its own weights


def test_time_budget_stops_inside_a_chunk_and_resume_finishes_it_exactly(tmp_path):
    """--max-seconds stops after the batch under way and validates there; the checkpoint records its
    place in the chunk, and a resumed run trains the rest of that chunk, then the next pass (from the
    training weights, not their averages), as a run never stopped would."""
    text = shakespeare_slice(tmp_path, 6000)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train(tiny_config(text, max_epochs=2, **REGULARIZED), straight, verbose=0)
    stopped = train(tiny_config(text, max_epochs=2, max_seconds=0.01, **REGULARIZED), resumed, verbose=0)
    assert 0 < stopped["last"]["batch"] < 84 and "val_loss" in stopped["last"], stopped["last"]
    records = train(tiny_config(text, max_epochs=2, **REGULARIZED), resumed, resume=True, verbose=0)
    assert records["last"]["step"] == 168 and records["last"]["batch"] == 84
    a, b = load_model(os.path.join(straight, "last.keras")), load_model(os.path.join(resumed, "last.keras"))
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(wa.value), keras.ops.convert_to_numpy(wb.value),
                                   atol=1e-5, err_msg=wa.path)
