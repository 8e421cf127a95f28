import os
import subprocess
import sys

import keras
import pytest

from conftest import REPO

OTHER = {"tensorflow": "jax", "jax": "tensorflow"}.get(keras.backend.backend())


@pytest.mark.skipif(OTHER is None, reason="training supports the tensorflow and jax backends only")
def test_training_tests_pass_on_the_other_backend():
    """test_training.py runs in this process's backend; here it runs again under the other one."""
    env = {**os.environ, "KERAS_BACKEND": OTHER}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_training.py"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "3 passed" in result.stdout
