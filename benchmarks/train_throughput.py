"""Training throughput of kerasrnn over the PyTorch reference's grid, measured after warm-up.

    python benchmarks/train_throughput.py [--grid gpu|cpu] [--steps 60] [--steps-per-execution 16] [--torch]
                                          [--fused on|off|both]

One JSON line per shape: characters per second through `model.fit` (stateful batches, Adam, clip 5,
as ../shared/bench/torch_reference.py trains), ms per step and peak accelerator memory. `--torch`
runs the PyTorch peer on the same shapes in the same command (a child process each), on the same
device kind, and adds the ratios. `--fused` picks the LSTM stack's path: one call of a fused kernel for
all layers (on: PyTorch's own LSTM on torch, cuDNN's on JAX with a GPU), one per layer (off), or a row
for each. On the GPU host: KERAS_BACKEND=jax or torch (no TensorFlow there).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import keras

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [REPO, os.path.join(REPO, "export")]  # runs from a plain checkout (the GPU host installs nothing)
from kerasrnn.data import StreamBatches  # noqa: E402
from kerasrnn.model import build_model, recurrent  # noqa: E402
from kerasrnn_edge.vocab import Vocab  # noqa: E402

# ../shared beside the checkout; on the GPU host, a copy carried inside it (shared/, ignored by git)
SHARED = next(p for p in (os.path.join(REPO, "shared"), os.path.join(REPO, "..", "shared")) if os.path.isdir(p))
DATA = os.path.join(SHARED, "data", "tinyshakespeare.txt")
GRIDS = {  # the torch reference's grid; the CPU grid is its batch-50 shapes that a 2-core CPU can time
    "gpu": [dict(B=50, T=50, L=l, H=h) for l in (1, 3) for h in (128, 512)]
           + [dict(B=128, T=128, L=3, H=1024, E=256), dict(B=256, T=256, L=2, H=1024, E=256)],
    "cpu": [dict(B=50, T=50, L=1, H=128), dict(B=50, T=50, L=3, H=128), dict(B=50, T=50, L=1, H=512)],
}


class StepTimer(keras.callbacks.Callback):
    """Wall time of the batches after `warm` warm-up batches (the step that ends the run blocks on results)."""

    def __init__(self, warm):
        super().__init__()
        self.warm, self.start, self.batches = warm, None, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches = batch + 1
        if self.batches == self.warm:
            keras.ops.convert_to_numpy(logs["loss"])
            self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start


def peak_memory_mib():
    if keras.backend.backend() == "torch":
        import torch
        return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    if keras.backend.backend() == "jax":
        import jax
        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use", 0) / 2**20 or None
    import tensorflow as tf
    if tf.config.list_physical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return None


def build(shape, vocab_size, fused):
    return build_model(vocab_size, shape["B"], shape["T"], cell="lstm", rnn_size=shape["H"], num_layers=shape["L"],
                       embedding_size=shape.get("E", 64), fused=fused)


def lstm_path(model):
    return "fused" if recurrent(model).runs_fused(training=True) else "per-layer"


def kerasrnn_throughput(model, shape, ids, steps, steps_per_execution):
    B, T = shape["B"], shape["T"]
    if keras.backend.backend() == "torch":
        steps_per_execution = 1  # torch runs eagerly: one step per call
    warm = 2 * steps_per_execution
    batches = StreamBatches(ids, B, T)
    model.compile(keras.optimizers.Adam(2e-3, global_clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    timer = StepTimer(warm)
    total = warm + steps
    model.fit(batches, epochs=1, steps_per_epoch=min(total, len(batches)), callbacks=[timer], verbose=0,
              shuffle=False)
    timed = timer.batches - warm
    return dict(chars_per_s=round(B * T * timed / timer.seconds), ms_per_step=round(1000 * timer.seconds / timed, 3),
                peak_mib=peak_memory_mib())


def torch_peer(shape, steps, amp):
    """The PyTorch reference on one shape, in a process of its own: in this one, TensorFlow's spinning
    thread pools would starve it (measured on CPU: 3,047 vs 338,232 chars/s for 1x128)."""
    code = ("import json, sys, torch, torch_reference as t; shape = json.loads(sys.argv[1]); "
            "dev = 'cuda' if torch.cuda.is_available() else 'cpu'; "
            "print(json.dumps(dict(device=dev, **t.throughput(shape, steps=int(sys.argv[2]), amp=sys.argv[3] == '1', dev=dev))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(shape), str(steps), str(int(amp))], check=True,
                         capture_output=True, text=True, cwd=os.path.join(SHARED, "bench")).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=list(GRIDS), default="cpu")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per shape")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch peer (fp32, and bf16 on GPU)")
    parser.add_argument("--fused", choices=("on", "off", "both"), default="on",
                        help="the LSTM stack as one fused kernel call (on), one per layer (off), or both")
    args = parser.parse_args()
    vocab, ids = Vocab.fit(open(DATA, "rb").read(), "char")
    ids = ids[: int(len(ids) * 0.9)]
    fused_choices = {"on": [True], "off": [False], "both": [False, True]}[args.fused]
    for shape in GRIDS[args.grid]:
        models = {}  # by the path the LSTM stack takes: where no fused path exists, "both" times one
        for fused in fused_choices:
            model = build(shape, vocab.size, fused)
            models.setdefault(lstm_path(model), model)
        rows = [dict(impl=f"kerasrnn-{keras.backend.backend()}", **shape, lstm=path,
                     **kerasrnn_throughput(model, shape, ids, args.steps, args.steps_per_execution))
                for path, model in models.items()]
        peers = {}
        if args.torch:
            peers["fp32"] = torch_peer(shape, args.steps, amp=False)
            if peers["fp32"]["device"] == "cuda":
                peers["bf16"] = torch_peer(shape, args.steps, amp=True)
        for row in rows:
            for precision, peer in peers.items():
                row.update({f"torch_{precision}": peer["chars_per_s"],
                            f"ratio_{precision}": round(row["chars_per_s"] / peer["chars_per_s"], 3)})
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
