"""Cold start: do a sample's first characters read as well as its later ones?

For 20 seeds at temperature 0.8, samples 400 characters after an empty prime and after "ROMEO:" through
the sampling contract (export/SPEC.md) on the run's edge bundle (ONNX Runtime: the same text as
`kerasrnn sample`), then scores every sampled character with the same model after it has read 500
characters of validation text and the prime: a sample that starts as noise costs many nats there. The
500 characters end at the validation text's first paragraph break after them (a blank line), since a
sample begins where a paragraph begins; `--context-end any` takes the first 500 as they are.
Reports the mean nats per character of characters 0-99 and 300-399 of the samples and the gap between
them (goal: at most 0.25 for both primes).

`--start zeros` samples as contract 1 did (zero state, uniform first logits, no start token), to compare
on the same weights.

    python benchmarks/cold_start.py RUN_DIR [--start model|zeros|both] [--context-end break|any] [--seeds 20]
"""
import os
import tempfile

import numpy as np

from kerasrnn import corpus, data
from kerasrnn.run import load_checkpoints, load_config
from kerasrnn_edge.errors import ArgumentParser, non_negative, one_line_errors, positive
from kerasrnn_edge.sampler import EdgeSampler
from kerasrnn_edge.sampling import generate
from kerasrnn.export import export_bundle

PRIMES = ("", "ROMEO:")
LENGTH, CONTEXT = 400, 500
EARLY, LATE = slice(0, 100), slice(300, 400)


class ZeroStart:
    """Contract 1's start over a step model of contract 2: zero state, no start token, and uniform
    logits until a token is fed."""

    def __init__(self, model, vocab_size):
        self.model, self.vocab_size, self.start_token = model, vocab_size, -1
        model.start = [np.zeros_like(s) for s in model.start]

    def reset(self):
        self.model.reset()

    def feed(self, ids):
        ids = [i for i in ids if i != self.start_token]
        return self.model.feed(ids) if ids else np.zeros(self.vocab_size, np.float32)


def scoring_context(val_ids, vocab, at_break):
    """CONTEXT validation tokens, ending at the first blank line after them if `at_break`."""
    end = CONTEXT
    if at_break:
        newline = vocab.encode("\n")[0]
        blank = np.flatnonzero((val_ids[CONTEXT:-1] == newline) & (val_ids[CONTEXT + 1:] == newline))
        end = CONTEXT + int(blank[0]) + 2 if len(blank) else CONTEXT
    return np.asarray(val_ids[end - CONTEXT:end], np.int32)


def token_losses(model, context, scored):
    """-log p of each id of `scored`, by `model` reading `context` first (one token per feed)."""
    model.reset()
    logits = model.feed(context)
    losses = []
    for token in scored:
        x = logits.astype(np.float64)
        losses.append(np.logaddexp.reduce(x) - x[token])
        logits = model.feed([token])
    return np.array(losses)


def measure(bundle, start, val_ids, seeds, temperature):
    """{prime: (early mean, late mean, first sample's text)} for one kind of start."""
    sampler = EdgeSampler.load(bundle, "onnxruntime")
    vocab = sampler.vocab
    model = ZeroStart(sampler.model, vocab.size) if start == "zeros" else sampler.model
    scorer = EdgeSampler.load(bundle, "onnxruntime").model
    results = {}
    for prime in PRIMES:
        losses, texts = [], []
        for seed in range(seeds):
            text = "".join(generate(model, vocab, prime, LENGTH, temperature, seed=seed))
            ids = vocab.encode(text)
            losses.append(token_losses(scorer, np.concatenate([val_ids, vocab.encode(prime)]).astype(np.int32), ids))
            texts.append(text)
        losses = np.stack(losses)
        results[prime] = (losses[:, EARLY].mean(), losses[:, LATE].mean(), texts)
    return results


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--start", choices=("model", "zeros", "both"), default="both",
                        help="model: the bundle's start state and token (contract 2); zeros: contract 1's start")
    parser.add_argument("--context-end", choices=("break", "any"), default="break",
                        help="the scoring context ends at a paragraph break, or anywhere")
    parser.add_argument("--seeds", type=positive(int), default=20)
    parser.add_argument("--temperature", type=positive(float), default=0.8)
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--show", type=non_negative(int), default=4, help="print the first 120 characters of this seed's samples")
    args = parser.parse_args()
    config = load_config(args.run_dir)
    vocab, ids = corpus.load_ids(corpus.source(config), config.tokens)
    val_ids = scoring_context(np.asarray(data.split(ids, config.train_frac, config.val_frac)[1]), vocab,
                              args.context_end == "break")
    best = load_checkpoints(args.run_dir).get(args.checkpoint, {})
    print(f"run {args.run_dir} ({args.checkpoint}: step {best.get('step')}, val_loss {best.get('val_loss')}); "
          f"{args.seeds} seeds, temperature {args.temperature}, {LENGTH} characters, scored after {CONTEXT} "
          f"validation characters ending {'at a paragraph break' if args.context_end == 'break' else 'anywhere'}\n")
    print("| start | prime | chars 0-99 (nats) | chars 300-399 | gap |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        bundle = os.path.join(scratch, "bundle")
        export_bundle(args.run_dir, bundle, which=args.checkpoint)
        shown = []
        for start in ("model", "zeros") if args.start == "both" else (args.start,):
            for prime, (early, late, texts) in measure(bundle, start, val_ids, args.seeds, args.temperature).items():
                print(f"| {start} | {prime!r} | {early:.3f} | {late:.3f} | {early - late:+.3f} |", flush=True)
                shown.append((start, prime, texts[args.show]))
    print(f"\nseed {args.show}, the first 120 characters:")
    for start, prime, text in shown:
        print(f"\n{start}, prime {prime!r}:\n{prime}{text[:120]}")


if __name__ == "__main__":
    with one_line_errors():
        main()
