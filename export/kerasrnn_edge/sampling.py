"""The sampling contract: one random number generator and one algorithm, specified in SPEC.md.

Every sampler follows it through this code (the Keras sampler, the edge sampler, and the Java
port checks itself against the test vectors in sampling_vectors.json), so the same seed and the
same logits give the same text everywhere.
"""
import numpy as np

from .errors import UserError, option

MASK64 = (1 << 64) - 1


class SplitMix64:
    """Portable 64-bit generator (Steele, Lea & Flood 2014): a few integer ops that Java reproduces."""

    def __init__(self, seed: int):
        self.state = int(seed) & MASK64

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def next_double(self) -> float:
        """Uniform in [0, 1) with 53 random bits."""
        return (self.next_u64() >> 11) * 2.0**-53


def check_params(temperature=1.0, top_k=0, top_p=1.0, length=0):
    if not temperature > 0:
        raise UserError(f"temperature must be > 0 (got {temperature}); use {option('argmax', True)} for greedy "
                        "decoding")
    if top_k < 0:
        raise UserError(f"top-k must be >= 0 (got {top_k}); 0 keeps every token")
    if not 0 < top_p <= 1:
        raise UserError(f"top-p must be in (0, 1] (got {top_p}); 1 keeps every token")
    if length < 0:
        raise UserError(f"length must be >= 0 (got {length})")


def choose(logits, rng, temperature=1.0, top_k=0, top_p=1.0, argmax=False) -> int:
    """One token id from `logits` (float32 [V]), drawing at most one number from `rng`."""
    return int(choose_rows(np.asarray(logits)[None], [rng], temperature, top_k, top_p, argmax)[0])


def choose_rows(logits, rngs, temperature=1.0, top_k=0, top_p=1.0, argmax=False):
    """One token id per row of `logits` (float32 [R, V]), row r drawing at most one number from `rngs[r]`:
    choose() for R streams in one pass of numpy, with the same arithmetic row by row (SPEC.md)."""
    if argmax:
        return np.argmax(logits, axis=1)
    x = np.asarray(logits, dtype=np.float64) / temperature
    size = x.shape[1]
    if 0 < top_k < size or top_p < 1.0:
        rows = np.arange(x.shape[0])[:, None]  # to index row by row
    if 0 < top_k < size:
        kept = np.full_like(x, -np.inf)
        best = np.argsort(-x, axis=1, kind="stable")[:, :top_k]  # ties: smaller ids first
        kept[rows, best] = x[rows, best]
        x = kept
    w = np.exp(x - x.max(axis=1, keepdims=True))
    if top_p < 1.0:
        order = np.argsort(-w, axis=1, kind="stable")
        cum = np.cumsum(w[rows, order], axis=1)
        n = np.sum(cum < top_p * cum[:, -1:], axis=1) + 1  # the first n - 1 with cum >= top_p * Z
        w[rows, order] = np.where(np.arange(size) < n[:, None], w[rows, order], 0.0)
    cum = np.cumsum(w, axis=1)
    u = np.array([rng.next_double() for rng in rngs])
    above = cum > (u * cum[:, -1])[:, None]
    ids = above.argmax(axis=1)  # the first i with u * C[V-1] < C[i]
    for r, found in enumerate(above[:, -1].tolist()):
        if not found:  # rounding left none: the last id with w > 0
            ids[r] = np.flatnonzero(w[r])[-1]
    return ids


def check_stop(stop):
    """The stop strings as a tuple; an empty one is an error (it would stop before the first token)."""
    stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if any(not s for s in stop):
        raise UserError(f"a stop string must not be empty (got {option('stop', '')}): give the text that ends "
                        "the generation")
    return stop


def stop_index(text, stop, checked=0):
    """Where `text` ends by the stop strings (SPEC.md, "Stop strings"): the start of the leftmost occurrence of
    any of them, or -1 for none; `checked`: the length of a prefix of `text` known to contain none."""
    hits = [i for s in stop if (i := text.find(s, max(0, checked - len(s) + 1))) >= 0]
    return min(hits, default=-1)


class StopText:
    """Streams generated text up to the first stop string, never past it: `add(piece)` returns what may be
    printed now, holding back a tail that could begin a stop string; `stopped` once one has occurred."""

    def __init__(self, stop):
        self.stop, self.text, self.shown, self.stopped = stop, "", 0, False

    def add(self, piece):
        checked = len(self.text)
        self.text += piece
        end = stop_index(self.text, self.stop, checked)
        self.stopped = end >= 0
        if not self.stopped:  # hold back the longest tail that is a proper prefix of a stop string
            end = len(self.text) - max((k for s in self.stop for k in range(1, len(s))
                                        if self.text.endswith(s[:k])), default=0)
        out, self.shown = self.text[self.shown:end], end
        return out

    def rest(self):
        """At the end without a stop string: the text held back."""
        out, self.shown = self.text[self.shown:], len(self.text)
        return out


def generate(model, vocab, prime="", length=100, temperature=1.0, top_k=0, top_p=1.0, seed=0, argmax=False,
             stop=()):
    """Returns an iterator over `length` pieces of text sampled from `model` after feeding `prime`; with stop
    strings, pieces of the text before the first of them (SPEC.md, "Stop strings"), streamed as safe to print.

    `model` is any step model: `start_token`, `reset()` (to the start state) and
    `feed(ids) -> logits after the last id` (float32 [V]). The start token is fed before the prime, so
    even an empty prime gives the model's own first logits. Bad parameters and prime characters
    outside the vocabulary raise here, before any text is produced.
    """
    check_params(temperature, top_k, top_p, length)
    stop = check_stop(stop)
    pieces = _generate(model, vocab, vocab.encode(prime), length, temperature, top_k, top_p, SplitMix64(seed), argmax)
    return _until_stop(pieces, stop) if stop else pieces


def _generate(model, vocab, ids, length, temperature, top_k, top_p, rng, argmax):
    decode = vocab.decoder()
    model.reset()
    logits = model.feed(np.concatenate([[model.start_token], ids]).astype(np.int32))
    for n in range(length):
        token = choose(logits, rng, temperature, top_k, top_p, argmax)
        yield decode(token)
        if n + 1 < length:
            logits = model.feed(np.array([token], np.int32))


def _until_stop(pieces, stop):
    text = StopText(stop)
    for piece in pieces:
        yield text.add(piece)
        if text.stopped:
            return  # no more tokens are generated
    yield text.rest()


GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment


def stream_seed(seed: int, i: int) -> int:
    """The seed of stream `i` of a batch sampled with `seed` (SPEC.md, "Many samples"): `seed` itself for
    stream 0, so that it is the single sample; for i >= 1, the i-th number a SplitMix64 seeded with
    `seed` returns, computed directly (any i; arithmetic modulo 2^64)."""
    if i == 0:
        return int(seed) & MASK64
    rng = SplitMix64((int(seed) + (i - 1) * GOLDEN) & MASK64)
    return rng.next_u64()


def generate_batch(model, vocab, prime="", length=100, temperature=1.0, top_k=0, top_p=1.0, seeds=(0,),
                   argmax=False, until="", stop=()):
    """The texts of len(seeds) independent streams, stream j being exactly `generate(..., seed=seeds[j],
    stop=stop)` cut after the first `until` it emits (SPEC.md, "Many samples"); each text ends with `until`,
    or ends before a stop string, or has `length` tokens when neither came.

    `model` is a batched step model: `batch` (B rows), `start_token`, `reset()` and `feed(ids [B, k]) ->
    logits [B, V] after the last column`. The streams run B at a time; the last group is padded with
    rows whose text is thrown away (rows do not influence each other). A stream that has stopped is fed
    its last token again until the whole group stops.
    """
    check_params(temperature, top_k, top_p, length)
    stop = check_stop(stop)
    ids = vocab.encode(prime)
    texts = []
    for first in range(0, len(seeds), model.batch):
        group = list(seeds[first:first + model.batch])
        rngs = [SplitMix64(seed) for seed in group]
        texts += _generate_group(model, vocab, ids, length, temperature, top_k, top_p, rngs, argmax, until, stop)
    return texts


def _generate_group(model, vocab, ids, length, temperature, top_k, top_p, rngs, argmax, until, stop):
    decoders = [vocab.decoder() for _ in rngs]
    texts, running = [""] * len(rngs), list(range(len(rngs)))
    stopped = {}  # stream -> where its text ends, before a stop string
    model.reset()
    prime = np.concatenate([[model.start_token], ids]).astype(np.int32)
    logits = model.feed(np.tile(prime, (model.batch, 1)))
    tokens = np.full((model.batch, 1), model.start_token, np.int32)
    for n in range(length):
        tokens[running, 0] = choose_rows(logits[running], [rngs[j] for j in running], temperature, top_k, top_p,
                                         argmax)
        for j in running:
            checked = len(texts[j])
            texts[j] += decoders[j](int(tokens[j, 0]))
            if stop and (end := stop_index(texts[j], stop, checked)) >= 0:
                stopped[j] = end
        running = [j for j in running if not (until and texts[j].endswith(until)) and j not in stopped]
        if not running or n + 1 == length:
            break
        logits = model.feed(tokens)
    return [text[:stopped[j]] if j in stopped else text for j, text in enumerate(texts)]
