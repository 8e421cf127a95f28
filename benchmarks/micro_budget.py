"""The micro budget of a run (docs/micro.md): flash, arena and state bytes of its full-integer step model,
its validation loss against the float step (nats per character), and host µs per character under
TensorFlow Lite for Microcontrollers' interpreter (the `tflite-micro` package, reference kernels).

Feeds the first N characters of the run's validation split (as training splits it) as one stream from the
start state, through the float step (numpy, kerasrnn.inspect.recompute: the fp32 step models' math) and
through the micro bundle on TFLite Micro. Goal: full-integer within +0.05 nats/char of fp32.

    python benchmarks/micro_budget.py RUN_DIR [--bundle DIR] [--chars N]
"""
import os
import tempfile
import time

import numpy as np

from kerasrnn import corpus, data
from kerasrnn.run import load_config, load_run
from kerasrnn_edge.errors import ArgumentParser, non_negative, one_line_errors
from kerasrnn_edge.sampler import EdgeSampler
from kerasrnn.export import export_micro
from kerasrnn_export.micro import MODEL_FILE, validation_loss
from kerasrnn.models import family_of

TIMED = 5000  # characters fed for the timing


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--bundle", help="RUN_DIR's micro bundle (default: export one to a temporary folder)")
    parser.add_argument("--chars", type=non_negative(int), default=20_000, help="validation characters to feed (0: all)")
    args = parser.parse_args()
    config = load_config(args.run_dir)
    model, vocab, _, record = load_run(args.run_dir)
    graphs = family_of(model).step_graphs(model)
    _, ids = corpus.load_ids(corpus.source(config), config.tokens, vocab=vocab)
    val = np.asarray(data.split(ids, config.train_frac, config.val_frac)[1], np.int32)
    val = val[:args.chars] if args.chars else val
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle or os.path.join(scratch, "micro")
        if not args.bundle:
            export_micro(args.run_dir, bundle)
        sampler = EdgeSampler.load(bundle, "tflite-micro")
        flash = os.path.getsize(os.path.join(bundle, MODEL_FILE))
        fp32, integer = validation_loss(graphs, sampler.model, val)
        timed = val[:TIMED]
        sampler.model.reset()
        started = time.perf_counter()
        for t in range(len(timed)):
            sampler.model.feed(timed[t:t + 1])
        micros = (time.perf_counter() - started) / len(timed) * 1e6
    arena = sampler.manifest.doc["micro"]["arena_bytes"]
    state = sum(int(np.prod(s["shape"])) for s in sampler.manifest.state) * 4
    print(f"run {args.run_dir}: {config.cell} {config.num_layers}x{config.rnn_size}, best val_loss in training "
          f"{record.get('val_loss')} (batched streams)")
    print(f"flash (model file) {flash:,} bytes   arena {arena:,} bytes   state {state:,} bytes (float32)")
    print(f"validation split, {len(val):,} characters as one stream: fp32 {fp32:.5f} nats/char   "
          f"full-integer {integer:.5f}   difference {integer - fp32:+.5f} "
          f"({'within' if integer - fp32 <= 0.05 else 'OVER'} the +0.05 goal)")
    print(f"TFLite Micro on this host: {micros:.0f} µs per character (one invoke, states in and out; "
          f"over {len(timed):,} characters)")


if __name__ == "__main__":
    with one_line_errors():
        main()
