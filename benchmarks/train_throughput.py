"""Training throughput of kerasrnn over the PyTorch reference's grid, or of each model family by sequence length.

    python benchmarks/train_throughput.py [--grid gpu|cpu] [--steps 60] [--rounds 5] [--steps-per-execution 16]
                                          [--torch] [--fused on|off|both] [--precision auto|fp32|bf16]
                                          [--keras-policy mixed_bfloat16] [--warm 10]
    python benchmarks/train_throughput.py --seq-length 64,256,1024,4096 [--models rnn,gpt,mingru,minlstm] [--torch] [...]

On the backend `kerasrnn train` takes (KERAS_BACKEND, or torch on a CPU-only Linux machine where it is
installed), one JSON line per shape: characters per second through `model.fit` (stateful batches, Adam, clip 5,
as ../shared/bench/torch_reference.py trains) in the precision `kerasrnn train` takes by default
(`--precision auto`: bf16 on torch on a CPU with bf16 instructions; `--precision fp32` times fp32 there),
ms per step, the process's CPU time per step (all its threads; on a shared CPU less moved by the others' load
than the wall time, though threads waiting at a barrier spin and count) and peak accelerator memory.
`--torch` times that PyTorch peer on the same shapes, on the same device kind, in fp32 and with autocast to
bf16, and adds the ratios to each (ratio_fp32, ratio_bf16). `--fused`
picks the LSTM stack's path: one call of a fused kernel for all layers (on: PyTorch's own LSTM on
torch, cuDNN's on JAX with a GPU), one per layer (off), or a row for each. `--keras-policy` builds
kerasrnn's model under a Keras dtype policy (`mixed_bfloat16`: does Keras's own mixed precision gain on
TensorFlow and JAX, which `kerasrnn train` runs in fp32; docs/benchmarks.md). On the GPU host:
KERAS_BACKEND=jax or torch (no TensorFlow there).

`--seq-length` times model families instead of the LSTM grid: each of `--models` at each sequence length T, at
B x T = 8,192 tokens a step (B = 8192 / T), in shapes of about 1M trained weights each (`SWEEP`; each row says
its count). The GPT's attention window stays 64 at every T: it trains on independent blocks of T tokens, each
position attending to its last 64 (its attention computes the T x T scores and masks them); the recurrent families
carry their state across batches. A family's lengths take turns, round by round. With `--torch` (on the torch
backend), each family's plain PyTorch peer takes turns in the same process (`SWEEP_PEERS`): the reference's
CharLSTM for the LSTM, lucidrains' minGRU-pytorch for minGRU and minLSTM (`MinLMPeer`); the GPT has none here
(nanoGPT is docs/benchmarks.md's GPT peer).

Each measurement runs in a process of its own (kerasrnn's too), warms up for the reference's 10 steps
(`--warm`) and times `--steps` steps; the two sides take turns, `--rounds` times per shape, and the fastest round
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
import importlib.util
import json
import math
import os
import subprocess
import sys
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [REPO, os.path.join(REPO, "export")]  # runs from a plain checkout (the GPU host installs nothing)
from kerasrnn.startup import choose_backend  # noqa: E402

choose_backend("train")  # the backend `kerasrnn train` would take here, unless KERAS_BACKEND names one
import keras  # noqa: E402

from kerasrnn import models  # noqa: E402
from kerasrnn.backends import cpu_has_bf16, set_precision  # noqa: E402
from kerasrnn.data import StreamBatches  # noqa: E402
from kerasrnn.models.language_model import core  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, UserError, one_line_errors, option, positive  # noqa: E402
from kerasrnn_edge.vocab import Vocab  # noqa: E402
from shared_folder import shared  # noqa: E402  (beside this script)

GRIDS = {  # the torch reference's grid; the CPU grid is its batch-50 shapes that a 2-core CPU can time
    "gpu": [dict(B=50, T=50, L=l, H=h) for l in (1, 3) for h in (128, 512)]
           + [dict(B=128, T=128, L=3, H=1024, E=256), dict(B=256, T=256, L=2, H=1024, E=256)],
    "cpu": [dict(B=50, T=50, L=1, H=128), dict(B=50, T=50, L=3, H=128), dict(B=50, T=50, L=1, H=512)],
}
SWEEP = {  # --seq-length's shapes, each family's build keywords: about 1M trained weights each at 65 characters
    "rnn": dict(cell="lstm", num_layers=1, rnn_size=456, embedding_size=64),
    "gpt": dict(num_layers=4, num_heads=4, width=144, context=64),
    "mingru": dict(num_layers=2, width=192, expansion=1.5),
    "minlstm": dict(num_layers=2, width=184, expansion=1.5),
}
TOKENS = 8192  # B x T of every --seq-length step

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
        self.model = self.build(reference, shape).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=2e-3)
        self.state, self.i, self.bf16 = None, 0, bf16

    def build(self, reference, shape):
        return reference.CharLSTM(self.vocab_size, shape.get("E", 64), shape["H"], shape["L"])

    def forward(self, x):
        """Logits of a batch, the state carried to the next."""
        logits, new = self.model(x, self.state)
        self.state = tuple(s.detach() for s in new)
        return logits

    def run(self, steps):
        """Seconds for `steps` steps, results in."""
        import torch
        start = time.perf_counter()
        for _ in range(steps):
            with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.forward(self.x[self.i % len(self.x)])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, self.vocab_size).float(),
                                                     self.y[self.i % len(self.y)].reshape(-1))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optimizer.step()
            self.i += 1
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


class MinLMPeer(TorchPeer):
    """lucidrains/minGRU-pytorch's `minLM` (`pip install minGRU-pytorch`: the plain PyTorch minGRU that kerasrnn's
    blocks follow) in a `--seq-length` shape: the same blocks, width, depth, expansion and MLP, its log-space scan
    (Heinsen's, by `torch.logcumsumexp`), trained as the CharLSTM peer is. Each batch starts from a zero state:
    its parallel form takes no carried state."""

    def build(self, reference, shape):
        from minGRU_pytorch.minLM import minLM
        args = SWEEP[shape["model"]]
        return minLM(num_tokens=self.vocab_size, dim=args["width"], depth=args["num_layers"],
                     expansion=args["expansion"], use_lstm=shape["model"] == "minlstm")

    def forward(self, x):
        return self.model(x)


SWEEP_PEERS = {  # --seq-length --torch: each family's plain PyTorch peer, built in the family's SWEEP shape
    "rnn": lambda shape, bf16: TorchPeer(dict(shape, L=SWEEP["rnn"]["num_layers"], H=SWEEP["rnn"]["rnn_size"],
                                              E=SWEEP["rnn"]["embedding_size"]), bf16),
    "mingru": MinLMPeer,
    "minlstm": MinLMPeer,
}


class StepTimer(keras.callbacks.Callback):
    """Wall time of the batches after `warm` warm-up batches, read every `turn` batches (the step that ends
    a turn blocks on results). With `peers` ({precision: TorchPeer}), each peer warms up with kerasrnn and
    then takes a turn of `turn` steps after each of kerasrnn's, timed apart: all sides meet the same moments
    of the machine."""

    def __init__(self, warm, turn, peers=None):
        super().__init__()
        self.warm, self.turn, self.peers = warm, turn, peers or {}
        self.batches, self.seconds, self.cpu_seconds, self.peer_seconds = 0, 0.0, 0.0, dict.fromkeys(self.peers, 0.0)

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
            self.cpu_seconds += time.process_time() - self.cpu_start
        for precision, peer in self.peers.items():
            seconds = peer.run(steps or self.warm)
            self.peer_seconds[precision] += seconds if steps else 0.0
        self.start, self.cpu_start = time.perf_counter(), time.process_time()



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
    """The model of a grid shape (the LSTM stack, L x H) or of a sweep's (its `model` family, `SWEEP`'s keywords)."""
    name, args = shape.get("model", "rnn"), SWEEP.get(shape.get("model"))
    if args is None:
        args = dict(cell="lstm", rnn_size=shape["H"], num_layers=shape["L"], embedding_size=shape.get("E", 64))
    if name == "rnn":
        args = dict(args, fused=fused)
    return models.family(name).build(vocab_size, shape["B"], shape["T"], **args)


def describe(model):
    """The LSTM stack's path (fused or per-layer; only the recurrent stack has one) and the trained weights."""
    recurrent = models.family_of(model).name == "rnn"
    path = {"lstm": "fused" if core(model).runs_fused() else "per-layer"} if recurrent else {}
    return dict(path, params=sum(math.prod(w.shape) for w in model.trainable_weights))


def kerasrnn_throughput(model, shape, ids, warm, steps, steps_per_execution, peers):
    B, T = shape["B"], shape["T"]
    if keras.backend.backend() == "torch":
        steps_per_execution = 1  # torch runs eagerly: one step per call
    whole = lambda n, k: -(-n // k) * k  # whole compiled calls, whole turns
    warm = whole(warm, steps_per_execution)
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
               cpu_ms_per_step=round(1000 * timer.cpu_seconds / timed, 3), peak_mib=peak_memory_mib())
    if peers:
        row.update(peers={precision: dict(device=peer.device, chars_per_s=round(B * T * timed / seconds),
                                          ms_per_step=round(1000 * seconds / timed, 3))
                          for (precision, peer), seconds in zip(peers.items(), timer.peer_seconds.values())})
    return row


def measure(spec):
    """One kerasrnn measurement, in this process (a child of `main`): `spec` is {shape, fused, warm, steps,
    steps_per_execution, peer, precision, policy}, with the PyTorch peer taking turns in fp32 and in bf16 if
    `peer`. kerasrnn trains in `precision`, as `kerasrnn train --precision` takes it, its model built under
    Keras's dtype `policy` if one is given. Prints the row."""
    vocab, ids = Vocab.fit(open(shared("data", "tinyshakespeare.txt"), "rb").read(), "char")
    if spec["policy"]:
        keras.config.set_dtype_policy(spec["policy"])
    model = build(spec["shape"], vocab.size, spec["fused"])
    precision = set_precision(model, spec["precision"])
    make_peer = SWEEP_PEERS.get(spec["shape"]["model"]) if "model" in spec["shape"] else TorchPeer
    peers = {"fp32": make_peer(spec["shape"], False)} if spec["peer"] and make_peer else None
    if peers and (peers["fp32"].device == "cuda" or cpu_has_bf16()):  # elsewhere bf16 is emulated, no peer
        peers["bf16"] = make_peer(spec["shape"], True)
    row = dict(impl=f"kerasrnn-{keras.backend.backend()}", **spec["shape"], **describe(model),
               precision=spec["policy"] or precision,
               **kerasrnn_throughput(model, spec["shape"], ids[: int(len(ids) * 0.9)], spec["warm"], spec["steps"],
                                     spec["steps_per_execution"], peers))
    print(json.dumps(row), flush=True)


def kerasrnn_child(shape, fused, warm, steps, steps_per_execution, peer, precision, policy):
    spec = dict(shape=shape, fused=fused, warm=warm, steps=steps, steps_per_execution=steps_per_execution, peer=peer,
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


class Timings:
    """One shape's rounds: kerasrnn's runs by the LSTM stack's path (`--fused`), the peer's by precision."""

    def __init__(self, shape, fused):
        self.shape, self.runs, self.peers = shape, {}, {}
        self.fused_choices = {"on": [True], "off": [False], "both": [False, True]}[fused]

    def round(self, args, in_process):
        for fused in list(self.fused_choices):
            run = kerasrnn_child(self.shape, fused, args.warm, args.steps, args.steps_per_execution, in_process,
                                 args.precision, args.keras_policy)
            if fused and self.fused_choices == [False, True] and run.get("lstm") != "fused":
                self.fused_choices.remove(True)  # no fused path here: "both" times the one path there is
            for precision, peer in run.pop("peers", {}).items():
                self.peers.setdefault(precision, []).append(peer)
            self.runs.setdefault(run.get("lstm"), []).append(run)
        if args.torch and not in_process:
            self.peers.setdefault("fp32", []).append(torch_peer(self.shape, args.steps, amp=False))
            if self.peers["fp32"][0]["device"] == "cuda" or cpu_has_bf16():  # oneDNN's bf16 LSTM needs them
                self.peers.setdefault("bf16", []).append(torch_peer(self.shape, args.steps, amp=True))

    def rows(self):
        """Each path's fastest round, with the ratios to the peer's fastest."""
        for measured in self.runs.values():
            row = fastest(measured)
            for precision, peer_runs in self.peers.items():
                peer = fastest(peer_runs)["chars_per_s"]
                row.update({f"torch_{precision}": peer, f"ratio_{precision}": round(row["chars_per_s"] / peer, 3)})
            yield row


def lengths(text):
    """An argparse type: sequence lengths, comma-separated, each dividing TOKENS."""
    values = text.split(",")
    bad = next((t for t in values if not t.isdigit() or int(t) == 0 or TOKENS % int(t)), None)
    if bad is not None:
        raise argparse.ArgumentTypeError(f"takes divisors of {TOKENS}, comma-separated (got {bad!r})")
    return [int(t) for t in values]


def families(text):
    """An argparse type: names of `SWEEP`'s families, comma-separated."""
    bad = next((name for name in text.split(",") if name not in SWEEP), None)
    if bad is not None:
        raise argparse.ArgumentTypeError(f"takes {', '.join(SWEEP)}, comma-separated (got {bad!r})")
    return text.split(",")


def sweep(args):
    """--seq-length's shapes, a group per family of --models (its lengths take turns), B = TOKENS / T."""
    if args.torch and keras.backend.backend() != "torch":
        raise UserError(f"{option('seq_length')} times its {option('torch')} peers in kerasrnn's process, on the "
                        f"torch backend: set KERAS_BACKEND=torch")
    if args.torch and {"mingru", "minlstm"} & set(args.models) and importlib.util.find_spec("minGRU_pytorch") is None:
        raise UserError(f"the minGRU's {option('torch')} peer is lucidrains' minGRU-pytorch: pip install minGRU-pytorch")
    return [[dict(model=name, B=TOKENS // t, T=t) for t in args.seq_length] for name in args.models]


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=list(GRIDS), default="cpu")
    parser.add_argument("--seq-length", type=lengths,
                        help=f"time the families of --models at these lengths (e.g. 64,256,1024,4096), "
                             f"B = {TOKENS} / T, instead of the grid")
    parser.add_argument("--models", type=families, default=list(SWEEP), help="the families --seq-length times")
    parser.add_argument("--warm", type=positive(int), default=WARM, help="warm-up steps before the timed ones")
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
    if args.measure:
        return measure(json.loads(args.measure))
    groups = sweep(args) if args.seq_length else [[shape] for shape in GRIDS[args.grid]]
    shared("data", "tinyshakespeare.txt")  # a checkout without the shared folder fails here, in one line
    in_process = args.torch and keras.backend.backend() == "torch"  # the peer takes turns in kerasrnn's process
    for group in groups:
        timings = [Timings(shape, args.fused) for shape in group]
        for _ in range(args.rounds):  # a group's shapes take turns, round by round
            for timing in timings:
                timing.round(args, in_process)
        for timing in timings:
            for row in timing.rows():
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    with one_line_errors():
        main()
