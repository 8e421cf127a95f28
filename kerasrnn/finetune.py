"""Fine-tuning (`kerasrnn train --init-from RUN`): a new run starts from a trained run's weights, on a text
that may hold characters the trained run never saw.

The vocabulary grows (`Vocab.grown`): the old characters keep their ids, the new ones are appended by
code point, and the model is built at the grown size. The old embedding rows and output columns are
copied; the new ones start so that the old model is unchanged for old characters:

- a new embedding row is the mean of the old rows: a new character feeds the recurrent layers an input
  in the range they were trained on (the layer's own small random initializer gives a near-zero vector,
  an input they never saw), and the new rows start equal but part at once, each trained by its own
  occurrences.
- a new output column has a zero kernel and the old biases' minimum for a bias: the old ids' logits are
  exactly the old model's, and a new character's logit is a constant as low as the least likely old
  character's bias (a low, not vanishing, probability, so it learns from its first occurrences rather
  than taking probability from the old characters before it has any evidence).

Two options trade learning the new text against keeping the old one (docs/rnn-to-llm.md measures them):
`--freeze` leaves layers untrained (`freeze`), `--replay` trains a fraction of the batches on the trained
run's own text (`ReplayBatches`, `Replay`).
"""
import math
import os
from fractions import Fraction

import keras
import numpy as np
from keras import ops

from kerasrnn_edge.errors import UserError, option

from . import corpus
from .data import StreamBatches, split
from .models import family, family_of
from .models.language_model import get_start, get_states, learned_weights, reset_states, set_start, set_states
from .run import load_config, load_run


def load_source(config, text_vocab):
    """(trained model of `config.init_from`, the vocabulary grown with `text_vocab`'s new characters).

    The trained model must have the shape `config` asks for, and the same token kind. Says which characters
    are new, in one line.
    """
    run_dir = config.init_from
    source, vocab, trained, _ = load_run(run_dir)
    if vocab.kind != text_vocab.kind:
        raise UserError(f"cannot fine-tune from {run_dir}: it was trained on {vocab.kind} tokens, this run reads "
                        f"{text_vocab.kind} tokens; pass {option('tokens', vocab.kind)}")
    if trained.model != config.model:
        raise UserError(f"cannot fine-tune from {run_dir}: it is {option('model', trained.model)}, this run "
                        f"{option('model', config.model)}; leave {option('model')} out")
    shape = family(config.model).shape
    changed = [f"{k} {getattr(trained, k)} -> {getattr(config, k)}" for k in shape
               if getattr(trained, k) != getattr(config, k)]
    if changed:
        raise UserError(f"cannot fine-tune from {run_dir}: {', '.join(changed)} differ from its model; keep its "
                        f"shape (leave {' '.join(option(k) for k in shape)} out)")
    grown, new = vocab.grown(text_vocab)
    if new:
        print(f"kerasrnn: the vocabulary grows by {len(new)} character{'s' * (len(new) > 1)}: "
              f"{' '.join(repr(c) for c in new)}", flush=True)
    return source, grown


def copy_grown(source, target):
    """Copies the trained weights and the start state of `source` into `target`, whose vocabulary is the
    source's grown (the module's docstring says how the new rows start)."""
    new = target.output_shape[-1] - source.output_shape[-1]
    for src, dst in zip(learned_weights(source), learned_weights(target)):
        value = ops.convert_to_numpy(src.value)
        if src.path == "embedding/embeddings":
            value = np.concatenate([value, np.repeat(value.mean(axis=0, keepdims=True), new, axis=0)])
        elif src.path == "logits/kernel":
            value = np.concatenate([value, np.zeros((value.shape[0], new), value.dtype)], axis=1)
        elif src.path == "logits/bias":
            value = np.concatenate([value, np.full(new, value.min(), value.dtype)])
        dst.assign(value)
    set_start(target, *get_start(source))


def freeze(model, config):
    """Sets `trainable=False` on the layers `config.freeze` names, the Keras way: the optimizer is built
    without their weights and never touches them, and the checkpoints load with them frozen."""
    layers = {"embedding": model.get_layer("embedding"), **dict(enumerate(family_of(model).core_layers(model))),
              "output": model.get_layer("logits")}
    for name in config.frozen():
        layers[name].trainable = False


def base_batches(config, vocab, rows):
    """The training batches of `config.init_from`'s own text (its --text or --corpus and its split), as ids
    of `vocab` (which holds its characters: the grown vocabulary, or a resumed run's)."""
    base = load_config(config.init_from)
    if base.text and not os.path.exists(base.text):
        raise UserError(f"cannot replay the text of {config.init_from}: {base.text}, which it trained on (its "
                        f"config.json), is missing; put it back, or fine-tune without {option('replay')}")
    try:
        base_vocab, ids = corpus.load_ids(corpus.source(base), base.tokens, vocab if base.tokens == "bpe" else None)
    except UserError as e:
        raise UserError(f"cannot replay the text of {config.init_from}: {e}") from None
    train_ids = split(ids, base.train_frac, base.val_frac)[0]
    try:
        train_ids = vocab.recode(train_ids, base_vocab)
    except UserError as e:
        raise UserError(f"cannot replay the text of {config.init_from}: {e}; it changed since that run trained "
                        "on it") from None
    return StreamBatches(train_ids, config.batch_size, config.seq_length, what="replayed", rows=rows)


class ReplayBatches(keras.utils.PyDataset):
    """The training batches of the new text (`text`, a StreamBatches) with replay batches from the trained
    run's text (`base`) interleaved: a fraction `fraction` of each Keras epoch's steps. Step j of an epoch
    is a replay batch when floor((j + 1) f) > floor(j f), so the first j steps hold floor(j f) of them; an
    epoch is as long as needed for all of the text's batches (`steps`), and ends with one of them. The
    replay batches read the trained run's text in order, one window after another, from pass to pass.

    It stands where `kerasrnn train` has a StreamBatches: it has its `steps`, `chunks`, `chunk`, `skip`
    (counted in steps of both kinds), `tokens` (the new text's) and `seq_length`; `Replay` sets `epoch`.
    """

    def __init__(self, text, base, fraction):
        super().__init__()
        self.text, self.base, self.fraction = text, base, Fraction(str(fraction))  # floor(j f) exactly
        self.steps = text.steps
        while self.steps - self.replays_before(self.steps) < text.steps:
            self.steps += 1
        self.chunks, self.seq_length, self.tokens = text.chunks, text.seq_length, text.tokens
        self.epoch, self.skip = 0, 0

    @property
    def chunk(self):
        return self.text.chunk

    @chunk.setter
    def chunk(self, chunk):
        self.text.chunk = chunk

    def replays_before(self, j):
        """Replay batches among an epoch's first `j` steps."""
        return math.floor(j * self.fraction)

    def is_replay(self, j):
        return self.replays_before(j + 1) > self.replays_before(j)

    def __len__(self):
        return self.steps - self.skip

    def __getitem__(self, i):
        j = self.skip + i
        if self.is_replay(j):
            per_epoch = self.replays_before(self.steps)
            return self.base[(self.epoch * per_epoch + self.replays_before(j)) % self.base.steps]
        return self.text[j - self.replays_before(j)]


class Replay(keras.callbacks.Callback):
    """Keeps the recurrent state of the new text's streams out of the replay batches of `batches` (a
    ReplayBatches): a replay batch reads from the zero state, and the text's state is put back after it, so
    the text's streams carry on as if it had not been there. (A stream of its own with a carried state
    would read the trained run's text with more context, but its state would have to go into every
    checkpoint for a resumed run to be exact; from zeros, a replay batch needs nothing saved.) `count` is
    the replay batches trained, which each checkpoint records (`replay_batches`). Before the Checkpointer
    and Preemption in the callbacks, so that a checkpoint after a replay batch holds the text's state."""

    def __init__(self, batches, count=0):
        super().__init__()
        self.batches, self.count = batches, count
        self._text_state = None

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.batches.is_replay(self.batches.skip + batch):  # `self.model` only then: on JAX, it syncs the state
            self._text_state = get_states(self.model)
            reset_states(self.model)

    def on_train_batch_end(self, batch, logs=None):
        if self._text_state is not None:
            set_states(self.model, self._text_state)
            self._text_state = None
            self.count += 1
