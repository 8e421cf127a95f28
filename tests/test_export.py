"""The export stage against the Keras model: logits over 500 steps of real text, sampled text, builtin ops."""
import contextlib
import io
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from conftest import shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.run import load_config, load_run
from kerasrnn.sample import sample, step_model
from kerasrnn.train import train
from kerasrnn_edge import cli
from kerasrnn_edge.manifest import read_manifest
from kerasrnn_edge.sampler import EdgeSampler
from kerasrnn.export import export_bundle

TEXT_CHARS = 20_000
INT8_LOGIT_BOUND = 0.1  # dynamic-range int8 weights; measured max |error| ~0.01 on these logits (|logits| < 5)


def exported_run(tmp_path_factory, cell="lstm"):
    """(run_dir, bundle_dir) of a tiny model trained for one short epoch on Shakespeare; made once per session."""
    base = tmp_path_factory.getbasetemp() / f"edge-{cell}"
    run_dir, bundle_dir = base / "run", base / "bundle"
    if not (bundle_dir / "manifest.json").exists():
        base.mkdir(exist_ok=True)
        text = shakespeare_slice(base, TEXT_CHARS)
        config = Config(text=text, cell=cell, rnn_size=32, num_layers=2, embedding_size=16, batch_size=8,
                        seq_length=32, max_epochs=1, eval_every=50, seed=1)
        train(config, str(run_dir), verbose=0)
        export_bundle(str(run_dir), str(bundle_dir))
    return str(run_dir), str(bundle_dir)


@pytest.fixture(scope="module", params=["lstm", "gru", "rnn"])
def run_and_bundle(request, tmp_path_factory):
    return exported_run(tmp_path_factory, request.param)


def keras_logits(run_dir, ids):
    model, vocab, _, _ = load_run(run_dir)
    step = step_model(model)
    step.reset()
    return np.stack([step.feed(ids[i:i + 1]) for i in range(len(ids))])


def edge_logits(bundle_dir, ids, runtime, precision):
    model = EdgeSampler.load(bundle_dir, runtime, precision).model
    model.reset()
    per_token = np.stack([model.feed(ids[i:i + 1]) for i in range(len(ids))])
    model.reset()
    return per_token, model.feed(ids)  # the whole text in one call (one run of the ONNX "steps" signature)


def test_logits_agree_over_500_steps(run_and_bundle):
    run_dir, bundle_dir = run_and_bundle
    manifest = read_manifest(bundle_dir)
    with open(shakespeare_slice(os.path.dirname(bundle_dir), 600, "held-out.txt", start=50_000)) as f:
        ids = manifest.vocab.encode("".join(c for c in f.read() if c in manifest.vocab.chars)[:500])
    assert len(ids) == 500
    expected = keras_logits(run_dir, ids)
    for runtime, precision, bound in [("ai-edge-litert", "fp32", 1e-4), ("onnxruntime", "fp32", 1e-4),
                                      ("ai-edge-litert", "int8", INT8_LOGIT_BOUND)]:
        per_token, at_once = edge_logits(bundle_dir, ids, runtime, precision)
        assert np.abs(per_token - expected).max() < bound, (runtime, precision)
        assert np.abs(at_once - expected[-1]).max() < bound, (runtime, precision)


def test_same_text_as_keras_sampler(run_and_bundle, capsys):
    run_dir, bundle_dir = run_and_bundle
    keras_out = io.StringIO()
    sample(run_dir, prime="ROMEO:", length=500, temperature=0.9, seed=7, out=keras_out)
    for runtime in ["ai-edge-litert", "onnxruntime"]:
        assert cli.main(["sample", bundle_dir, "--prime", "ROMEO:", "--length", "500", "--temperature", "0.9",
                         "--seed", "7", "--runtime", runtime]) == 0
        assert capsys.readouterr().out == keras_out.getvalue()
    assert len(keras_out.getvalue()) == len("ROMEO:") + 500 + 1


def test_manifest(run_and_bundle):
    run_dir, bundle_dir = run_and_bundle
    with open(os.path.join(bundle_dir, "manifest.json")) as f:
        doc = json.load(f)
    manifest = read_manifest(bundle_dir)
    config = load_config(run_dir)
    hidden, names = config.rnn_size, [s["name"] for s in doc["state"]]
    assert names == [f"layer{i}_{p}" for i in range(2) for p in ("hc" if config.cell == "lstm" else "h")]
    assert doc["model"] == {"cell": config.cell, "num_layers": 2, "rnn_size": hidden, "embedding_size": 16}
    assert doc["vocab"] == manifest.vocab.to_json() and doc["source"]["checkpoint"] == "best"
    assert doc["source"]["val_loss"] > 0 and doc["source"]["config"]["cell"] == config.cell
    steps = manifest.find("step")
    assert [(f["path"], f["precision"]) for f in steps] == [
        ("step_fp32.tflite", "fp32"), ("step_int8.tflite", "int8"), ("step.onnx", "fp32")]
    assert [(f["path"], f["inputs"]["token"]["shape"]) for f in manifest.find("steps")] == [("step.onnx", [-1])]
    for entry in steps:
        assert entry["inputs"] == {"token": {"shape": [1], "dtype": "int32"},
                                   **{n: {"shape": [1, hidden], "dtype": "float32"} for n in names}}
        assert entry["outputs"] == {"logits": {"shape": [1, manifest.vocab.size], "dtype": "float32"},
                                    **{f"next_{n}": {"shape": [1, hidden], "dtype": "float32"} for n in names}}
        manifest.verified_path(entry)


def test_tflite_files_use_builtin_ops_only(run_and_bundle):
    _, bundle_dir = run_and_bundle
    for name in ["step_fp32.tflite", "step_int8.tflite"]:
        report = io.StringIO()
        with contextlib.redirect_stdout(report):
            tf.lite.experimental.Analyzer.analyze(model_path=os.path.join(bundle_dir, name))
        ops = set(re.findall(r"Op#\d+ (\w+)\(", report.getvalue()))
        assert "FULLY_CONNECTED" in ops and "GATHER" in ops
        assert not {op for op in ops if op.startswith("Flex") or op == "CUSTOM"}, ops
