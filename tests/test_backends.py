import os
import subprocess
import sys

import keras
import pytest

from conftest import REPO

OTHER = {"tensorflow": "jax", "jax": "tensorflow"}.get(keras.backend.backend())


@pytest.mark.skipif(OTHER is None, reason="training supports the tensorflow and jax backends only")
def test_training_tests_pass_on_the_other_backend():
    """test_training.py and test_model.py run in this process's backend; here they run again under the other one."""
    env = {**os.environ, "KERAS_BACKEND": OTHER}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_training.py",
                             "tests/test_model.py"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "10 passed" in result.stdout  # 6 in test_training.py, 4 in test_model.py


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
