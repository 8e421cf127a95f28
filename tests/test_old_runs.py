"""Run directories made by an earlier kerasrnn (tests/data/old-runs: an LSTM and a GPT run, trained for one pass
on TensorFlow by the code of commit bbd1462, with `kerasrnn sample RUN --prime First --length 120 --temperature
0.8 --seed 3` recorded beside them as sample.txt) keep working: they load, sample the text they sampled then,
export to a bundle that samples it too, and resume. What guards a change of the model code or the checkpoint
format against leaving users' runs behind."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, run_cli, shakespeare_slice

OLD_RUNS = os.path.join(REPO, "tests", "data", "old-runs")
SAMPLE = ["--prime", "First", "--length", "120", "--temperature", "0.8", "--seed", "3"]


def recorded(name):
    with open(os.path.join(OLD_RUNS, name, "sample.txt"), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("name", ["lstm", "gpt"])
def test_an_old_run_samples_its_recorded_text_exports_and_resumes(name, tmp_path):
    run_dir = str(tmp_path / name)
    shutil.copytree(os.path.join(OLD_RUNS, name), run_dir)
    sampled = run_cli("sample", run_dir, *SAMPLE)
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout == recorded(name)

    bundle = str(tmp_path / "bundle")
    exported = run_cli("export", run_dir, "--out", bundle)
    assert exported.returncode == 0, exported.stderr
    edge = subprocess.run([sys.executable, "-m", "kerasrnn_edge.cli", "sample", bundle, *SAMPLE], capture_output=True,
                          text=True, timeout=300)
    assert edge.returncode == 0 and edge.stdout == recorded(name), edge.stderr

    text = shakespeare_slice(tmp_path, 6000)  # the text it trained on (its config.json names where it was then)
    resumed = run_cli("train", "--run-dir", run_dir, "--resume", "--text", text, "--max-epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    from kerasrnn.run import load_checkpoints
    assert load_checkpoints(run_dir)["last"]["step"] == 2 * load_checkpoints(os.path.join(OLD_RUNS, name))["last"]["step"]
