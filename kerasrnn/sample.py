"""Sampling from a trained run with Keras, through the sampling contract shared with the edge sampler."""
import sys

from kerasrnn_edge.beam import beam_search, check_beam, write_beams
from kerasrnn_edge.samples import Novelty, write_samples
from kerasrnn_edge.sampling import check_params, check_stop, generate, generate_batch, stream_seed

from . import corpus
from .models import family_of
from .run import load_run


def step_model(trained, batch=1):
    """The Keras step model of a trained model (its family's), at `batch` rows: the one every sampler of kerasrnn
    runs (`sample`, `--sample-every`, the Python API)."""
    return family_of(trained).step_model(trained, batch)


def sample(run_dir, prime="", length=500, temperature=1.0, top_k=0, top_p=1.0, seed=0, argmax=False,
           which="best", out=sys.stdout, stop=()):
    """Prints the prime, then streams `length` sampled tokens of text to `out` (up to a stop string)."""
    check_params(temperature, top_k, top_p, length)
    stop = check_stop(stop)
    trained, vocab, _, _ = load_run(run_dir, which)
    pieces = generate(step_model(trained), vocab, prime, length, temperature, top_k, top_p,
                      seed, argmax, stop)
    out.write(prime)
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write("\n")


def sample_many(run_dir, prime="", length=500, temperature=1.0, top_k=0, top_p=1.0, seed=0, argmax=False,
                which="best", num_samples=1, until="", novel=False, out=None, err=None, stop=()):
    """Prints `num_samples` samples computed as one batch (stream i seeded by stream_seed(seed, i)), each
    cut after `until`; `novel`: only those not found in the run's training text (kerasrnn_edge.samples)."""
    check_params(temperature, top_k, top_p, length)
    stop = check_stop(stop)
    trained, vocab, config, _ = load_run(run_dir, which)
    novelty = None
    if novel:
        src = corpus.source(config)
        novelty = Novelty(corpus.text(src), until, src)
    seeds = [stream_seed(seed, i) for i in range(num_samples)]
    texts = generate_batch(step_model(trained, num_samples), vocab, prime, length, temperature, top_k,
                           top_p, seeds, argmax, until, stop)
    write_samples(texts, prime, until, novelty, out, err)


def sample_beam(run_dir, prime="", length=500, width=4, length_penalty=0.0, stop=(), show_beams=False,
                which="best", out=None):
    """Prints the prime and the likeliest continuation beam search finds with `width` beams, the rows of one
    batch step model (kerasrnn_edge.beam); `show_beams`: every beam with its score."""
    check_beam(width, length_penalty, length)
    stop = check_stop(stop)
    trained, vocab, _, _ = load_run(run_dir, which)
    beams = beam_search(step_model(trained, width), vocab, prime, length, width, length_penalty, stop)
    write_beams(beams, prime, show_beams, out)
