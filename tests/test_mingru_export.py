"""minGRU (with its convolution) and minLSTM runs down to the edge: their TFLite and ONNX step models, each block's h
(and the convolution's last inputs) as states, against the full-sequence model over 300 positions; the manifest's
model and state; and one text from every sampler: `kerasrnn sample`, `kerasrnn-edge sample` on LiteRT and ONNX
Runtime, the web page in Chromium, the Java core (over the logits LiteRT gave) and the SavedModel's generate.
One run per family, trained for seconds, serves every check; the Java and web checks skip without a JDK or
Chromium, as their own tests do."""
import os
import threading

import keras
import numpy as np
import pytest

from conftest import run_cli, shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.export import export_bundle, export_serving
from kerasrnn.models import family_of
from kerasrnn.models.language_model import get_start, reset_to_start
from kerasrnn.run import load_run
from kerasrnn.train import train
from kerasrnn_edge.manifest import read_manifest
from kerasrnn_edge.sampler import EdgeSampler
from test_beam import edge, java_sample
from test_bundle_checks import java_check
from test_java_sampler import java_classes  # noqa: F401 (a fixture: the core compiled once)
from test_serving import generate
from test_web import browser, node_or_skip, open_page, page_text, query  # noqa: F401 (browser: a fixture)

WIDTH, LAYERS, EXPANSION = 16, 2, 1.5
INNER = int(WIDTH * EXPANSION)
FAMILIES = {"mingru-conv": dict(model="mingru", conv=True), "minlstm": dict(model="minlstm", conv=False)}
# temperature 1 and no top-k: the settings test_serving's generate sends
PRIME, SEED, LENGTH = "ROMEO:", 5, 200
ARGS = ["--prime", PRIME, "--length", LENGTH, "--seed", SEED, "--temperature", 1.0]


@pytest.fixture(scope="module", params=list(FAMILIES))
def run_and_bundle(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(request.param)
    run_dir, bundle_dir = str(base / "run"), str(base / "bundle")
    config = Config(text=shakespeare_slice(base, 5000), num_layers=LAYERS, embedding_size=WIDTH, expansion=EXPANSION,
                    dropout=0.0, batch_size=8, seq_length=32, max_epochs=1, eval_every=50, seed=1,
                    **FAMILIES[request.param])
    train(config, run_dir, verbose=0)
    export_bundle(run_dir, bundle_dir)
    return run_dir, bundle_dir


def test_step_models_equal_the_full_sequence_model_over_300_positions(run_and_bundle):
    run_dir, bundle_dir = run_and_bundle
    trained, vocab, _, _ = load_run(run_dir)
    model = family_of(trained).rebuild(trained, 1)  # the parallel scan over the whole sequence at once
    reset_to_start(model)
    with open(shakespeare_slice(os.path.dirname(bundle_dir), 400, "held-out.txt", start=50_000)) as f:
        ids = vocab.encode("".join(c for c in f.read() if c in vocab.chars)[:300])
    start = get_start(model)[0]
    expected = keras.ops.convert_to_numpy(model(np.asarray([[start, *ids]], np.int32)))[0]
    for runtime, precision, bound in [("ai-edge-litert", "fp32", 1e-4), ("onnxruntime", "fp32", 1e-4),
                                      ("ai-edge-litert", "int8", 0.1)]:  # int8: 0.009 and 0.016 measured
        step = EdgeSampler.load(bundle_dir, runtime, precision).model
        step.reset()
        got = np.stack([step.feed([step.start_token]), *(step.feed(ids[i:i + 1]) for i in range(len(ids)))])
        assert np.abs(got - expected).max() < bound, (runtime, precision, np.abs(got - expected).max())


def test_manifest_model_and_states(run_and_bundle):
    run_dir, bundle_dir = run_and_bundle
    trained, _, config, _ = load_run(run_dir)
    manifest = read_manifest(bundle_dir)
    assert manifest.doc["model"] == {"type": config.model, "num_layers": LAYERS, "width": WIDTH,
                                     "expansion": EXPANSION, "conv": config.conv}
    parts = [("h", INNER), ("conv", 2 * WIDTH)] if config.conv else [("h", INNER)]
    assert [(s["name"], s["shape"], s["dtype"]) for s in manifest.state] == [
        (f"layer{i}_{part}", [1, width], "float32") for i in range(LAYERS) for part, width in parts]
    token, states = get_start(trained)
    assert manifest.start_token == token
    assert len(manifest.start_state) == len(states)
    for got, want in zip(manifest.start_state, states):
        np.testing.assert_array_equal(np.reshape(got, -1), want)
    assert sorted((f["format"], f["precision"], f["signature"]) for f in manifest.files) == [
        ("onnx", "fp32", "step"), ("tflite", "fp32", "step"), ("tflite", "int8", "step")]  # ONNX: one token per run


@pytest.fixture(scope="module")
def sampled(run_and_bundle):
    """`kerasrnn sample`'s text: what every other sampler must write."""
    done = run_cli("sample", run_and_bundle[0], *ARGS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(PRIME) and len(done.stdout) == len(PRIME) + LENGTH + 1
    return done.stdout


def test_kerasrnn_edge_and_the_saved_model_write_kerasrnn_samples_text(run_and_bundle, sampled, capsys, tmp_path):
    run_dir, bundle_dir = run_and_bundle
    for runtime in ("ai-edge-litert", "onnxruntime"):
        assert edge(capsys, bundle_dir, runtime, "--precision", "fp32", *ARGS) == sampled, runtime
    served, _ = generate(export_serving(run_dir, str(tmp_path / "serving")), [PRIME], LENGTH, SEED)
    assert PRIME + served[0] + "\n" == sampled


def test_java_core_checks_the_bundle_and_writes_the_same_text(run_and_bundle, sampled, java_classes,  # noqa: F811
                                                              tmp_path):
    _, bundle_dir = run_and_bundle
    checked = java_check(java_classes, bundle_dir)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"ok: a {LAYERS}-layer {read_manifest(bundle_dir).doc['model']['type']}, ")
    python, java = java_sample(java_classes, tmp_path, bundle_dir, PRIME, LENGTH, SEED, 1.0, [])
    assert PRIME + python + "\n" == PRIME + java + "\n" == sampled


@pytest.fixture
def page(run_and_bundle, tmp_path):
    """The bundle's web sampler, served; yields its URL."""
    node_or_skip()
    from kerasrnn.serve_web import make_server
    from kerasrnn_export.web import write_site

    write_site(run_and_bundle[1], str(tmp_path / "site"))
    httpd = make_server(str(tmp_path / "site"), port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_page_writes_the_same_text(page, browser, sampled):  # noqa: F811
    state = open_page(browser, page + query(prime=PRIME, seed=SEED, temperature=1.0, top_k=0, length=LENGTH))
    assert (state, page_text(browser, "error")) == ("done", "")
    assert page_text(browser, "output") + "\n" == sampled
