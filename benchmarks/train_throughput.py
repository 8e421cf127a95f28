"""Training throughput of kerasrnn over the PyTorch reference's grid, measured after warm-up.

    python benchmarks/train_throughput.py [--grid gpu|cpu] [--steps 60] [--rounds 5] [--steps-per-execution 16]
                                          [--torch] [--fused on|off|both] [--precision auto|fp32|bf16]
                                          [--keras-policy mixed_bfloat16]

On the backend `kerasrnn train` takes (KERAS_BACKEND, or torch on a CPU-only Linux machine where it is
installed), one JSON line per shape: characters per second through `model.fit` (stateful batches, Adam, clip 5,
as ../shared/bench/torch_reference.py trains) in the precision `kerasrnn train` takes by default
(`--precision auto`: bf16 on torch on a CPU with bf16 instructions; `--precision fp32` times fp32 there),
ms per step and peak accelerator memory.
`--torch` times that PyTorch peer on the same shapes, on the same device kind, in fp32 and with autocast to
bf16, and adds the ratios to each (ratio_fp32, ratio_bf16). `--fused`
picks the LSTM stack's path: one call of a fused kernel for all layers (on: PyTorch's own LSTM on
torch, cuDNN's on JAX with a GPU), one per layer (off), or a row for each. `--keras-policy` builds
kerasrnn's model under a Keras dtype policy (`mixed_bfloat16`: does Keras's own mixed precision gain on
TensorFlow and JAX, which `kerasrnn train` runs in fp32; docs/benchmarks.md). On the GPU host:
KERAS_BACKEND=jax or torch (no TensorFlow there).

Each measurement runs in a process of its own (kerasrnn's too), warms up for the reference's 10 steps
and times `--steps` steps; the two sides take turns, `--rounds` times per shape, and the fastest round
of each side counts. On a shared machine a process's speed drifts by ±20% from one minute (and one
process) to the next; taking turns exposes both sides to the same drift. Five turns, not three: on this
2-core machine eight fresh processes of each side at 1x512 spread over 145-228 ms a step (kerasrnn) and
120-209 (PyTorch), so the fastest of three still moved the ratio by 0.15 from one run to the next.

On torch the peer takes its turns inside kerasrnn's process instead, `TURN` steps after every `TURN` of
kerasrnn's (`StepTimer`): between processes the drift between processes stayed. Six fresh processes of
each side at 3x128 spread over 44-69k chars/s (kerasrnn) and 52-75k (PyTorch), and that shape's ratio
moved over 0.73-0.94 in six commands (two versions of kerasrnn); six processes whose two sides took
turns inside each gave ratios of 0.91-1.01 at 3x128 and 0.94-0.97 at 1x128 (docs/benchmarks.md). Each
round's process gives both sides' figures, and the ratio is of each side's fastest round, as between
processes. On TensorFlow and JAX the peer keeps processes of its own: their thread pools (and JAX's GPU
memory) would starve it in theirs.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [REPO, os.path.join(REPO, "export")]  # runs from a plain checkout (the GPU host installs nothing)
from kerasrnn.startup import choose_backend  # noqa: E402

choose_backend("train")  # the backend `kerasrnn train` would take here, unless KERAS_BACKEND names one
import keras  # noqa: E402

from kerasrnn.backends import cpu_has_bf16, set_precision  # noqa: E402
from kerasrnn.data import StreamBatches  # noqa: E402
from kerasrnn.models.language_model import core  # noqa: E402
from kerasrnn.models.recurrent import build_model  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, one_line_errors, positive  # noqa: E402
from kerasrnn_edge.vocab import Vocab  # noqa: E402
from shared_folder import shared  # noqa: E402  (beside this script)

GRIDS = {  # the torch reference's grid; the CPU grid is its batch-50 shapes that a 2-core CPU can time
    "gpu": [dict(B=50, T=50, L=l, H=h) for l in (1, 3) for h in (128, 512)]
           + [dict(B=128, T=128, L=3, H=1024, E=256), dict(B=256, T=256, L=2, H=1024, E=256)],
    "cpu": [dict(B=50, T=50, L=1, H=128), dict(B=50, T=50, L=3, H=128), dict(B=50, T=50, L=1, H=512)],
}


WARM = 10  # warm-up steps, as the PyTorch reference takes
TURN = 5  # steps per turn when the peer takes turns in kerasrnn's process


class TorchPeer:
    """The PyTorch reference's training step in this process: its CharLSTM, Adam at 2e-3, cross-entropy and
    clip 5 over its stateful streams, as its `throughput` steps them; with `bf16`, its forward pass under
    PyTorch's autocast to bfloat16 and the loss in fp32, as its `throughput(amp=True)` (`measure` takes
    this peer only where bf16 runs natively: on a GPU, or a CPU with bf16 instructions)."""

    def __init__(self, shape, bf16=False):
        import torch
        sys.path.insert(0, shared("bench"))
        import torch_reference as reference
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        ids, _, self.vocab_size = reference.load()
        xs, ys = reference.streams(ids, shape["B"], shape["T"])
        self.x, self.y = torch.from_numpy(xs).to(self.device), torch.from_numpy(ys).to(self.device)
        self.model = reference.CharLSTM(self.vocab_size, shape.get("E", 64), shape["H"], shape["L"]).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=2e-3)
        self.state, self.i, self.bf16 = None, 0, bf16

    def run(self, steps):
        """Seconds for `steps` steps, results in."""
        import torch
        start = time.perf_counter()
        for _ in range(steps):
            with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
                logits, new = self.model(self.x[self.i % len(self.x)], self.state)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, self.vocab_size).float(),
                                                     self.y[self.i % len(self.y)].reshape(-1))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optimizer.step()
            self.state, self.i = tuple(s.detach() for s in new), self.i + 1
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


class StepTimer(keras.callbacks.Callback):
    """Wall time of the batches after `warm` warm-up batches, read every `turn` batches (the step that ends
    a turn blocks on results). With `peers` ({precision: TorchPeer}), each peer warms up with kerasrnn and
    then takes a turn of `turn` steps after each of kerasrnn's, timed apart: all sides meet the same moments
    of the machine."""

    def __init__(self, warm, turn, peers=None):
        super().__init__()
        self.warm, self.turn, self.peers = warm, turn, peers or {}
        self.batches, self.seconds, self.peer_seconds = 0, 0.0, dict.fromkeys(self.peers, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        self.batches = batch + 1
        timed = self.batches - self.warm
        if timed >= 0 and timed % self.turn == 0:
            keras.ops.convert_to_numpy(logs["loss"])
            self.end_turn(timed and self.turn)

    def on_train_end(self, logs=None):
        timed = self.batches - self.warm
        if timed > 0 and timed % self.turn:  # the data ran out within a turn
            self.end_turn(timed % self.turn)

    def end_turn(self, steps):
        """Ends kerasrnn's turn of `steps` timed steps (0: the warm-up ends), and gives each peer its own."""
        if steps:
            self.seconds += time.perf_counter() - self.start
        for precision, peer in self.peers.items():
            seconds = peer.run(steps or self.warm)
            self.peer_seconds[precision] += seconds if steps else 0.0
        self.start = time.perf_counter()



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
    return "fused" if core(model).runs_fused() else "per-layer"


def kerasrnn_throughput(model, shape, ids, steps, steps_per_execution, peers):
    B, T = shape["B"], shape["T"]
    if keras.backend.backend() == "torch":
        steps_per_execution = 1  # torch runs eagerly: one step per call
    whole = lambda n, k: -(-n // k) * k  # whole compiled calls, whole turns
    warm = whole(WARM, steps_per_execution)
    steps = whole(steps, TURN) if peers else whole(steps, steps_per_execution)
    batches = StreamBatches(ids, B, T)
    model.compile(keras.optimizers.Adam(2e-3, global_clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    timer = StepTimer(warm, TURN if peers else steps, peers)
    model.fit(batches, epochs=1, steps_per_epoch=min(warm + steps, len(batches)), callbacks=[timer], verbose=0,
              shuffle=False)
    timed = timer.batches - warm
    row = dict(chars_per_s=round(B * T * timed / timer.seconds), ms_per_step=round(1000 * timer.seconds / timed, 3),
               peak_mib=peak_memory_mib())
    if peers:
        row.update(peers={precision: dict(device=peer.device, chars_per_s=round(B * T * timed / seconds),
                                          ms_per_step=round(1000 * seconds / timed, 3))
                          for (precision, peer), seconds in zip(peers.items(), timer.peer_seconds.values())})
    return row


def measure(spec):
    """One kerasrnn measurement, in this process (a child of `main`): `spec` is {shape, fused, steps,
    steps_per_execution, peer, precision, policy}, with the PyTorch peer taking turns in fp32 and in bf16 if
    `peer`. kerasrnn trains in `precision`, as `kerasrnn train --precision` takes it, its model built under
    Keras's dtype `policy` if one is given. Prints the row."""
    vocab, ids = Vocab.fit(open(shared("data", "tinyshakespeare.txt"), "rb").read(), "char")
    if spec["policy"]:
        keras.config.set_dtype_policy(spec["policy"])
    model = build(spec["shape"], vocab.size, spec["fused"])
    precision = set_precision(model, spec["precision"])
    peers = {"fp32": TorchPeer(spec["shape"])} if spec["peer"] else None
    if peers and (peers["fp32"].device == "cuda" or cpu_has_bf16()):  # elsewhere bf16 is emulated, no peer
        peers["bf16"] = TorchPeer(spec["shape"], bf16=True)
    row = dict(impl=f"kerasrnn-{keras.backend.backend()}", **spec["shape"], lstm=lstm_path(model),
               precision=spec["policy"] or precision,
               **kerasrnn_throughput(model, spec["shape"], ids[: int(len(ids) * 0.9)], spec["steps"],
                                     spec["steps_per_execution"], peers))
    print(json.dumps(row), flush=True)


def kerasrnn_child(shape, fused, steps, steps_per_execution, peer, precision, policy):
    spec = dict(shape=shape, fused=fused, steps=steps, steps_per_execution=steps_per_execution, peer=peer,
                precision=precision, policy=policy)
    out = subprocess.run([sys.executable, __file__, "--measure", json.dumps(spec)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def torch_peer(shape, steps, amp):
    """The PyTorch reference on one shape, in a process of its own: in kerasrnn's, TensorFlow's spinning
    thread pools would starve it (measured on CPU: 3,047 vs 338,232 chars/s for 1x128)."""
    code = ("import json, sys, torch, torch_reference as t; shape = json.loads(sys.argv[1]); "
            "dev = 'cuda' if torch.cuda.is_available() else 'cpu'; "
            "print(json.dumps(dict(device=dev, **t.throughput(shape, steps=int(sys.argv[2]), amp=sys.argv[3] == '1', dev=dev))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(shape), str(steps), str(int(amp))], check=True,
                         capture_output=True, text=True, cwd=shared("bench")).stdout
    return json.loads(out.strip().splitlines()[-1])


def fastest(runs):
    return max(runs, key=lambda run: run["chars_per_s"])


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=list(GRIDS), default="cpu")
    parser.add_argument("--steps", type=positive(int), default=60, help="timed steps per round")
    parser.add_argument("--rounds", type=positive(int), default=5, help="turns per shape; each side's fastest counts")
    parser.add_argument("--steps-per-execution", type=positive(int), default=1)
    parser.add_argument("--torch", action="store_true",
                        help="also time the PyTorch peer: fp32, and bf16 (autocast) on torch, on a GPU, or on a CPU "
                             "with bf16 instructions")
    parser.add_argument("--fused", choices=("on", "off", "both"), default="on",
                        help="the LSTM stack as one fused kernel call (on), one per layer (off), or both")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="kerasrnn's training precision, as `kerasrnn train --precision` (default auto)")
    parser.add_argument("--keras-policy", choices=("mixed_bfloat16",),
                        help="build kerasrnn's model under this Keras dtype policy (TensorFlow, JAX)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a child's one measurement
    args = parser.parse_args()
    shared("data", "tinyshakespeare.txt")  # a checkout without the shared folder fails here, in one line
    if args.measure:
        return measure(json.loads(args.measure))
    in_process = args.torch and keras.backend.backend() == "torch"  # the peer takes turns in kerasrnn's process
    for shape in GRIDS[args.grid]:
        runs, peers = {}, {}  # kerasrnn's by the LSTM stack's path, the peer's by precision
        fused_choices = {"on": [True], "off": [False], "both": [False, True]}[args.fused]
        for _ in range(args.rounds):
            for fused in list(fused_choices):
                run = kerasrnn_child(shape, fused, args.steps, args.steps_per_execution, in_process, args.precision,
                                     args.keras_policy)
                if fused and fused_choices == [False, True] and run["lstm"] == "per-layer":
                    fused_choices.remove(True)  # no fused path here: "both" times the one path there is
                for precision, peer in run.pop("peers", {}).items():
                    peers.setdefault(precision, []).append(peer)
                runs.setdefault(run["lstm"], []).append(run)
            if args.torch and not in_process:
                peers.setdefault("fp32", []).append(torch_peer(shape, args.steps, amp=False))
                if peers["fp32"][0]["device"] == "cuda" or cpu_has_bf16():  # oneDNN's bf16 LSTM needs them
                    peers.setdefault("bf16", []).append(torch_peer(shape, args.steps, amp=True))
        for measured in runs.values():
            row = fastest(measured)
            for precision, peer_runs in peers.items():
                peer = fastest(peer_runs)["chars_per_s"]
                row.update({f"torch_{precision}": peer, f"ratio_{precision}": round(row["chars_per_s"] / peer, 3)})
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    with one_line_errors():
        main()
