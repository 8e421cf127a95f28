"""A GPT run down to the edge: its TFLite and ONNX step models, with the cache as their states, against the
full-sequence model over 300 positions (past the window), and the same text from `kerasrnn sample` and
`kerasrnn-edge sample` (the web page: tests/test_web.py). Commands that serve recurrent models only refuse
a GPT run in one line."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import run_cli, shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.models.gpt import build_gpt
from kerasrnn.models.language_model import copy_weights
from kerasrnn.run import load_run
from kerasrnn.train import train
from kerasrnn_edge.manifest import read_manifest
from kerasrnn_edge.sampler import EdgeSampler
from kerasrnn.export import export_bundle

CONTEXT = 32


@pytest.fixture(scope="module")
def run_and_bundle(tmp_path_factory):
    base = tmp_path_factory.mktemp("gpt")
    run_dir, bundle_dir = str(base / "run"), str(base / "bundle")
    config = Config(text=shakespeare_slice(base, 20_000), model="gpt", num_layers=2, num_heads=4, embedding_size=32,
                    context=CONTEXT, batch_size=8, seq_length=CONTEXT, max_epochs=1, eval_every=50, seed=1)
    train(config, run_dir, verbose=0)
    export_bundle(run_dir, bundle_dir, batch=3)
    return run_dir, bundle_dir


def test_step_models_equal_the_full_sequence_model_over_300_positions(run_and_bundle):
    run_dir, bundle_dir = run_and_bundle
    trained, vocab, config, _ = load_run(run_dir)
    model = build_gpt(vocab.size, 1, None, **config.model_args())  # the trained one takes blocks of 32 alone
    copy_weights(trained, model)
    with open(shakespeare_slice(os.path.dirname(bundle_dir), 400, "held-out.txt", start=50_000)) as f:
        ids = vocab.encode("".join(c for c in f.read() if c in vocab.chars)[:300])
    start = int(keras.ops.convert_to_numpy(model.get_layer("decoder").start_token.value))
    expected = keras.ops.convert_to_numpy(model(np.asarray([[start, *ids]], np.int32)))[0, 1:]
    for runtime, precision, bound in [("ai-edge-litert", "fp32", 1e-4), ("onnxruntime", "fp32", 1e-4),
                                      ("ai-edge-litert", "int8", 0.5)]:
        step = EdgeSampler.load(bundle_dir, runtime, precision).model
        step.reset()
        step.feed([step.start_token])
        got = np.stack([step.feed(ids[i:i + 1]) for i in range(len(ids))])
        assert np.abs(got - expected).max() < bound, (runtime, precision, np.abs(got - expected).max())


def test_manifest_states_are_the_cache(run_and_bundle):
    _, bundle_dir = run_and_bundle
    manifest = read_manifest(bundle_dir)
    assert manifest.doc["model"] == {"type": "gpt", "num_layers": 2, "num_heads": 4, "width": 32,
                                     "context": CONTEXT, "positions": "alibi"}
    assert [(s["name"], s["shape"]) for s in manifest.state] == [
        ("layer0_k", [1, CONTEXT * 32]), ("layer0_v", [1, CONTEXT * 32]), ("layer1_k", [1, CONTEXT * 32]),
        ("layer1_v", [1, CONTEXT * 32]), ("filled", [1, CONTEXT])]
    assert all(not s.any() for s in manifest.start_state)  # an empty cache
    assert manifest.start_token == manifest.vocab.encode("\n")[0]
    assert sorted(f["signature"] for f in manifest.files) == ["step"] * 3  # ONNX: one token per run


def edge_sample(bundle_dir, runtime, *args):
    done = subprocess.run([sys.executable, "-m", "kerasrnn_edge.cli", "sample", bundle_dir, "--runtime", runtime,
                           *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("many", [[], ["--num-samples", "3", "--until", "\n\n"]], ids=["one", "three"])
def test_same_text_from_kerasrnn_sample_and_kerasrnn_edge(run_and_bundle, many):
    """200 characters, past the window of 32: TFLite (batch 3 for three samples), ONNX and Keras agree."""
    run_dir, bundle_dir = run_and_bundle
    args = ["--prime", "ROMEO:", "--length", "200", "--seed", "5", "--temperature", "0.8", *many]
    done = run_cli("sample", run_dir, *args)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 150
    for runtime in ("ai-edge-litert", "onnxruntime"):
        assert edge_sample(bundle_dir, runtime, *args) == done.stdout, runtime


@pytest.mark.parametrize("command", [["inspect"], ["export", "--serving", "SERVING"], ["export", "--micro", "SERVING"]],
                         ids=["inspect", "serving", "micro"])
def test_recurrent_only_commands_refuse_a_gpt_run_in_one_line(run_and_bundle, command, tmp_path):
    run_dir, _ = run_and_bundle
    args = [str(tmp_path) if a == "SERVING" else a for a in command]
    done = run_cli(args[0], run_dir, *args[1:])
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "is a --model gpt run" in done.stderr, done.stderr
    assert json.loads(open(os.path.join(run_dir, "config.json")).read())["model"] == "gpt"
