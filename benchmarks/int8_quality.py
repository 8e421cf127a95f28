"""int8 vs fp32: validation loss (nats per character) of a trained run's edge bundle.

Feeds the run's validation split (as training splits it) as one stream through the fp32 and int8
TFLite step models on ai-edge-litert, and reports the mean cross-entropy of each next character.
Goal: int8 within +0.02 nats/char of fp32.

    python benchmarks/int8_quality.py RUN_DIR [--bundle DIR] [--chars N]
"""
import os
import tempfile

import numpy as np

from kerasrnn import corpus, data
from kerasrnn.run import load_checkpoints, load_config
from kerasrnn_edge.errors import ArgumentParser, non_negative, one_line_errors
from kerasrnn_edge.sampler import EdgeSampler
from kerasrnn.export import export_bundle


def stream_loss(step, ids):
    """Mean -log p(ids[t+1] | ids[:t+1]), one token per feed, from the start state."""
    step.reset()
    losses = np.empty(len(ids) - 1)
    for t in range(len(ids) - 1):
        logits = step.feed(ids[t:t + 1]).astype(np.float64)
        losses[t] = np.logaddexp.reduce(logits) - logits[ids[t + 1]]
    return losses.mean()


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--bundle", help="an exported bundle of RUN_DIR (default: export to a temporary one)")
    parser.add_argument("--chars", type=non_negative(int), default=0, help="use the first N validation characters (0: all)")
    args = parser.parse_args()
    config = load_config(args.run_dir)
    _, ids = corpus.load_ids(corpus.source(config), config.tokens)
    val = data.split(ids, config.train_frac, config.val_frac)[1].astype(np.int32)
    val = val[:args.chars] if args.chars else val
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle or os.path.join(scratch, "bundle")
        if not args.bundle:
            export_bundle(args.run_dir, bundle)
        fp32 = stream_loss(EdgeSampler.load(bundle, "ai-edge-litert", "fp32").model, val)
        int8 = stream_loss(EdgeSampler.load(bundle, "ai-edge-litert", "int8").model, val)
    best = load_checkpoints(args.run_dir).get("best", {})
    print(f"run {args.run_dir}: {config.cell} {config.num_layers}x{config.rnn_size}, best val_loss in training "
          f"{best.get('val_loss')} (batched streams)")
    print(f"validation split, {len(val):,} characters as one stream:")
    print(f"  fp32 {fp32:.5f} nats/char   int8 {int8:.5f} nats/char   int8 - fp32 {int8 - fp32:+.5f} "
          f"({'within' if int8 - fp32 <= 0.02 else 'OVER'} the +0.02 goal)")


if __name__ == "__main__":
    with one_line_errors():
        main()
