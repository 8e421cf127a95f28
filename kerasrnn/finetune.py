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
"""
import numpy as np
from keras import ops

from kerasrnn_edge.errors import UserError, option

from .model import get_start, model_args, set_start
from .run import load_run

SHAPE = ("cell", "rnn_size", "num_layers", "embedding_size")


def load_source(config, text_vocab):
    """(trained model of `config.init_from`, the vocabulary grown with `text_vocab`'s new characters).

    The trained model must have the shape `config` asks for, and the same token kind. Says which characters
    are new, in one line.
    """
    run_dir = config.init_from
    source, vocab, _, _ = load_run(run_dir)
    if vocab.kind != text_vocab.kind:
        raise UserError(f"cannot fine-tune from {run_dir}: it was trained on {vocab.kind} tokens, this run reads "
                        f"{text_vocab.kind} tokens; pass {option('tokens', vocab.kind)}")
    trained = model_args(source)
    changed = [f"{k} {trained[k]} -> {getattr(config, k)}" for k in SHAPE if trained[k] != getattr(config, k)]
    if changed:
        raise UserError(f"cannot fine-tune from {run_dir}: {', '.join(changed)} differ from its model; keep its "
                        f"shape (pass the same {option('preset')} or {' '.join(option(k) for k in SHAPE)})")
    grown, new = vocab.grown(text_vocab)
    if new:
        print(f"kerasrnn: the vocabulary grows by {len(new)} character{'s' * (len(new) > 1)}: "
              f"{' '.join(repr(c) for c in new)}", flush=True)
    return source, grown


def copy_grown(source, target):
    """Copies the trained weights and the start state of `source` into `target`, whose vocabulary is the
    source's grown (the module's docstring says how the new rows start)."""
    new = target.output_shape[-1] - source.output_shape[-1]
    for src, dst in zip(source.trainable_weights, target.trainable_weights):
        value = ops.convert_to_numpy(src.value)
        if src.path == "embedding/embeddings":
            value = np.concatenate([value, np.repeat(value.mean(axis=0, keepdims=True), new, axis=0)])
        elif src.path == "logits/kernel":
            value = np.concatenate([value, np.zeros((value.shape[0], new), value.dtype)], axis=1)
        elif src.path == "logits/bias":
            value = np.concatenate([value, np.full(new, value.min(), value.dtype)])
        dst.assign(value)
    set_start(target, *get_start(source))
