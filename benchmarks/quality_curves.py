"""Validation loss against wall time for training runs (and the PyTorch reference), as a plot and a table.

    python benchmarks/quality_curves.py RUN [RUN ...] [--torch-log FILE] [--out curves.png]

Each RUN is a kerasrnn run directory or a copy of its history.csv (NAME.csv); FILE holds the JSON lines that
`torch_reference.py quality ...` printed. Prints one markdown row per curve: best validation loss,
when it was reached, and the validations run.
"""
import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kerasrnn_edge.errors import ArgumentParser, one_line_errors  # noqa: E402



def run_name(path):
    return os.path.splitext(os.path.basename(os.path.normpath(path)))[0]


def run_curve(path):
    with open(os.path.join(path, "history.csv") if os.path.isdir(path) else path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [(float(r["seconds"]), float(r["val_loss"]), int(r["step"])) for r in rows]


def torch_curve(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.startswith("{")]
    return [(r["seconds"], r["val"], r["step"]) for r in rows if "val" in r]


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--torch-log", help="JSON lines from torch_reference.py quality")
    parser.add_argument("--out", default="curves.png")
    args = parser.parse_args()
    curves = {run_name(r): run_curve(r) for r in args.runs}
    if args.torch_log:
        curves["PyTorch reference"] = torch_curve(args.torch_log)

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    lowest = min(loss for points in curves.values() for _, loss, _ in points)
    ax.set_ylim(lowest - 0.05, lowest + 0.5)  # the region where the runs differ; the first validations are far above
    print("| run | best val loss | at (s) | step | validations |\n|---|---|---|---|---|")
    for name, points in curves.items():
        seconds, losses, steps = zip(*points)
        best = min(range(len(points)), key=losses.__getitem__)
        print(f"| {name} | {losses[best]:.4f} | {seconds[best]:.0f} | {steps[best]} | {len(points)} |")
        ax.plot(seconds, losses, marker=".", label=f"{name} (best {losses[best]:.4f})")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("validation loss (nats/char)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    with one_line_errors():
        main()
