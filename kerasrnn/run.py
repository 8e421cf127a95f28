"""The run directory: what training writes and what sampling and export read.

    config.json      the Config of the run
    vocab.json       the vocabulary
    best.keras       weights with the lowest validation loss so far
    last.keras       the latest checkpoint, with optimizer state and recurrent state (resume point)
    checkpoint.json  {"best": {...}, "last": {...}}: epoch, step, val_loss of each
    history.csv      one row per validation (Keras CSVLogger columns: epoch, loss, val_loss, ...)
    logs/            TensorBoard logs
    loss.png         the loss curves
    samples.jsonl    with --sample-every: {"step", "text"} per sample during training
    report.html      kerasrnn inspect's report (by default)

Every file is written to a temporary name and renamed, so a killed process never leaves a torn file.
"""
import json
import os
import tempfile
import warnings
import zipfile

from kerasrnn_edge.errors import UserError
from kerasrnn_edge.vocab import Vocab

from .config import Config, load_json


def atomic_write(path, write):
    """Calls `write(tmp_path)`, then renames tmp_path over `path`."""
    directory, name = os.path.split(os.path.abspath(path))
    suffix = os.path.splitext(name)[1]  # Keras insists on the .keras suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_write(path, write)


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def save_model(model, path):
    atomic_write(path, model.save)


def load_config(run_dir):
    return Config.from_json(load_json(os.path.join(run_dir, "config.json"), "run configuration"))


def load_vocab(run_dir):
    return Vocab.from_json(load_json(os.path.join(run_dir, "vocab.json"), "vocabulary"))


def load_checkpoints(run_dir):
    path = os.path.join(run_dir, "checkpoint.json")
    return load_json(path, "checkpoint record") if os.path.exists(path) else {}


def load_model(path):
    """Loads a .keras checkpoint (safe_mode: no code is deserialised), or says why it cannot."""
    import keras

    from . import model, optim  # noqa: F401  (registers StatefulRecurrent and WarmupDecay)

    if not os.path.isfile(path):
        raise UserError(f"{path} is missing: train first (kerasrnn train), or name another run directory")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a Keras checkpoint (corrupt or foreign file)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns about a mismatched file before it raises
            return keras.saving.load_model(path, compile=True, safe_mode=True)
    except Exception as e:  # Keras raises many types for foreign or damaged archives
        if "StatefulRecurrent" in str(e):
            raise UserError(f"{path} does not match this kerasrnn's recurrent layer: checkpoints saved before "
                            "they carried a start state for sampling (sampling contract 2) cannot be read; "
                            "train the run again") from None
        raise UserError(f"{path} could not be loaded as a kerasrnn checkpoint ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None


def load_run(run_dir, which="best"):
    """(trained model, vocab, config, checkpoint record) of a run directory; `which` is best or last."""
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir} is not a directory: pass a run directory made by kerasrnn train")
    config, vocab = load_config(run_dir), load_vocab(run_dir)
    model = load_model(os.path.join(run_dir, f"{which}.keras"))
    if model.output_shape[-1] != vocab.size:
        raise UserError(f"{which}.keras has {model.output_shape[-1]} outputs but vocab.json has {vocab.size} "
                        "tokens: the run directory mixes two runs")
    return model, vocab, config, load_checkpoints(run_dir).get(which, {})
