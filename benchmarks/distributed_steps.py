"""Training steps/s with the distribution API (kerasrnn/distribute.py) beside the same work without it.

    KERAS_BACKEND=jax python benchmarks/distributed_steps.py [--rounds 3] [--steps 30] [--modes plain,1,2,4,2x1]

Modes, each a child process on virtual CPU devices (XLA_FLAGS, 4 of them) or, on a GPU machine, its GPUs:
`plain` is one device without the distribution API (kerasrnn train without --devices); `N` is --devices N
(a mesh of N devices, the state laid out across them); `PxD` is P processes of D devices on 127.0.0.1,
joined through keras.distribution.initialize. Every mode trains the same model on the same B streams
(the tiny preset: 1x256 LSTM, B=32, T=64, Adam) through `model.fit` with the truncated-BPTT schedule, and
times `--steps` steps after 5 warm-up steps (`--preset shakespeare`: the GPU preset, 3x1024 LSTM, B=128,
T=128, 16 steps per compiled call; `--steps` a multiple of 16). The modes alternate, `--rounds` times, so that the load of
a shared machine falls on all of them; one JSON line per mode gives the median steps/s and its ratio to
`plain`. On a 2-core CPU, virtual devices add no compute: the ratios are the machinery's overhead.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from kerasrnn_edge.errors import ArgumentParser, one_line_errors, positive
from shared_folder import shared  # beside this script

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
WARM = 5



def child(args):
    """One mode's training in this process; prints {"steps_per_s"} (process 0 only)."""
    sys.path[:0] = [REPO, os.path.join(REPO, "export")]
    import keras
    from train_throughput import StepTimer

    from kerasrnn import distribute
    from kerasrnn.callbacks import TBPTTSchedule
    from kerasrnn.config import preset
    from kerasrnn.data import StreamBatches
    from kerasrnn.models.recurrent import build_model
    from kerasrnn.optim import make_optimizer
    from kerasrnn_edge.vocab import Vocab

    config = preset(args.preset)
    warm = -(-WARM // config.steps_per_execution) * config.steps_per_execution  # whole compiled calls
    plan = None
    if args.mode != "plain":
        processes, devices = map(int, args.mode.split("x")) if "x" in args.mode else (None, int(args.mode))
        launch = distribute.Launch(str(devices), args.coordinator, processes, args.process_id)
        plan = distribute.start(launch, config, tempfile.mkdtemp())
    with open(shared("data", "tinyshakespeare.txt"), "rb") as f:
        vocab, ids = Vocab.fit(f.read(), config.tokens)
    batches = StreamBatches(ids, config.batch_size, config.seq_length, rows=plan.rows if plan else slice(None))
    keras.utils.set_random_seed(config.seed)
    model = build_model(vocab.size, config.batch_size, config.seq_length, **config.model_args())
    model.compile(optimizer=make_optimizer(config, batches.steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=config.steps_per_execution)
    timer = StepTimer(warm)
    model.fit(batches, epochs=1, steps_per_epoch=warm + args.steps, callbacks=[TBPTTSchedule(batches), timer],
              verbose=0, shuffle=False)
    if plan is None or plan.writer:
        print(json.dumps({"steps_per_s": (timer.batches - warm) / timer.seconds}), flush=True)
    if plan:
        distribute.finish(plan)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_mode(mode, steps, preset):
    """Starts the mode's process(es) and returns process 0's steps/s."""
    processes, devices = (2, int(mode.split("x")[1])) if "x" in mode else (1, 4)
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if "--xla_force_host_platform_device_count" not in env.get("XLA_FLAGS", ""):  # a GPU machine ignores it
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    command = [sys.executable, os.path.abspath(__file__), "--child", mode, "--steps", str(steps), "--preset", preset]
    if "x" in mode:
        command += ["--coordinator", f"127.0.0.1:{free_port()}"]
    children = [subprocess.Popen(command + ["--process-id", str(i)] if "x" in mode else command, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for i in range(processes)]
    outputs = [c.communicate(timeout=600)[0] for c in children]
    if any(c.returncode for c in children):
        raise SystemExit(f"mode {mode} failed (exit codes {[c.returncode for c in children]})")
    return json.loads(outputs[0].strip().splitlines()[-1])["steps_per_s"]


def main():
    parser = ArgumentParser()
    parser.add_argument("--rounds", type=positive(int), default=3)
    parser.add_argument("--steps", type=positive(int), default=30)
    parser.add_argument("--modes", default="plain,1,2,4,2x1")
    parser.add_argument("--preset", default="tiny", help="the model and batch shape (shakespeare: the GPU preset)")
    parser.add_argument("--child", metavar="MODE", help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shared("data", "tinyshakespeare.txt")  # a checkout without the shared folder fails here, in one line
    if args.child:
        args.mode = args.child
        return child(args)
    modes = args.modes.split(",")
    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count(), "time": time.strftime("%H:%M:%S")}),
          flush=True)
    rates = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode in modes:
            rates[mode].append(run_mode(mode, args.steps, args.preset))
    plain = statistics.median(rates["plain"]) if "plain" in rates else None
    for mode in modes:
        median = statistics.median(rates[mode])
        print(json.dumps({"mode": mode, "steps_per_s": round(median, 2), "runs": [round(r, 2) for r in rates[mode]],
                          "vs_plain": round(median / plain, 3) if plain else None}), flush=True)
    print(json.dumps({"load_average": os.getloadavg(), "time": time.strftime("%H:%M:%S")}), flush=True)


if __name__ == "__main__":
    with one_line_errors():
        main()
