"""Sampling from a trained run with Keras, through the sampling contract shared with the edge sampler."""
import sys

import keras
import numpy as np

from kerasrnn_edge.sampling import check_params, generate

from .model import build_model, copy_weights, get_start, model_args, reset_to_start
from .run import load_run


class KerasStepModel:
    """The step model of the sampling contract over a trained model, rebuilt at batch 1."""

    def __init__(self, trained, vocab):
        self.model = build_model(vocab.size, 1, None, **model_args(trained))
        copy_weights(trained, self.model)
        self.start_token = get_start(self.model)[0]

    def reset(self):
        reset_to_start(self.model)

    def feed(self, ids):
        """Feeds the ids in one call (the prime is not one round trip per character); returns the last logits."""
        logits = self.model(np.asarray(ids, np.int32)[None, :], training=False)
        return keras.ops.convert_to_numpy(logits[0, -1]).astype(np.float32)


def sample(run_dir, prime="", length=500, temperature=1.0, top_k=0, top_p=1.0, seed=0, argmax=False,
           which="best", out=sys.stdout):
    """Prints the prime, then streams `length` sampled tokens of text to `out`."""
    check_params(temperature, top_k, top_p, length)
    trained, vocab, _, _ = load_run(run_dir, which)
    pieces = generate(KerasStepModel(trained, vocab), vocab, prime, length, temperature, top_k, top_p,
                      seed, argmax)
    out.write(prime)
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write("\n")
