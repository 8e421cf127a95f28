"""Sampling from a trained run with Keras, through the sampling contract shared with the edge sampler."""
import sys

import keras
import numpy as np

from kerasrnn_edge.samples import Novelty, write_samples
from kerasrnn_edge.sampling import check_params, generate, generate_batch, stream_seed

from . import corpus
from .gpt import KerasGPTStep, is_gpt
from .model import build_model, copy_weights, get_start, model_args, reset_to_start
from .run import load_run


class KerasStepModel:
    """The step model of the sampling contract over a trained model, rebuilt at batch 1; or at `batch`
    rows, the batched step model of sampling.generate_batch (N streams in one call per token)."""

    def __init__(self, trained, vocab, batch=1):
        self.batch = batch
        self.model = build_model(vocab.size, batch, None, **model_args(trained))
        copy_weights(trained, self.model)
        self.start_token = get_start(self.model)[0]

    def reset(self):
        reset_to_start(self.model)

    def feed(self, ids):
        """Feeds the ids in one call (the prime is not one round trip per character); returns the last
        logits: ids [k] -> [V] at batch 1, ids [batch, k] -> [batch, V]."""
        ids = np.asarray(ids, np.int32)
        logits = self.model(ids if ids.ndim == 2 else ids[None, :], training=False)
        logits = keras.ops.convert_to_numpy(logits[:, -1]).astype(np.float32)
        return logits if ids.ndim == 2 else logits[0]


def step_model(trained, vocab, batch=1):
    """The Keras step model of a trained run, an RNN's or a GPT's, at `batch` rows."""
    return KerasGPTStep(trained, batch) if is_gpt(trained) else KerasStepModel(trained, vocab, batch)


def sample(run_dir, prime="", length=500, temperature=1.0, top_k=0, top_p=1.0, seed=0, argmax=False,
           which="best", out=sys.stdout):
    """Prints the prime, then streams `length` sampled tokens of text to `out`."""
    check_params(temperature, top_k, top_p, length)
    trained, vocab, _, _ = load_run(run_dir, which)
    pieces = generate(step_model(trained, vocab), vocab, prime, length, temperature, top_k, top_p,
                      seed, argmax)
    out.write(prime)
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write("\n")


def sample_many(run_dir, prime="", length=500, temperature=1.0, top_k=0, top_p=1.0, seed=0, argmax=False,
                which="best", num_samples=1, until="", novel=False, out=None, err=None):
    """Prints `num_samples` samples computed as one batch (stream i seeded by stream_seed(seed, i)), each
    cut after `until`; `novel`: only those not found in the run's training text (kerasrnn_edge.samples)."""
    check_params(temperature, top_k, top_p, length)
    trained, vocab, config, _ = load_run(run_dir, which)
    novelty = None
    if novel:
        src = corpus.source(config)
        novelty = Novelty(corpus.text(src), until, src)
    seeds = [stream_seed(seed, i) for i in range(num_samples)]
    texts = generate_batch(step_model(trained, vocab, num_samples), vocab, prime, length, temperature, top_k,
                           top_p, seeds, argmax, until)
    write_samples(texts, prime, until, novelty, out, err)
