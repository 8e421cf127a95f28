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

Every file is written to a temporary name and renamed (`kerasrnn.files`), so a killed process never
leaves a torn file; a checkpoint's files are renamed together, checkpoint.json last.
"""
import contextlib
import dataclasses
import difflib
import fcntl
import os
import warnings
import zipfile

from kerasrnn_edge.errors import MissingPath, UserError, option
from kerasrnn_edge.vocab import Vocab

from .config import Config, check_unread_options, load_json, preset
from .files import write_error

_LOCKED = set()


@contextlib.contextmanager
def locked(run_dir):
    """Holds the run directory's lock for the block: one writer per run directory. An advisory flock,
    which the operating system drops when the process ends, so a killed run never leaves a stale lock.
    Nested use in one process is free (the command line takes it before its slow import of Keras). A directory
    it made is removed again if the block fails before writing anything into it (a refused run leaves nothing)."""
    key = os.path.realpath(run_dir)
    if key in _LOCKED:
        yield
        return
    path = os.path.join(run_dir, "lock")
    made = not os.path.exists(run_dir)
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
                            f"stop it, or choose another {option('run_dir')}") from None
        try:
            f.truncate(0)
            f.write(f"{os.getpid()}\n")
            f.flush()
        except OSError as e:
            raise write_error(path, e) from None
        _LOCKED.add(key)
        try:
            yield
        except BaseException:
            if made and os.listdir(run_dir) == ["lock"]:
                os.remove(path)
                os.rmdir(run_dir)
            raise
        finally:
            _LOCKED.discard(key)


def load_config(run_dir):
    return Config.from_json(load_json(os.path.join(run_dir, "config.json"), "run configuration"))


def run_config(run_dir, preset_name, resume, overrides):
    """What a run trains with: the preset, or when resuming the saved config, overridden by `overrides`
    (Config fields: the options given explicitly; another name is refused, with the closest field)."""
    fields = [f.name for f in dataclasses.fields(Config)]
    for name in overrides:
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"did you mean {option(close[0])}? " if close else ""
            raise UserError(f"{option(name)} is not a training option: {hint}kerasrnn.Config's fields are the options")
    if resume and os.path.exists(os.path.join(run_dir, "config.json")):
        config = dataclasses.replace(load_config(run_dir), **overrides)
        check_unread_options(overrides, config)
        return config
    from .models import family
    inherited = fine_tuned_shape(overrides["init_from"], overrides) if overrides.get("init_from") else {}
    model = overrides.get("model", inherited.get("model"))
    config = dataclasses.replace(preset(preset_name or (family(model).preset if model else "tiny")), **inherited,
                                 **overrides)
    check_unread_options(overrides, config)
    return config


def fine_tuned_shape(init_from, overrides):
    """The options a fine-tuned run takes from its base run unless given: its model family, shape and token kind
    (so `--init-from` alone continues a GPT as a GPT). A family other than the base's is refused in one line."""
    check_run_dir(init_from)
    base = load_config(init_from)
    if overrides.get("model", base.model) != base.model:
        raise UserError(f"cannot fine-tune from {init_from}: it is {option('model', base.model)}, not "
                        f"{option('model', overrides['model'])}; leave {option('model')} out")
    from .models import family
    return {k: getattr(base, k) for k in ("model", *family(base.model).shape, "tokens") if k not in overrides}


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

    from . import models, optim  # noqa: F401  (registers the families' layers and WarmupDecay)

    if not os.path.isfile(path):
        raise MissingPath(f"{path} is missing: train first (kerasrnn train), or name another run directory")
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


def check_run_dir(run_dir):
    """A run directory's first check, which the commands make before importing Keras."""
    if not os.path.exists(run_dir):
        raise MissingPath(f"{run_dir} does not exist: pass a run directory made by kerasrnn train")
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir} is not a directory: pass a run directory made by kerasrnn train")


def load_run(run_dir, which="best"):
    """(trained model, vocab, config, checkpoint record) of a run directory; `which` is best or last. The model
    is not compiled: sampling, export and inspect need its weights alone."""
    check_run_dir(run_dir)
    config, vocab = load_config(run_dir), load_vocab(run_dir)
    model = load_model(os.path.join(run_dir, f"{which}.keras"), compile=False)
    if model.output_shape[-1] != vocab.size:
        raise UserError(f"{which}.keras has {model.output_shape[-1]} outputs but vocab.json has {vocab.size} "
                        "tokens: the run directory mixes two runs")
    return model, vocab, config, load_checkpoints(run_dir).get(which, {})
