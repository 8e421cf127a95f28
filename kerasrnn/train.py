"""Training: a stateful char-level language model through `model.fit`, with resumable checkpoints."""
import functools
import math
import os
import signal
import sys

import keras

from kerasrnn_edge.errors import MissingPath, UserError, option

from . import backends, corpus, data, distribute, finetune
from .callbacks import (Checkpointer, EpochTensorBoard, Preemption, SampleLog, TBPTTSchedule, TimeBudget, plot_history,
                        read_history, read_samples, resume_point, training_weights_kept)
from .config import Config
from .models import family
from .models.language_model import set_rng_states
from .optim import make_optimizer
from .files import Writes
from .run import load_checkpoints, load_config, load_model, load_vocab, locked
from .signals import StopSignals, Stopped

SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")
# What a checkpoint is made for besides its family's shape: its optimizer, batch layout and vocabulary.
RUN_SHAPE = ("batch_size", "tokens", "vocab_size", "freeze", "replay")


def shape_keys(config):
    """The options a resumed run may not change: its family, the family's shape, and RUN_SHAPE."""
    return ("model", *family(config.model).shape, *RUN_SHAPE)


def check_resumable(run_dir, config, text_vocab, ids):
    """A run directory is continued only with the same model shape, on a text whose characters are all in
    its vocabulary (a fine-tuned run's grown vocabulary holds more than its text). Returns the saved
    vocabulary and the text's `ids` (under `text_vocab`) expressed in it."""
    saved = load_config(run_dir)
    changed = [k for k in shape_keys(saved) if getattr(saved, k) != getattr(config, k)]
    if changed:
        raise UserError(f"cannot resume {run_dir}: {', '.join(f'{k} {getattr(saved, k)} -> {getattr(config, k)}' for k in changed)}"
                        f" differ from the saved run; keep them, or start a new {option('run_dir')}")
    vocab = load_vocab(run_dir)
    try:
        return vocab, vocab.recode(ids, text_vocab)
    except UserError as e:
        raise UserError(f"cannot resume {run_dir}: {e} (its vocab.json); train on the run's text, or fine-tune "
                        f"a new run from it: {option('init_from', run_dir)} {option('run_dir', 'NEW_DIR')}") from None


def train(config: Config, run_dir, resume=False, verbose="auto", launch=None):
    """Trains (or resumes) a run in `run_dir`; returns the checkpoint record {"best": ..., "last": ...}.
    With a `launch` (distribute.Launch) asking for devices or processes, data-parallel (docs/scaling.md).

    Holds the run directory's lock throughout (one writer per directory). A first SIGTERM or SIGINT saves
    a checkpoint at the current step and raises signals.Stopped saying how to resume; a second stops at once.
    """
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise UserError(f"the {backend} backend is not supported: set KERAS_BACKEND to one of "
                        f"{', '.join(SUPPORTED_BACKENDS)}")
    config.check()
    last_path = os.path.join(run_dir, "last.keras")
    if not resume and os.path.exists(last_path):
        raise UserError(f"{run_dir} already holds a run: pass {option('resume', True)} to continue it, or choose "
                        f"another {option('run_dir')}")
    if resume and not os.path.exists(last_path):
        raise MissingPath(f"{run_dir} has no checkpoint to resume (last.keras is missing)")

    plan = distribute.start(launch, config, run_dir) if launch and launch.requested else None
    vocab, ids = corpus.load_ids(corpus.source(config), config.tokens, bpe_vocab(config, run_dir, resume),
                                 config.vocab_size, config.train_frac, config.seed)
    out = plan.out_dir if plan else run_dir  # where this process writes: the run directory, unless it is not process 0
    with locked(out):
        try:
            return _train(config, run_dir, resume, verbose, vocab, ids, plan, out)
        except Stopped as stop:
            raise Stopped(stop.signum, stopped_message(run_dir, stop.signum)) from None
        finally:
            if plan:
                distribute.finish(plan)


def bpe_vocab(config, run_dir, resume):
    """The bpe vocabulary a run's text is encoded with: a resumed run's own, a fine-tuned run's base run's;
    None where one is to be learned (or the tokens are not bpe)."""
    if config.tokens != "bpe" or not (resume or config.init_from):
        return None
    vocab = load_vocab(run_dir if resume else config.init_from)
    return vocab if vocab.kind == "bpe" else None  # else resuming or fine-tuning says the kinds differ


def _train(config, run_dir, resume, verbose, text_vocab, ids, plan, out):
    if resume:
        vocab, ids = check_resumable(run_dir, config, text_vocab, ids)
        remove_temp_files(out)
    elif config.init_from:
        source, vocab = finetune.load_source(config, text_vocab)
        ids = vocab.recode(ids, text_vocab)
    else:
        vocab = text_vocab
    rows = plan.rows if plan else slice(None)
    batches, val_batches = data.stream_batches(ids, config.batch_size, config.seq_length, config.train_frac,
                                               config.val_frac, config.val_tokens, config.eval_every, rows)
    if config.replay:
        batches = finetune.ReplayBatches(batches, finetune.base_batches(config, vocab, rows), config.replay)

    keras.utils.set_random_seed(config.seed)
    if resume:
        model = load_model(os.path.join(run_dir, "last.keras"))
        records = load_checkpoints(run_dir)
        set_rng_states(model, records["last"].get("rng", []))
        initial_epoch, batches.skip = resume_point(records["last"], batches)
        if initial_epoch >= config.max_epochs * batches.chunks:
            passes = f"{config.max_epochs} pass{'es' * (config.max_epochs != 1)}"
            raise UserError(f"{run_dir} has finished its {passes} over the text (step "
                            f"{records['last']['step']}): to train it further, raise {option('max_epochs')} "
                            f"(e.g. {option('max_epochs', 2 * config.max_epochs)}) with {option('resume', True)}")
        best_val = records.get("best", {}).get("val_loss", math.inf)
        history = read_history(run_dir, records["last"]["step"])
    else:
        model = family(config.model).build(vocab.size, config.batch_size, config.seq_length, **config.model_args())
        if config.init_from:
            finetune.copy_grown(source, model)
            finetune.freeze(model, config)
        model.compile(optimizer=make_optimizer(config, batches.steps * batches.chunks),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      # torch runs eagerly: there is no compiled call to hold several steps
                      steps_per_execution=1 if keras.backend.backend() == "torch" else config.steps_per_execution)
        initial_epoch, best_val, records, history = 0, math.inf, {}, []
    precision = backends.set_precision(model, config.precision)
    with Writes() as writes:
        writes.json(os.path.join(out, "config.json"), config.to_json())
        writes.json(os.path.join(out, "vocab.json"), vocab.to_json())

    start = data.start_context(batches.tokens, vocab, config.seq_length)
    per_character = (tokens_per_character(vocab, batches.tokens), tokens_per_character(vocab, val_batches.tokens)
                     ) if vocab.kind == "bpe" else None
    replay = finetune.Replay(batches, records.get("last", {}).get("replay_batches", 0)) if config.replay else None
    checkpointer = Checkpointer(out, batches, history, records, start, best_val, per_character, replay)
    signals = StopSignals()
    callbacks = [TBPTTSchedule(batches), checkpointer, Preemption(signals, checkpointer)]
    if replay:
        callbacks.insert(1, replay)  # before the checkpoints, which must hold the new text's state
    if config.ema:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights())  # validation on the averaged weights
    if config.max_seconds:
        callbacks.append(TimeBudget(config.max_seconds))
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience))
    if config.sample_every:
        samples = read_samples(run_dir, records["last"]["step"]) if resume else []
        callbacks.append(SampleLog(out, vocab, config.sample_every, config.seed, samples, _has_tensorboard()))
    if _has_tensorboard():
        callbacks.append(EpochTensorBoard(os.path.join(out, "logs")))
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    if verbose:
        print(f"kerasrnn: {batches.tokens.size:,} training and {val_batches.tokens.size:,} validation tokens, vocab {vocab.size}, "
              f"{model.count_params():,} parameters, on {keras.backend.backend()}, {precision}; {batches.steps * batches.chunks} "
              "steps per pass over the text, "
              f"validated every {batches.steps} (one Keras epoch)"
              + (f"; {1 / per_character[0]:.2f} characters per training token, losses in nats per token and "
                 "bits per character (bpc)" if per_character else "")
              + (f"; data-parallel on {plan.devices} devices, {plan.processes} processes" if plan else ""), flush=True)
    fit = functools.partial(model.fit, batches, validation_data=val_batches, callbacks=callbacks, verbose=verbose,
                            shuffle=False)
    try:
        with signals:
            if batches.skip:  # resumed inside a chunk: its rest is one shorter Keras epoch
                with training_weights_kept(model) as kept:
                    fit(epochs=initial_epoch + 1, initial_epoch=initial_epoch, callbacks=[*callbacks, kept])
                batches.skip, initial_epoch = 0, initial_epoch + 1
            if not model.stop_training:
                fit(epochs=config.max_epochs * batches.chunks, initial_epoch=initial_epoch)
    except Stopped as stop:
        if not stop.at_once:
            plot_history(out, checkpointer.history)
        raise
    except UserError as e:  # a write failed: the last complete checkpoint is intact
        again = (f"continue with kerasrnn train --run-dir {run_dir} --resume" if "last" in checkpointer.records
                 else "run the same command again")
        raise UserError(f"{e}; then {again}") from None
    plot_history(out, checkpointer.history)
    if checkpointer.diverged_at is not None:
        best = checkpointer.records.get("best")
        kept = f"best.keras (val loss {best['val_loss']:.4f}) is intact" if best else "no checkpoint was saved"
        raise UserError(f"training diverged: the loss became nan or inf by step {checkpointer.diverged_at}; {kept}. "
                        f"Lower {option('learning_rate')} or {option('grad_clip')}")
    return checkpointer.records


def tokens_per_character(vocab, ids):
    """Tokens of a split per character of its text: nats per token times this over ln 2 is bits per character."""
    return len(ids) / max(1, vocab.characters(ids))


def stopped_message(run_dir, signum):
    """The line a run stopped by a signal ends with: where its last complete checkpoint is, how to resume."""
    last = load_checkpoints(run_dir).get("last")
    name = signal.Signals(signum).name
    if not last:
        return f"stopped by {name} before the first checkpoint: start again with the same command"
    where = (f"val loss {last['val_loss']:.4f}" if "val_loss" in last
             else f"inside Keras epoch {last['keras_epoch'] + 1}, after its batch {last['batch']}")
    return (f"stopped by {name}; the checkpoint at step {last['step']} ({where}) is in {run_dir}: "
            f"continue with kerasrnn train --run-dir {run_dir} --resume")


def remove_temp_files(run_dir):
    """Drops the half-written temporaries a killed process left (the files they were for are intact)."""
    for name in os.listdir(run_dir):
        if name.startswith(".") and ".tmp" in name:
            os.remove(os.path.join(run_dir, name))


def _has_tensorboard():
    """TensorBoard logs need TensorFlow's summary writer; the JAX-only GPU host trains without them."""
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
        return True
    except ImportError:
        return False
