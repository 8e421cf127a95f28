"""Data-parallel training (kerasrnn/distribute.py) against one device: 4 virtual CPU devices in one process,
and 2 processes x 2 devices on 127.0.0.1, train the same weights, states and validation loss as one device;
a checkpoint made on several devices resumes on one (and on four) as if the run had never stopped. Every
run is a subprocess under JAX (the device count is fixed when JAX starts): the two processes through
`kerasrnn train`, then one script that runs the rest with `train()` and reports what it found as JSON."""
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import REPO, run_cli, shakespeare_slice

pytestmark = pytest.mark.multiprocess

# 1x32 LSTM, B=8, T=16: 9 steps and one validation (1,200 training tokens, 300 validation tokens)
SETTINGS = dict(rnn_size=32, num_layers=1, embedding_size=16, batch_size=8, seq_length=16, train_frac=0.8,
                val_frac=0.2, eval_every=9, max_epochs=1, lr_schedule="constant", warmup_steps=0,
                dropout=0.0, ema=0.0)  # validation on the weights trained (a 9-step average barely moves)
TIMEOUT = 240


def virtual_devices(count):
    return {"KERAS_BACKEND": "jax", "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}",
            "PYTHONUNBUFFERED": "1"}


SCRIPT = r"""
import dataclasses, json, os, sys
import numpy as np
from keras import ops
from kerasrnn import distribute
from kerasrnn.callbacks import TBPTTSchedule
from kerasrnn.config import preset
from kerasrnn.corpus import load_ids
from kerasrnn.data import StreamBatches, split
from kerasrnn.models.language_model import core, reset_states
from kerasrnn.run import load_checkpoints, load_model
from kerasrnn.train import train

settings, out = json.loads(sys.argv[1]), sys.argv[2]
run = lambda name: os.path.join(out, name)
config = dataclasses.replace(preset("tiny"), **settings)
four = distribute.Launch(devices="4")
train(config, run("one"), verbose=0)
train(config, run("four"), verbose=0, launch=four)
TBPTTSchedule.on_train_batch_begin = lambda self, batch, logs=None: reset_states(self.model)  # the control
train(config, run("control"), verbose=0, launch=four)
del TBPTTSchedule.on_train_batch_begin
two = dataclasses.replace(config, max_epochs=2)
train(two, run("straight"), verbose=0)
train(two, run("resumed1"), resume=True, verbose=0)  # the 2-process checkpoint, on one device
train(two, run("resumed4"), resume=True, verbose=0, launch=four)  # and on four

# the layout: each device holds 2 of the 8 streams' state, after a training step too; weights replicated
plan = distribute.start(four, config, run("four"))
model = load_model(os.path.join(run("four"), "last.keras"))
ids = split(load_ids(config.text, config.tokens)[1], config.train_frac, config.val_frac)[0]
model.train_on_batch(*StreamBatches(ids, config.batch_size, config.seq_length)[0])
state, kernel = core(model).state_weights[0].value, model.get_layer("logits").kernel.value
layout = {"state": list(state.sharding.spec), "devices": len(state.sharding.device_set),
          "shards": sorted({s.data.shape for s in state.addressable_shards}),
          "kernel_replicated": kernel.sharding.is_fully_replicated}
distribute.finish(plan)


def differences(a, b):
    ma, mb = (load_model(os.path.join(run(name), "last.keras")) for name in (a, b))
    gap = lambda pairs: max(float(np.max(np.abs(ops.convert_to_numpy(x.value) - ops.convert_to_numpy(y.value))))
                            for x, y in pairs)
    records = [load_checkpoints(run(name))["last"] for name in (a, b)]
    return {"steps": [r["step"] for r in records],
            "weights": gap(zip(ma.weights + ma.optimizer.variables, mb.weights + mb.optimizer.variables)),
            "states": gap(zip(core(ma).state_weights, core(mb).state_weights)),
            "val_loss": abs(records[0]["val_loss"] - records[1]["val_loss"])}


print("RESULT", json.dumps({"layout": layout, "four": differences("one", "four"),
                            "control": differences("one", "control"), "multi": differences("one", "multi"),
                            "resumed1": differences("straight", "resumed1"),
                            "resumed4": differences("straight", "resumed4")}))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def options(settings):
    return [str(x) for key, value in settings.items() for x in ("--" + key.replace("_", "-"), value)]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two processes x two devices train through the command line; then the script trains the rest."""
    out = tmp_path_factory.mktemp("distribute")
    text = shakespeare_slice(out, 1500)
    command = [sys.executable, "-m", "kerasrnn", "train", "--text", text, "--run-dir", str(out / "multi"),
               *options(SETTINGS), "--devices", "all", "--coordinator", f"127.0.0.1:{free_port()}",
               "--num-processes", "2"]
    env = {**os.environ, **virtual_devices(2)}
    processes = [subprocess.Popen(command + ["--process-id", str(i)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=env, cwd=REPO) for i in (0, 1)]
    try:
        logs = [p.communicate(timeout=TIMEOUT)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, log in zip(processes, logs):
        assert p.returncode == 0, log[-3000:]
    for name in ("resumed1", "resumed4"):
        shutil.copytree(out / "multi", out / name)
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps({**SETTINGS, "text": text}), str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, **virtual_devices(4)},
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout.split("RESULT", 1)[1]), "dir": out, "logs": logs}


def test_four_devices_train_as_one_with_each_device_holding_its_streams_state(results):
    four, control = results["four"], results["control"]
    assert four["steps"] == [9, 9]
    assert four["weights"] < 1e-5 and four["states"] < 1e-5 and four["val_loss"] < 1e-5, four
    # the control resets the state every batch: the comparison sees the carried state
    assert control["weights"] > 1e-3 and control["states"] > 1e-3 and control["val_loss"] > 1e-4, control
    assert results["layout"] == {"state": ["batch", None], "devices": 4, "shards": [[2, 32]], "kernel_replicated": True}


def test_two_processes_train_as_one_and_their_checkpoint_resumes_on_one_and_four_devices(results):
    multi = results["multi"]
    assert multi["steps"] == [9, 9]
    assert multi["weights"] < 1e-5 and multi["states"] < 1e-5 and multi["val_loss"] < 1e-5, multi
    for resumed in (results["resumed1"], results["resumed4"]):
        assert resumed["steps"] == [18, 18]
        assert resumed["weights"] < 1e-5 and resumed["states"] < 1e-5 and resumed["val_loss"] < 1e-5, resumed
    assert "data-parallel on 4 devices, 2 processes" in results["logs"][0]
    assert {"config.json", "vocab.json", "last.keras", "best.keras", "checkpoint.json", "history.csv"} <= set(
        os.listdir(results["dir"] / "multi"))


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_other_backends_refuse_devices_in_one_line(tmp_path, backend):
    pytest.importorskip(backend)
    text = shakespeare_slice(tmp_path, 1500)
    done = run_cli("train", "--text", text, "--run-dir", tmp_path / "run", "--devices", "2",
                   env={"KERAS_BACKEND": backend})
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].endswith("run with KERAS_BACKEND=jax")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_batch_that_does_not_split_evenly_is_one_line(tmp_path):
    text = shakespeare_slice(tmp_path, 1500)
    done = run_cli("train", "--text", text, "--run-dir", tmp_path / "run", "--devices", "all", "--batch-size", "6",
                   env=virtual_devices(4))
    assert done.returncode == 2 and done.stderr.strip() == (
        "kerasrnn: error: --batch-size 6 does not split evenly across 4 devices: use a multiple of 4"), done.stderr
