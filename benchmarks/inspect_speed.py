"""Speed of `kerasrnn inspect`: a report of N characters (default 10,000) of tiny-shakespeare's validation
split for a 2x512 LSTM. Goal (issue 14): at most 60 s on the 2-core CPU. The weights are random (the
time does not depend on them), saved as a run directory that names the text, so the n-gram baseline
fits on the real training split; the time covers everything `kerasrnn inspect` does after loading.

    python benchmarks/inspect_speed.py [--chars N] [--text PATH] [--cell lstm]
"""
import os
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `kerasrnn inspect` sets it, before numpy loads

from kerasrnn import corpus  # noqa: E402
from kerasrnn.config import Config  # noqa: E402
from kerasrnn.inspect.main import inspect_run  # noqa: E402
from kerasrnn.models.recurrent import build_model  # noqa: E402
from kerasrnn.files import save_model, write_json  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, one_line_errors, positive  # noqa: E402


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=positive(int), default=10_000)
    parser.add_argument("--text", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                       "tinyshakespeare.txt"))
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--rnn-size", type=positive(int), default=512)
    parser.add_argument("--num-layers", type=positive(int), default=2)
    args = parser.parse_args()
    config = Config(text=os.path.abspath(args.text), cell=args.cell, rnn_size=args.rnn_size, num_layers=args.num_layers)
    vocab, _ = corpus.load_ids(config.text, config.tokens)
    with tempfile.TemporaryDirectory() as run_dir:
        write_json(os.path.join(run_dir, "config.json"), config.to_json())
        write_json(os.path.join(run_dir, "vocab.json"), vocab.to_json())
        save_model(build_model(vocab.size, 1, None, **config.model_args()), os.path.join(run_dir, "best.keras"))
        start, cpu = time.perf_counter(), time.process_time()
        inspect_run(run_dir, chars=args.chars, out=os.path.join(run_dir, "report.html"), verbose=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        size = os.path.getsize(os.path.join(run_dir, "report.html"))
    print(f"{args.num_layers}x{args.rnn_size} {args.cell}, {args.chars:,} characters: {seconds:.1f} s wall, "
          f"{cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f} (report {size / 1e6:.1f} MB)")


if __name__ == "__main__":
    with one_line_errors():
        main()
