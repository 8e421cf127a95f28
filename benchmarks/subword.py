"""Characters against subword pieces (docs/subword.md): for trained runs, the best validation loss in bits
per character, a sample, and the characters per second the edge sampler writes (LiteRT fp32, one thread).

    python benchmarks/subword.py runs/char300 runs/bpe300 [--length 2000] [--seed 1]

A char run's validation loss is in nats per character (bpc = loss / ln 2); a bpe run's history.csv has
`val_bpc` beside it. Each run is exported to a temporary bundle and sampled from an empty prime.
"""
import argparse
import csv
import datetime
import math
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kerasrnn.run import load_checkpoints, load_vocab  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, non_negative, one_line_errors, positive  # noqa: E402
from kerasrnn_edge.sampler import EdgeSampler  # noqa: E402
from kerasrnn.export import export_bundle  # noqa: E402


def best_bpc(run_dir):
    """(best validation bits per character, the step of that validation)."""
    best = load_checkpoints(run_dir)["best"]
    with open(os.path.join(run_dir, "history.csv")) as f:
        row = next(r for r in csv.DictReader(f) if int(float(r["step"])) == best["step"])
    return float(row.get("val_bpc") or float(row["val_loss"]) / math.log(2)), best["step"]


def edge_speed(run_dir, length, seed):
    """(characters per second of the sampler loop, the text) on LiteRT fp32, one thread."""
    with tempfile.TemporaryDirectory() as bundle:
        export_bundle(run_dir, bundle)
        sampler = EdgeSampler.load(bundle, "ai-edge-litert", "fp32", threads=1)
        "".join(sampler.generate("", 50, seed=seed))  # warm up
        start = time.perf_counter()
        text = "".join(sampler.generate("", length, seed=seed))
        return len(text) / (time.perf_counter() - start), text


def main():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (char and bpe)")
    parser.add_argument("--length", type=positive(int), default=2000, help="tokens to sample for the speed")
    parser.add_argument("--seed", type=non_negative(int), default=1)
    args = parser.parse_args()
    print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print("| run | tokens | vocabulary | best val bpc (step) | edge chars/s (LiteRT fp32) |")
    print("|---|---|---|---|---|")
    samples = []
    for run_dir in args.runs:
        vocab = load_vocab(run_dir)
        bpc, step = best_bpc(run_dir)
        speed, text = edge_speed(run_dir, args.length, args.seed)
        print(f"| {run_dir} | {vocab.kind} | {vocab.size} | {bpc:.4f} ({step:,}) | {speed:,.0f} |")
        samples.append((run_dir, text[:500]))
    for run_dir, text in samples:
        print(f"\n{run_dir}, the first 500 characters of an empty prime's sample (seed {args.seed}):\n")
        print("\n".join("    " + line for line in text.splitlines()))


if __name__ == "__main__":
    with one_line_errors():
        main()
