"""The gallery (docs/gallery.md): one small model per corpus, trained on this machine, and what it writes.

    python benchmarks/gallery.py [--corpora shakespeare python-stdlib linux names] [--runs runs/gallery]

For each corpus, trains `kerasrnn train --corpus NAME ... --run-dir RUNS/NAME` unless that run exists
(its wall time is kept in RUNS/NAME/gallery.json), then prints a markdown section: the command, the
wall time, the best validation loss in nats and bits per character, and samples at temperatures 0.5,
0.8 and 1.0 (seed 1). For names, also the share of 1,000 sampled names (one batch,
`--num-samples 1000 --until "\\n" --novel`) that are not in the training list: the blog's novel names.

Nothing is downloaded: tiny-shakespeare is read from ../shared/data when it is there (the same file,
by SHA-256, that `--corpus shakespeare` downloads), `linux` needs Debian's linux-source-6.1 package and
`names` the `names` PyPI package (`kerasrnn corpus list` says what is available).
"""
import json
import math
import os
import shlex
import subprocess
import sys
import time

from kerasrnn.run import load_checkpoints
from kerasrnn_edge.errors import ArgumentParser, one_line_errors

SHARED_SHAKESPEARE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "tinyshakespeare.txt")
TINY = ["--preset", "tiny", "--max-seconds", "300"]
CORPORA = {
    "shakespeare": TINY,
    "python-stdlib": TINY,
    "linux": TINY,
    # 5,000 short lines: a smaller model with dropout, stopped when validation stops improving
    "names": ["--preset", "tiny", "--rnn-size", "128", "--batch-size", "16", "--seq-length", "32", "--dropout", "0.2",
              "--eval-every", "50", "--patience", "5", "--max-epochs", "500", "--max-seconds", "300"],
}
TEMPERATURES = (0.5, 0.8, 1.0)
NAMES_SAMPLED = 1000


def train_command(name, run_dir):
    source = ["--corpus", name]
    if name == "shakespeare" and os.path.exists(SHARED_SHAKESPEARE):
        source = ["--text", os.path.relpath(SHARED_SHAKESPEARE)]
    return ["kerasrnn", "train", *source, *CORPORA[name], "--run-dir", run_dir]


def trained(name, run_dir):
    """Trains the run unless it exists; returns {"command": ..., "seconds": wall time}."""
    record_path = os.path.join(run_dir, "gallery.json")
    if os.path.exists(record_path):
        with open(record_path, encoding="utf-8") as f:
            return json.load(f)
    command = train_command(name, run_dir)
    print(f"training {name}: {shlex.join(command)}", file=sys.stderr, flush=True)
    began = time.monotonic()
    subprocess.run(command, check=True, stdout=sys.stderr)
    record = {"command": shlex.join(command), "seconds": round(time.monotonic() - began, 1)}
    with open(record_path, "w", encoding="utf-8") as f:
        json.dump(record, f)
    return record


def sample(run_dir, *args):
    done = subprocess.run(["kerasrnn", "sample", run_dir, *map(str, args)], check=True, capture_output=True,
                          text=True)
    return done.stdout, done.stderr


def novel_share(run_dir):
    """Share of NAMES_SAMPLED names, sampled as one batch, not in the training list."""
    novel, _ = sample(run_dir, "--num-samples", NAMES_SAMPLED, "--until", "\\n", "--novel", "--length", 40,
                      "--temperature", 1.0, "--seed", 1)
    names = novel.splitlines()
    return len(names) / NAMES_SAMPLED, names[:12]


def section(name, run_dir):
    record = trained(name, run_dir)
    best = load_checkpoints(run_dir)["best"]
    lines = [f"## {name}", "", "```bash", record["command"], "```", "",
             f"Wall time {record['seconds']:.0f} s; best validation loss {best['val_loss']:.4f} nats "
             f"({best['val_loss'] / math.log(2):.3f} bits) per character, at step {best['step']}.", ""]
    if name == "names":
        share, examples = novel_share(run_dir)
        lines += [f"Of {NAMES_SAMPLED:,} names sampled at temperature 1.0, {share:.1%} are not in the training "
                  f"list; the first few: {', '.join(examples)}.", ""]
    for temperature in TEMPERATURES:
        length = 300 if name == "names" else 500
        text, _ = sample(run_dir, "--temperature", temperature, "--length", length, "--seed", 1)
        lines += [f"Temperature {temperature}:", "", "```", text.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--runs", default="runs/gallery")
    args = parser.parse_args()
    for name in args.corpora:
        print(section(name, os.path.join(args.runs, name)), flush=True)


if __name__ == "__main__":
    with one_line_errors():
        main()
