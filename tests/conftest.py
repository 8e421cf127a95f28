import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the opening 59,804 characters of tiny-shakespeare (karpathy/char-rnn), whole lines: a clone alone runs the suite
SHAKESPEARE = os.path.join(REPO, "tests", "data", "shakespeare.txt")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Token-id caches go to a temporary directory, not the user's."""
    os.environ["KERASRNN_CACHE"] = str(tmp_path_factory.mktemp("cache"))


def shakespeare_slice(tmp_path, chars, name="shakespeare.txt", start=0):
    """A file with `chars` characters of tiny-shakespeare from `start`."""
    with open(SHAKESPEARE, encoding="utf-8") as f:
        text = f.read()
    assert start + chars <= len(text), f"the fixture {SHAKESPEARE} has {len(text):,} characters"
    text = text[start:start + chars]
    path = os.path.join(tmp_path, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class Recorder:
    """A step model that feeds one token at a time and records each token fed (`fed`) and the logits after it
    (`rows`): what a sampler in another language replays (the Java core's GenerateFromLogits, the C core)."""

    def __init__(self, model):
        self.model, self.start_token, self.fed, self.rows = model, model.start_token, [], []

    def reset(self):
        self.model.reset()
        self.fed, self.rows = [], []

    def feed(self, ids):
        for token in ids:
            self.fed.append(int(token))
            self.rows.append(self.model.feed(np.array([token], np.int32)))
        return self.rows[-1]


def only_on(backend, what):
    """Marks a test of one backend's own path; under another backend it is skipped, and it runs in
    tests/test_backends.py's run of the exactness files under that backend."""
    import keras
    return pytest.mark.skipif(keras.backend.backend() != backend,
                              reason=f"{what}: runs with KERAS_BACKEND={backend} (tests/test_backends.py)")


def run_cli(*args, env=None, timeout=300):
    """Runs `python -m kerasrnn ARGS` and returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "kerasrnn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=REPO)
