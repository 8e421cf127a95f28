"""The edge sampler in virtual environments holding only numpy and one runtime: no TensorFlow, no Keras.

The environments are cached under ~/.cache/kerasrnn-test-venvs (or $KERASRNN_TEST_VENVS), one per
requirement set, so only the first run pays for pip. The oldest versions are the manifest's min_runtime.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from kerasrnn_edge.sampler import EdgeSampler
from test_export import exported_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("KERASRNN_TEST_VENVS", os.path.expanduser("~/.cache/kerasrnn-test-venvs"))
ENVIRONMENTS = [  # (runtime, requirements)
    ("tflite-runtime", ["numpy<2", "tflite-runtime==2.14.0"]),   # its last release; needs numpy 1
    ("ai-edge-litert", ["numpy", "ai-edge-litert==2.3.0"]),
    ("ai-edge-litert", ["numpy<2", "ai-edge-litert==1.0.1"]),    # the oldest release named in manifests
    ("onnxruntime", ["numpy<2", "onnxruntime==1.15.0"]),         # the oldest with Python 3.11 wheels
]
SAMPLE = """
import sys
from kerasrnn_edge.sampler import EdgeSampler
runtime, bundle, precision = sys.argv[1:]
sampler = EdgeSampler.load(bundle, runtime, precision)
text = "".join(sampler.generate("ROMEO:", 300, temperature=0.8, seed=11))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
assert not loaded, loaded
sys.stdout.write(text)
"""


def venv_python(requirements):
    """A cached virtual environment with exactly `requirements`; skips the test if pip cannot build it."""
    key = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:16]
    path = os.path.join(CACHE, key)
    python = os.path.join(path, "bin", "python")
    if not os.path.exists(python):
        os.makedirs(CACHE, exist_ok=True)
        building = tempfile.mkdtemp(prefix=f".{key}.", dir=CACHE)
        try:
            subprocess.run([sys.executable, "-m", "venv", building], check=True, capture_output=True)
            pip = subprocess.run([os.path.join(building, "bin", "python"), "-m", "pip", "install", "-q",
                                  "--disable-pip-version-check", *requirements], capture_output=True, text=True,
                                 timeout=600)
            if pip.returncode:
                pytest.skip(f"cannot build a venv with {requirements}: {pip.stderr.strip().splitlines()[-1:]}")
            os.rename(building, path)  # complete environments only; a venv's python finds itself by location
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return python


@pytest.mark.parametrize("runtime,requirements", ENVIRONMENTS, ids=lambda v: v if isinstance(v, str) else "+".join(v))
def test_edge_sampler_without_tensorflow(runtime, requirements, tmp_path_factory):
    _, bundle = exported_run(tmp_path_factory)
    python = venv_python(requirements)
    expected = "".join(EdgeSampler.load(bundle, "ai-edge-litert").generate("ROMEO:", 300, temperature=0.8, seed=11))
    precisions = ["fp32"] if runtime == "onnxruntime" else ["fp32", "int8"]
    for precision in precisions:
        result = subprocess.run([python, "-c", SAMPLE, runtime, bundle, precision], capture_output=True, text=True,
                                timeout=120, env={"PYTHONPATH": os.path.join(REPO, "export"), "PATH": os.environ["PATH"]})
        assert result.returncode == 0, result.stderr
        if precision == "fp32":
            assert result.stdout == expected
        else:
            assert len(result.stdout) == 300
