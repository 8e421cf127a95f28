"""TF Serving generate throughput on CPU: the SavedModel's serving_default at batch 1 and 32, beside the
edge sampler (EdgeSampler on the same weights' bundle), for the `tiny` preset's shape (1 x 256 LSTM,
embedding 64, vocab 65). Untrained weights (speed does not depend on them); one thread everywhere.

    python benchmarks/serving_throughput.py [--length 200] [--seconds 3]
"""
import argparse
import datetime
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from kerasrnn.config import PRESETS, Config  # noqa: E402
from kerasrnn.model import build_model  # noqa: E402
from kerasrnn.run import save_model, write_json  # noqa: E402
from kerasrnn_edge.sampler import EdgeSampler  # noqa: E402
from kerasrnn_edge.vocab import Vocab  # noqa: E402
from kerasrnn_export import export_bundle  # noqa: E402
from kerasrnn_export.serving import export_serving  # noqa: E402

CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # tiny-shakespeare's 65
MODEL = {k: PRESETS["tiny"][k] for k in ("cell", "rnn_size", "num_layers", "embedding_size")}
PROMPT = "ROMEO:"


def chars_per_second(fn, chars, seconds):
    """`chars` / the mean time of `fn()`, after one warm-up call, over about `seconds`."""
    fn()
    n, start = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - start < seconds:
        fn()
        n += 1
    return chars * n / (time.perf_counter() - start)


def make_run(run_dir):
    vocab = Vocab("char", CHARS)
    os.makedirs(run_dir)
    save_model(build_model(vocab.size, 1, None, **MODEL), os.path.join(run_dir, "best.keras"))
    write_json(os.path.join(run_dir, "config.json"), Config(**MODEL).to_json())
    write_json(os.path.join(run_dir, "vocab.json"), vocab.to_json())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=200, help="characters generated per prompt")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "run")
        make_run(run_dir)
        generate = tf.saved_model.load(export_serving(run_dir, os.path.join(tmp, "models"))).signatures["serving_default"]
        export_bundle(run_dir, os.path.join(tmp, "bundle"))

        def serving(batch):
            return lambda: generate(prompt=tf.constant([PROMPT] * batch), max_length=tf.constant(args.length),
                                    temperature=tf.constant(1.0), top_k=tf.constant(0), seed=tf.constant(1, tf.int64))

        rows = [(f"TF Serving SavedModel generate, batch {b}", chars_per_second(serving(b), b * args.length, args.seconds))
                for b in (1, 32)]
        for runtime in ("ai-edge-litert", "onnxruntime"):
            sampler = EdgeSampler.load(os.path.join(tmp, "bundle"), runtime=runtime)
            edge = lambda: "".join(sampler.generate(PROMPT, args.length, seed=1))  # noqa: E731
            rows.append((f"EdgeSampler.generate ({runtime}, fp32), batch 1", chars_per_second(edge, args.length, args.seconds)))
    print(f"{datetime.date.today()}  {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"1 thread; tensorflow {tf.__version__}; model {MODEL}, vocab {len(CHARS)}; prompt {PROMPT!r}, "
          f"{args.length} characters per prompt")
    print("| path | chars/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
