import importlib.util
import os
import re
import subprocess
import sys

import keras
import pytest

from conftest import REPO

# the exactness tests: state equals stepping, resume equivalence, the fused paths. (Export parity runs on
# the default backend: Keras's step-by-step sampling under JAX compiles each call, too slow for CI.)
EXACTNESS = ["tests/test_training.py", "tests/test_model.py"]
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
    from conftest import shakespeare_slice
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
