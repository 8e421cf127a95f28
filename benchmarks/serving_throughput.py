"""TF Serving generate throughput on CPU: the SavedModel's serving_default at batch 1 and 32, beside the
edge sampler (EdgeSampler on the same weights' bundle), for the `tiny` preset's shape (1 x 256 LSTM,
embedding 64, vocab 65). Untrained weights (speed does not depend on them); one thread everywhere.

    python benchmarks/serving_throughput.py [--length 200] [--seconds 3] [--before REV]

--before REV also exports the same weights with the code of git revision REV (in a worktree of its own) and
measures both,
in alternating rounds (the median of 3 each), so that both see the same load on a shared machine.
"""
import datetime
import functools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from kerasrnn.config import PRESETS, Config  # noqa: E402
from kerasrnn.models.recurrent import build_model  # noqa: E402
from kerasrnn.files import save_model, write_json  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, one_line_errors, positive  # noqa: E402
from kerasrnn_edge.sampler import EdgeSampler  # noqa: E402
from kerasrnn_edge.vocab import Vocab  # noqa: E402
from kerasrnn.export import export_bundle  # noqa: E402
from kerasrnn.export import export_serving  # noqa: E402

CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # tiny-shakespeare's 65
MODEL = {k: PRESETS["tiny"][k] for k in ("cell", "rnn_size", "num_layers", "embedding_size")}
PROMPT = "ROMEO:"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUEST = dict(max_length=200, temperature=1.0, top_k=0, top_p=1.0, argmax=False, seed=1)


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


def export_serving_at(rev, tmp):
    """export_serving as of git revision `rev`: that revision, checked out in a worktree of its own, exports in a
    process of its own (its modules are not this revision's), and the SavedModel it writes is measured here."""
    tree = os.path.join(tmp, f"at-{rev}")
    subprocess.run(["git", "worktree", "add", "--detach", "-q", tree, rev], cwd=REPO, check=True)
    script = ("import sys\n"
              "try:\n    from kerasrnn.export import export_serving\n"
              "except ImportError:\n    from kerasrnn_export.serving import export_serving\n"
              "print(export_serving(sys.argv[1], sys.argv[2]))\n")

    def export(run_dir, base_dir):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tree, os.path.join(tree, "export")]))
        done = subprocess.run([sys.executable, "-c", script, run_dir, base_dir], env=env, check=True,
                              capture_output=True, text=True)
        return done.stdout.strip().splitlines()[-1]
    return export


def remove_worktrees(tmp):
    for name in os.listdir(tmp):
        if name.startswith("at-"):
            subprocess.run(["git", "worktree", "remove", "--force", os.path.join(tmp, name)], cwd=REPO, check=False)


def request(generate, batch, **settings):
    """generate's inputs for `batch` prompts: REQUEST with `settings`, in the dtypes of the signature (the
    revision before sampling contract 2 took a float32 temperature and an int64 seed, and had no top_p)."""
    specs = generate.structured_input_signature[1]
    values = {"prompt": [PROMPT] * batch, **REQUEST, **settings}
    return {name: tf.constant(values[name], spec.dtype) for name, spec in specs.items()}


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=positive(int), default=200, help="characters generated per prompt")
    parser.add_argument("--seconds", type=positive(float), default=3.0, help="time per measurement")
    parser.add_argument("--before", help="also measure the serving code of this git revision")
    args = parser.parse_args()
    REQUEST["max_length"] = args.length
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "run")
        make_run(run_dir)
        exports = {"": export_serving}
        try:
            if args.before:
                exports[f" ({args.before})"] = export_serving_at(args.before, tmp)
            generates = {label: tf.saved_model.load(export(run_dir, os.path.join(tmp, f"models{i}"))
                                                    ).signatures["serving_default"]
                         for i, (label, export) in enumerate(exports.items())}
        finally:
            remove_worktrees(tmp)
        export_bundle(run_dir, os.path.join(tmp, "bundle"))

        cases = [(1, {}), (32, {}), (32, {"top_k": 5}), (32, {"top_k": 5, "top_p": 0.9})]
        rows = []
        for batch, settings in cases:
            rates = {label: [] for label, generate in generates.items() if "top_p" not in settings
                     or "top_p" in generate.structured_input_signature[1]}
            for _ in range(3 if args.before else 1):
                for label in rates:
                    call = functools.partial(generates[label], **request(generates[label], batch, **settings))
                    rates[label].append(chars_per_second(call, batch * args.length, args.seconds))
            shown = ", ".join(f"{k} {v}" for k, v in settings.items())
            rows += [(f"TF Serving SavedModel generate{label}, batch {batch}{', ' + shown if shown else ''}",
                      statistics.median(r)) for label, r in rates.items()]
        for runtime in ("ai-edge-litert", "onnxruntime"):
            sampler = EdgeSampler.load(os.path.join(tmp, "bundle"), runtime=runtime)
            edge = lambda: "".join(sampler.generate(PROMPT, args.length, seed=1))  # noqa: E731
            rows.append((f"EdgeSampler.generate ({runtime}, fp32), batch 1", chars_per_second(edge, args.length, args.seconds)))
    print(f"{datetime.date.today()}  {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"1 thread; tensorflow {tf.__version__}; model {MODEL}, vocab {len(CHARS)}; prompt {PROMPT!r}, "
          f"{args.length} characters per prompt, temperature 1, top_k 0, top_p 1 unless shown; load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| path | chars/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    with one_line_errors():
        main()
