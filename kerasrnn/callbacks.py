"""Callbacks for the cross-cutting parts of training: state resets, checkpoints, time budget, plots."""
import contextlib
import json
import math
import os
import time

import keras

from .model import compute_start, get_rng_states, get_states, reset_states, set_states
from .run import atomic_write, save_model, write_json, write_text


class TBPTTSchedule(keras.callbacks.Callback):
    """Keeps truncated BPTT's state discipline inside `fit`.

    The state is reset when a pass over the training text begins, and before validation (which runs
    statefully over its own streams); the training state is put back after validation.
    """

    def __init__(self, batches):
        super().__init__()
        self.batches = batches
        self._training_state = None

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.chunk = epoch % self.batches.chunks
        if self.batches.chunk == 0:
            reset_states(self.model)

    def on_test_begin(self, logs=None):
        self._training_state = get_states(self.model)
        reset_states(self.model)

    def on_test_end(self, logs=None):
        set_states(self.model, self._training_state)


@contextlib.contextmanager
def averaged_weights(model):
    """Puts the optimizer's moving averages of the weights (`use_ema`) in the model for the block, as
    keras.callbacks.SwapEMAWeights does around validation; a model without them is left as it is."""
    optimizer = model.optimizer
    pairs = list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average)
                 if optimizer.use_ema else [])

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


class Checkpointer(keras.callbacks.Callback):
    """After each validation: `last.keras` always, `best.keras` when validation loss improves,
    `checkpoint.json` and `history.csv` (CSVLogger's columns). A non-finite loss stops training
    without saving, so the best checkpoint stays intact. With weight averaging, validation ran on the
    averaged weights, and best.keras holds them; last.keras holds the training weights (and the
    averages in its optimizer), so a resumed run continues exactly. Each checkpoint carries the start
    state of its own weights (`start`: the context and token of `data.start_context`)."""

    def __init__(self, run_dir, batches, history, records, start, best_val=math.inf):
        super().__init__()
        self.run_dir, self.batches, self.history, self.records, self.best_val = run_dir, batches, history, records, best_val
        self.start = start
        self.diverged_at = None
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations.value))
        loss, val_loss = float(logs.get("loss", math.nan)), float(logs.get("val_loss", math.nan))
        if not (math.isfinite(loss) and math.isfinite(val_loss)):
            self.diverged_at = step
            self.model.stop_training = True
            return
        record = {"epoch": round(step / (self.batches.steps * self.batches.chunks), 3), "step": step,
                  "keras_epoch": epoch, "loss": loss, "val_loss": val_loss}
        self.records = dict(self.records, last={**record, "rng": get_rng_states(self.model)})
        if val_loss < self.best_val:
            self.best_val = val_loss
            with averaged_weights(self.model):
                compute_start(self.model, *self.start)
                save_model(self.model, os.path.join(self.run_dir, "best.keras"))
            self.records["best"] = record
        compute_start(self.model, *self.start)
        save_model(self.model, os.path.join(self.run_dir, "last.keras"))
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.history.append({"epoch": epoch, "learning_rate": learning_rate, "loss": loss,
                             "seconds": round(time.time() - self._start, 2), "step": step, "val_loss": val_loss})
        write_history(self.run_dir, self.history)
        # written last: it marks the checkpoint complete (a resume reads history up to its step)
        write_json(os.path.join(self.run_dir, "checkpoint.json"), self.records)


HISTORY_COLUMNS = ["epoch", "learning_rate", "loss", "seconds", "step", "val_loss"]


def write_history(run_dir, rows):
    lines = [",".join(HISTORY_COLUMNS)] + [",".join(str(row[c]) for c in HISTORY_COLUMNS) for row in rows]
    write_text(os.path.join(run_dir, "history.csv"), "\n".join(lines) + "\n")


def read_history(run_dir, up_to_step):
    path = os.path.join(run_dir, "history.csv")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        header, *lines = f.read().split()
    rows = [dict(zip(header.split(","), map(float, line.split(",")))) for line in lines]
    return [{**r, "epoch": int(r["epoch"]), "step": int(r["step"])} for r in rows if r["step"] <= up_to_step]


SAMPLE_LENGTH = 200


class SampleLog(keras.callbacks.Callback):
    """Every `every` steps, a sample of the model as it stands (temperature 1, the same seed each time):
    the blog's "iteration 100, 300, 500 ..." progression, which `kerasrnn inspect` shows. Appended to
    samples.jsonl ({"step", "text"}) and, with TensorBoard, written as text to logs/samples. Sampled by
    the numpy recomputation of the model (kerasrnn.inspect.recompute): no second Keras model to build."""

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
        from kerasrnn_export.weights import from_model

        from .inspect.recompute import NumpyStepModel
        text = "".join(generate(NumpyStepModel(from_model(self.model)), self.vocab, "", SAMPLE_LENGTH, seed=self.seed))
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

    def on_train_begin(self, logs=None):
        self._deadline = time.time() + self.seconds

    def on_train_batch_end(self, batch, logs=None):
        if time.time() > self._deadline:
            self._model.stop_training = True  # _model: skips the JAX state sync that `self.model` forces


def plot_history(run_dir, rows):
    """Writes loss.png: training and validation loss against steps."""
    if not rows:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
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
    plt.close(fig)
