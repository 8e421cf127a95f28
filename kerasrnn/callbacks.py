"""Callbacks for the cross-cutting parts of training: state resets, checkpoints, stop signals, time
budget, plots."""
import contextlib
import functools
import json
import math
import os
import time
from typing import TYPE_CHECKING

import keras

from .data import start_context
from .models.language_model import compute_start, get_rng_states, get_states, reset_states, set_states
from .optim import optimizer_slots
from .files import Writes, atomic_write, write_text
from .signals import Stopped

if TYPE_CHECKING:
    from kerasrnn_edge.vocab import Vocab

    from .data import StreamBatches


class TBPTTSchedule(keras.callbacks.Callback):
    """Keeps truncated BPTT's state discipline inside `fit`.

    The state is reset when a pass over the training text begins (not when a run resumes inside its
    first chunk: the checkpoint holds the state), and before validation (which runs statefully over its
    own streams); the training state is put back after validation. Given the text's vocabulary, it
    also sets the model's start state for sampling when training ends (as `kerasrnn train`'s
    checkpoints do at each save; export/SPEC.md).
    """

    def __init__(self, batches: "StreamBatches", vocab: "Vocab | None" = None):
        super().__init__()
        self.batches, self.vocab = batches, vocab
        self._training_state = None

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.chunk = epoch % self.batches.chunks
        if self.batches.chunk == 0 and not self.batches.skip:
            reset_states(self.model)

    def on_test_begin(self, logs=None):
        self._training_state = get_states(self.model)
        reset_states(self.model)

    def on_test_end(self, logs=None):
        set_states(self.model, self._training_state)

    def on_train_end(self, logs=None):
        if self.vocab is not None:
            compute_start(self.model, *start_context(self.batches.tokens, self.vocab, self.batches.seq_length))


@contextlib.contextmanager
def averaged_weights(model):
    """Puts the optimizer's moving averages of the weights (`use_ema`) in the model for the block, as
    keras.callbacks.SwapEMAWeights does around validation; a model without them is left as it is."""
    optimizer = model.optimizer
    weights = model.trainable_weights if optimizer.use_ema else []
    pairs = list(zip(weights, optimizer_slots(optimizer, weights, "average")))

    def swap():
        for weight, average in pairs:
            value = keras.ops.convert_to_numpy(weight.value)
            weight.assign(average.value)
            average.assign(value)
    swap()
    try:
        yield
    finally:
        swap()


class TrainingWeights(keras.callbacks.Callback):
    """Keeps a copy of the training weights at the end of each epoch, with weight averaging (`use_ema`):
    `fit` copies the averages over the weights after its last epoch, before any `on_train_end`."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        if self.model.optimizer.use_ema:
            self.weights = [keras.ops.convert_to_numpy(w.value) for w in self.model.trainable_weights]


@contextlib.contextmanager
def training_weights_kept(model):
    """Leaves the training weights in the model when the block's `fit`, given the callback this yields,
    ends. With weight averaging, `fit` ends by copying the averages over the weights
    (Optimizer.finalize_variable_values): a run resumed inside a chunk fits the chunk's rest, then the
    following chunks in a second `fit`, which must start from the training weights, as an uninterrupted run
    goes on from them. A `fit` that raised (a stop signal) never copied them: the model is left as it is."""
    kept = TrainingWeights()
    yield kept
    for weight, value in zip(model.trainable_weights, kept.weights):
        weight.assign(value)


class Checkpointer(keras.callbacks.Callback):
    """After each validation: `last.keras` always, `best.keras` when validation loss improves,
    `checkpoint.json` and `history.csv` (CSVLogger's columns); on a stop signal (`Preemption`), `last.keras`
    at the current step. The files of a checkpoint are renamed into place together, checkpoint.json last
    (it marks the checkpoint complete), so a failed write or a kill leaves the previous one whole.

    The last record says where in the pass it stands: `chunk` (the Keras epoch's part of the pass) and
    `batch` (how many of its batches are done); a run resumed inside a chunk trains the rest of it
    (`resume_point`). A non-finite loss stops training without saving, so the best checkpoint stays
    intact. With weight averaging, validation ran on the averaged weights, and best.keras holds them;
    last.keras holds the training weights (and the averages in its optimizer), so a resumed run
    continues exactly. Each checkpoint carries the start state of its own weights (`start`: the context
    and token of `data.start_context`). Given `per_character` (tokens per character of the training and
    the validation text: a bpe run), the losses are also written in bits per character (`bpc`, `val_bpc`),
    in the logs Keras prints, the records and history.csv. Given a `replay` (finetune.Replay), each record
    and history row carries its count of replay batches (`replay_batches`)."""

    def __init__(self, run_dir, batches, history, records, start, best_val=math.inf, per_character=None,
                 replay=None):
        super().__init__()
        self.per_character = per_character
        self.run_dir, self.batches, self.history, self.records, self.best_val = run_dir, batches, history, records, best_val
        self.start, self.replay = start, replay
        self.diverged_at = None
        self._start = time.time()
        self._resumed_loss = records.get("last", {}).get("loss")  # mean loss of the chunk's batches before a resume

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._chunk_start = epoch, self._step() - self.batches.skip

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        record = self._record(logs)
        val_loss = float(logs.get("val_loss", math.nan))
        if not (math.isfinite(record["loss"]) and math.isfinite(val_loss)):
            self.diverged_at = record["step"]
            self.model.stop_training = True
            return
        record["val_loss"] = val_loss
        if self.per_character:
            record["bpc"], record["val_bpc"] = (round(record[k] * ratio / math.log(2), 6)
                                                for k, ratio in zip(("loss", "val_loss"), self.per_character))
            logs.update(bpc=record["bpc"], val_bpc=record["val_bpc"])  # the progress bar after this prints them
        self._save(record)

    def save_here(self, logs):
        """last.keras at the current step, inside a chunk: no validation ran, so best.keras and history.csv
        stay as they are."""
        self._save(self._record(logs or {}))

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations.value))

    def _record(self, logs):
        step = self._step()
        done = step - self._chunk_start
        loss = float(logs.get("loss", math.nan))  # the mean over this fit's batches of the chunk
        if self.batches.skip:
            loss = (self.batches.skip * self._resumed_loss + (done - self.batches.skip) * loss) / done
        return {"epoch": round(step / (self.batches.steps * self.batches.chunks), 3), "step": step,
                "keras_epoch": self._epoch, "chunk": self.batches.chunk, "batch": done, "loss": loss,
                **({"replay_batches": self.replay.count} if self.replay else {})}

    def _save(self, record):
        records, history = dict(self.records, last={**record, "rng": get_rng_states(self.model)}), self.history
        path = functools.partial(os.path.join, self.run_dir)
        with Writes() as writes:
            validated = "val_loss" in record
            if validated and record["val_loss"] < self.best_val:
                with averaged_weights(self.model):
                    compute_start(self.model, *self.start)
                    writes.model(path("best.keras"), self.model)
                records["best"] = record
            compute_start(self.model, *self.start)
            writes.model(path("last.keras"), self.model)
            if validated:
                learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                history = history + [{"epoch": record["keras_epoch"], "learning_rate": learning_rate,
                                      "loss": record["loss"], "seconds": round(time.time() - self._start, 2),
                                      "step": record["step"], "val_loss": record["val_loss"],
                                      **{k: record[k] for k in EXTRA_COLUMNS if k in record}}]
                writes.text(path("history.csv"), history_csv(history))
            writes.json(path("checkpoint.json"), records)
        self.records, self.history = records, history
        if "best" in records:
            self.best_val = records["best"]["val_loss"]


def resume_point(record, batches):
    """(Keras epoch, batches of its chunk already done) to resume a run from its last checkpoint record."""
    if record.get("batch", batches.steps) < batches.steps:
        return record["keras_epoch"], record["batch"]
    return record["keras_epoch"] + 1, 0


class Preemption(keras.callbacks.Callback):
    """Acts on the first stop signal that `signals` (signals.StopSignals) records: the batch under way
    finishes, a checkpoint is saved at that step, and training stops, skipping validation. A signal
    during validation or a checkpoint lets that finish (its checkpoint is at the current step), then
    training stops. Either way it ends in signals.Stopped."""

    def __init__(self, signals, checkpointer):
        super().__init__()
        self.signals, self.checkpointer = signals, checkpointer

    def on_train_batch_end(self, batch, logs=None):
        if self.signals.signum is not None:  # reading a flag: no JAX state sync unless it is set
            self.checkpointer.save_here(logs)
            raise Stopped(self.signals.signum)

    def on_epoch_end(self, epoch, logs=None):
        if self.signals.signum is not None:
            raise Stopped(self.signals.signum)


HISTORY_COLUMNS = ["epoch", "learning_rate", "loss", "seconds", "step", "val_loss"]
EXTRA_COLUMNS = ["bpc", "val_bpc", "replay_batches"]  # a bpe run's losses in bits per character; a replaying run's count
COUNTS = ["epoch", "step", "replay_batches"]  # history.csv's integer columns


def history_csv(rows):
    columns = HISTORY_COLUMNS + [c for c in EXTRA_COLUMNS if rows and c in rows[0]]
    lines = [",".join(columns)] + [",".join(str(row[c]) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def read_history(run_dir, up_to_step):
    path = os.path.join(run_dir, "history.csv")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        header, *lines = f.read().split()
    rows = [dict(zip(header.split(","), map(float, line.split(",")))) for line in lines]
    return [{**r, **{k: int(r[k]) for k in COUNTS if k in r}} for r in rows if r["step"] <= up_to_step]


SAMPLE_LENGTH = 200


class SampleLog(keras.callbacks.Callback):
    """Every `every` steps, a sample of the model as it stands (temperature 1, the same seed each time):
    the blog's "iteration 100, 300, 500 ..." progression, which `kerasrnn inspect` shows. Appended to
    samples.jsonl ({"step", "text"}) and, with TensorBoard, written as text to logs/samples. Sampled by the
    step model `kerasrnn sample` runs (the model's family's)."""

    def __init__(self, run_dir, vocab, every, seed, samples, tensorboard):
        super().__init__()
        self.run_dir, self.vocab, self.every, self.seed, self.samples = run_dir, vocab, every, seed, samples
        self.last = samples[-1]["step"] if samples else 0
        self.writer = None
        if tensorboard:
            import tensorflow as tf
            self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "logs", "samples"))

    def on_epoch_begin(self, epoch, logs=None):
        self.first_step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations.value))

    def on_train_batch_end(self, batch, logs=None):
        step = self.first_step + batch + 1  # `batch` is the last step of the compiled call
        if step // self.every > self.last // self.every:
            self.last = step
            self.sample(step)

    def sample(self, step):
        from kerasrnn_edge.sampling import generate

        from .sample import step_model
        text = "".join(generate(step_model(self.model), self.vocab, "", SAMPLE_LENGTH, seed=self.seed))
        self.samples.append({"step": step, "text": text})
        write_text(os.path.join(self.run_dir, "samples.jsonl"),
                   "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in self.samples))
        if self.writer:
            import tensorflow as tf
            with self.writer.as_default():  # indented: Markdown shows it as it is
                tf.summary.text("sample", "\n".join("    " + line for line in text.split("\n")), step=step)
            self.writer.flush()


def read_samples(run_dir, up_to_step):
    """The samples of samples.jsonl up to a step (a resumed run drops those of the steps it repeats)."""
    path = os.path.join(run_dir, "samples.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [s for s in map(json.loads, f) if s["step"] <= up_to_step]


class TimeBudget(keras.callbacks.Callback):
    """Stops training after `seconds` of wall time (the last validation and checkpoint still run)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def set_model(self, model):
        super().set_model(model)
        self.trained_model = model  # read without `self.model`, which on JAX syncs the state every batch

    def on_train_begin(self, logs=None):
        self._deadline = time.time() + self.seconds

    def on_train_batch_end(self, batch, logs=None):
        if time.time() > self._deadline:
            self.trained_model.stop_training = True


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback writing each epoch's logs (its `update_freq="epoch"`), where Keras's also
    makes a summary of every batch's logs, which no writer records at that frequency and which costs a share
    of a small model's step (docs/benchmarks.md, "Training quality")."""

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, None)


def plot_history(run_dir, rows):
    """Writes loss.png: training and validation loss against steps."""
    if not rows:
        return
    from matplotlib.figure import Figure  # not pyplot: a notebook's plotting backend stays as it was

    fig = Figure(figsize=(7, 4), dpi=110)
    ax = fig.subplots()
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["loss"] for r in rows], label="train", marker=".")
    ax.plot(steps, [r["val_loss"] for r in rows], label="validation", marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{os.path.basename(os.path.abspath(run_dir))}: best val {min(r['val_loss'] for r in rows):.4f}")
    fig.tight_layout()
    atomic_write(os.path.join(run_dir, "loss.png"), lambda tmp: fig.savefig(tmp, format="png"))
