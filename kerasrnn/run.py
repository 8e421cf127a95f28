"""The run directory: what training writes and what sampling and export read.

    config.json      the Config of the run
    vocab.json       the vocabulary
    best.keras       weights with the lowest validation loss so far
    last.keras       the latest checkpoint, with optimizer state and recurrent state (resume point)
    checkpoint.json  {"best": {...}, "last": {...}}: epoch, step, val_loss of each, and where in the pass
                     the last one stopped
    history.csv      one row per validation (Keras CSVLogger columns: epoch, loss, val_loss, ...)
    logs/            TensorBoard logs
    loss.png         the loss curves
    lock             held by the process training in the directory (its PID inside)
    samples.jsonl    with --sample-every: {"step", "text"} per sample during training
    report.html      kerasrnn inspect's report (by default)

Every file is written to a temporary name and renamed, so a killed process never leaves a torn file;
a checkpoint's files are renamed together, checkpoint.json last.
"""
import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import tempfile
import warnings
import zipfile

from kerasrnn_edge.errors import UserError
from kerasrnn_edge.vocab import Vocab

from .config import Config, load_json, preset
from .signals import check_not_stopped, deferred

WHAT_TO_DO = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space (disk quota exceeded)",
              errno.EROFS: "the file system is read-only: make it writable or write elsewhere",
              errno.EACCES: "check the permissions", errno.EPERM: "check the permissions",
              errno.EIO: "the disk reported an I/O error: check it"}


def write_error(path, error):
    """The UserError for an OSError met writing `path`: the file, the cause, what to do."""
    cause = error.strerror or str(error)
    return UserError(f"cannot write {path}: {cause} ({errno.errorcode.get(error.errno, 'error')}); "
                     f"{WHAT_TO_DO.get(error.errno, 'check the disk')}. The files already there are intact")


class Writes:
    """Files written to temporary names, then renamed over their targets together, in the order written,
    when the block ends; if anything fails, none of them: the temporaries are removed and the files
    already there are untouched. A write that fails (no space, read-only file system, permission denied,
    I/O error) raises the one-line UserError of `write_error`."""

    def __init__(self):
        self._staged = []

    def __enter__(self):
        return self

    def file(self, path, write):
        """Calls `write(tmp_path)` for a temporary beside `path`."""
        directory, name = os.path.split(os.path.abspath(path))
        suffix = os.path.splitext(name)[1]  # Keras insists on the .keras suffix
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=directory)
            os.close(fd)
            self._staged.append((tmp, path))
            write(tmp)
            os.chmod(tmp, 0o644)
        except OSError as e:
            raise write_error(path, e) from None

    def bytes(self, path, data):
        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(data)
        self.file(path, write)

    def text(self, path, text):
        self.bytes(path, text.encode("utf-8"))

    def json(self, path, obj):
        self.text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")

    def model(self, path, model):
        from .distribute import whole_variables
        with whole_variables(model):
            self.file(path, model.save)

    def __exit__(self, kind, error, traceback):
        try:
            if kind is None:
                check_not_stopped()
                with deferred():
                    for tmp, path in self._staged:
                        try:
                            os.replace(tmp, path)
                        except OSError as e:
                            raise write_error(path, e) from None
        finally:
            for tmp, _ in self._staged:
                if os.path.exists(tmp):
                    os.remove(tmp)


def atomic_write(path, write):
    """Calls `write(tmp_path)`, then renames tmp_path over `path`."""
    with Writes() as writes:
        writes.file(path, write)


def write_bytes(path, data):
    with Writes() as writes:
        writes.bytes(path, data)


def write_text(path, text):
    with Writes() as writes:
        writes.text(path, text)


def write_json(path, obj):
    with Writes() as writes:
        writes.json(path, obj)


def save_model(model, path):
    with Writes() as writes:
        writes.model(path, model)


_LOCKED = set()


@contextlib.contextmanager
def locked(run_dir):
    """Holds the run directory's lock for the block: one writer per run directory. An advisory flock,
    which the operating system drops when the process ends, so a killed run never leaves a stale lock.
    Nested use in one process is free (the command line takes it before its slow import of Keras)."""
    key = os.path.realpath(run_dir)
    if key in _LOCKED:
        yield
        return
    path = os.path.join(run_dir, "lock")
    try:
        os.makedirs(run_dir, exist_ok=True)
        f = open(path, "a+")
    except OSError as e:
        raise write_error(path, e) from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise UserError(f"{run_dir} is in use by process {holder} (training in it): wait for it to end or "
                            "stop it, or choose another --run-dir") from None
        try:
            f.truncate(0)
            f.write(f"{os.getpid()}\n")
            f.flush()
        except OSError as e:
            raise write_error(path, e) from None
        _LOCKED.add(key)
        try:
            yield
        finally:
            _LOCKED.discard(key)


def load_config(run_dir):
    return Config.from_json(load_json(os.path.join(run_dir, "config.json"), "run configuration"))


def run_config(run_dir, preset_name, resume, overrides):
    """What a run trains with: the preset, or when resuming the saved config, overridden by `overrides`
    (Config fields: the options given explicitly)."""
    resuming = resume and os.path.exists(os.path.join(run_dir, "config.json"))
    return dataclasses.replace(load_config(run_dir) if resuming else preset(preset_name), **overrides)


def load_vocab(run_dir):
    return Vocab.from_json(load_json(os.path.join(run_dir, "vocab.json"), "vocabulary"))


def load_checkpoints(run_dir):
    path = os.path.join(run_dir, "checkpoint.json")
    return load_json(path, "checkpoint record") if os.path.exists(path) else {}


def load_model(path, compile=True):
    """Loads a .keras checkpoint (safe_mode: no code is deserialised), or says why it cannot; with
    `compile`, with its optimizer and loss, to train on. A checkpoint written before its compile config
    named optimizers by Keras's public classes names the backend's own (keras.src.backend.torch...), which
    would import that backend: those names map to the public classes here."""
    import keras

    from . import model, optim  # noqa: F401  (registers StatefulRecurrent and WarmupDecay)

    if not os.path.isfile(path):
        raise UserError(f"{path} is missing: train first (kerasrnn train), or name another run directory")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a Keras checkpoint (corrupt or foreign file)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns about a mismatched file before it raises
            return keras.saving.load_model(path, compile=compile, safe_mode=True, custom_objects={
                name: getattr(keras.optimizers, name) for name in ("Adam", "AdamW", "RMSprop")})
    except Exception as e:  # Keras raises many types for foreign or damaged archives
        if "StatefulRecurrent" in str(e):
            raise UserError(f"{path} does not match this kerasrnn's recurrent layer: checkpoints saved before "
                            "they carried a start state for sampling (sampling contract 2) cannot be read; "
                            "train the run again") from None
        raise UserError(f"{path} could not be loaded as a kerasrnn checkpoint ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None


def load_run(run_dir, which="best"):
    """(trained model, vocab, config, checkpoint record) of a run directory; `which` is best or last. The model
    is not compiled: sampling, export and inspect need its weights alone."""
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir} is not a directory: pass a run directory made by kerasrnn train")
    config, vocab = load_config(run_dir), load_vocab(run_dir)
    model = load_model(os.path.join(run_dir, f"{which}.keras"), compile=False)
    if model.output_shape[-1] != vocab.size:
        raise UserError(f"{which}.keras has {model.output_shape[-1]} outputs but vocab.json has {vocab.size} "
                        "tokens: the run directory mixes two runs")
    return model, vocab, config, load_checkpoints(run_dir).get(which, {})
