import importlib.util
import os
import re
import subprocess
import sys

import keras
import pytest

from conftest import REPO, shakespeare_slice

# the exactness tests: state equals stepping, resume equivalence, the fused paths. (Export parity runs on
# the default backend: Keras's step-by-step sampling under JAX compiles each call, too slow for CI.)
EXACTNESS = ["tests/test_training.py", "tests/test_model.py", "tests/test_optim.py", "tests/test_compat.py",
             "tests/test_precision.py", "tests/test_gpt.py", "tests/test_mingru.py"]
# test_training.py's tests run on every backend (test_model.py's fused-path tests only on their own): at
# least this many must pass, so that a backend that skips them all fails
AT_LEAST = 7
BACKENDS = ("tensorflow", "jax", "torch")


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != keras.backend.backend()])
def test_exactness_tests_pass_on_the_other_backends(backend):
    """The exactness tests run in this process's backend; here they run again under each other one."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (the torch backend: pip install \"kerasrnn[torch]\")")
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *EXACTNESS],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert int(re.search(r"(\d+) passed", result.stdout).group(1)) >= AT_LEAST, result.stdout[-3000:]


def test_training_and_sampling_run_under_jax_without_tensorflow(tmp_path):
    """The GPU host has JAX but no TensorFlow: the training path must not need it."""
    text = shakespeare_slice(tmp_path, 4000)
    run_dir = tmp_path / "run"
    code = ("import sys; sys.modules['tensorflow'] = None  # any import of TensorFlow now fails\n"
            "from kerasrnn.cli import main\n"
            f"main(['train', '--text', {str(text)!r}, '--run-dir', {str(run_dir)!r}, '--max-epochs', '1',"
            " '--batch-size', '4', '--seq-length', '16', '--rnn-size', '16', '--num-layers', '1'])\n"
            f"main(['sample', {str(run_dir)!r}, '--prime', 'First', '--length', '20', '--seed', '1'])\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("First")
    assert (run_dir / "best.keras").exists() and not (run_dir / "logs").exists()


TINY = ["--batch-size", "4", "--seq-length", "16", "--rnn-size", "16", "--num-layers", "1", "--embedding-size", "8"]
SAMPLE = ["--prime", "ROMEO:", "--length", "80", "--seed", "3"]


def without_backend(backend=None):
    """The environment of a user who set KERAS_BACKEND to `backend`, or did not set it."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return {**env, "KERAS_BACKEND": backend} if backend else env


def command(*args, backend=None):
    result = subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, timeout=600,
                            env=without_backend(backend), cwd=REPO)
    assert result.returncode == 0, f"{args} (KERAS_BACKEND={backend}): {result.stderr[-3000:]}"
    return result.stdout


def train(tmp_path, backend):
    text = shakespeare_slice(tmp_path, 6000)
    run_dir = tmp_path / "run"
    out = command("kerasrnn", "train", "--text", text, "--run-dir", run_dir, "--max-epochs", "1", *TINY,
                  backend=backend)
    return run_dir, out


def test_a_run_trained_on_torch_samples_exports_and_inspects_with_no_backend_set(tmp_path):
    """torch's default build beside TensorFlow (README's `pip install ".[torch]"`): the commands that do not
    train load a torch-trained checkpoint in TensorFlow's process, and the bundle writes what they write."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip('torch is not installed (pip install ".[torch]")')
    run_dir, out = train(tmp_path, backend=None)
    assert "parameters, on torch, " in out, out[:2000]  # the default where torch is installed
    text = command("kerasrnn", "sample", run_dir, *SAMPLE)
    command("kerasrnn", "export", run_dir, "--out", tmp_path / "bundle", "--web", tmp_path / "web",
            "--serving", tmp_path / "serving")
    assert (tmp_path / "web" / "index.html").exists() and list((tmp_path / "serving").glob("*/1/saved_model.pb"))
    command("kerasrnn", "inspect", run_dir, "--chars", "300", "--out", tmp_path / "report.html")
    assert (tmp_path / "report.html").exists()
    assert command("kerasrnn_edge.cli", "sample", tmp_path / "bundle", *SAMPLE) == text
    assert text.startswith("ROMEO:") and len(text.strip()) > 60


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_run_trained_on_tensorflow_samples_exports_and_inspects_under_another_backend(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f'{backend} is not installed (pip install ".[{backend}]")')
    run_dir, _ = train(tmp_path, backend="tensorflow")
    want = command("kerasrnn", "sample", run_dir, *SAMPLE, backend="tensorflow")
    assert command("kerasrnn", "sample", run_dir, *SAMPLE, backend=backend) == want
    command("kerasrnn", "export", run_dir, "--out", tmp_path / "bundle", backend=backend)
    assert command("kerasrnn_edge.cli", "sample", tmp_path / "bundle", *SAMPLE, backend=backend) == want
    command("kerasrnn", "inspect", run_dir, "--chars", "300", "--out", tmp_path / "report.html", backend=backend)
