"""TF Serving export (docs/serving.md): the SavedModel's signatures, generate's determinism, batching,
validation and versioning, checked through saved_model_cli and a Python that has TensorFlow but no Keras."""
import json
import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_cli, shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.model import build_model, copy_weights
from kerasrnn.run import load_run, save_model, write_json
from kerasrnn_edge.vocab import Vocab
from kerasrnn_export.serving import export_serving

TINY = dict(cell="lstm", rnn_size=16, num_layers=1, embedding_size=8)

# Runs in a Python whose path has site-packages without Keras (`import tensorflow` imports Keras
# whenever it is installed) and without kerasrnn: what a serving host has.
CLIENT = r"""
import json, sys
import tensorflow as tf

generate = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]

def call(prompt, max_length=20, temperature=1.0, top_k=0, seed=3):
    out = generate(prompt=tf.constant(prompt), max_length=tf.constant(max_length, tf.int32),
                   temperature=tf.constant(temperature, tf.float32), top_k=tf.constant(top_k, tf.int32),
                   seed=tf.constant(seed, tf.int64))
    return {"text": [t.decode("utf-8") for t in out["text"].numpy()], "ids": out["ids"].numpy().tolist()}

def error(**request):
    try:
        call(**{"prompt": ["First"], **request})
    except tf.errors.InvalidArgumentError as e:
        return e.message
    return None

prompts = ["First Citizen:", "", "Be"]
results = {
    "again": [call(["First"], seed=s) for s in (3, 3, 4)],
    "batch": call(prompts),
    "alone": [call([p]) for p in prompts],
    "lengths": call(prompts, max_length=[5, 0, 12]),
    "greedy": [call(["First"], top_k=1, seed=s)["text"] for s in (1, 2)],
    "errors": {"cap": error(max_length=1001), "negative": error(max_length=-1), "cold": error(temperature=0.0),
               "top_k": error(top_k=-1), "unknown": error(prompt=["First\u20ac"]),
               "rows": error(prompt=["a", "b", "c"], max_length=[1, 2])},
}
assert "keras" not in sys.modules and not any(m.startswith("kerasrnn") for m in sys.modules)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving_run")
    text = shakespeare_slice(tmp, 8000)
    result = run_cli("train", "--text", text, "--run-dir", tmp / "run", "--max-epochs", 1, "--batch-size", 4,
                     "--seq-length", 16, "--rnn-size", 16, "--num-layers", 1, "--embedding-size", 8)
    assert result.returncode == 0, result.stderr
    return str(tmp / "run")


@pytest.fixture(scope="module")
def version_dir(run_dir, tmp_path_factory):
    return export_serving(run_dir, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def client(version_dir, tmp_path_factory):
    """The CLIENT script's results, run with a site-packages that lacks keras and kerasrnn."""
    site, tf_only = sysconfig.get_paths()["purelib"], tmp_path_factory.mktemp("tf_only")
    for entry in os.listdir(site):
        if not entry.startswith(("keras", "__editable__")) and not entry.endswith(".pth"):
            os.symlink(os.path.join(site, entry), tf_only / entry)
    result = subprocess.run([sys.executable, "-S", "-c", CLIENT, version_dir], capture_output=True, text=True,
                            timeout=120, cwd=tf_only, env={**os.environ, "PYTHONPATH": str(tf_only)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def saved_model_cli(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_saved_model_cli_shows_both_signatures(version_dir):
    shown = saved_model_cli("show", "--all", "--dir", version_dir)
    generate = shown.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    step = shown.split("signature_def['step']")[1].split("Concrete Functions")[0]
    for name, dtype, shape in [("prompt", "DT_STRING", "(-1)"), ("max_length", "DT_INT32", "unknown_rank"),
                               ("temperature", "DT_FLOAT", "unknown_rank"), ("top_k", "DT_INT32", "unknown_rank"),
                               ("seed", "DT_INT64", "unknown_rank"), ("text", "DT_STRING", "(-1)"),
                               ("ids", "DT_INT32", "(-1, -1)")]:
        assert f"['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" in generate
    for name, dtype, shape in [("token", "DT_INT32", "(-1)"), ("layer0_h", "DT_FLOAT", "(-1, 16)"),
                               ("layer0_c", "DT_FLOAT", "(-1, 16)"), ("next_layer0_h", "DT_FLOAT", "(-1, 16)"),
                               ("next_layer0_c", "DT_FLOAT", "(-1, 16)")]:
        assert f"['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" in step
    assert "['logits'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, " in step


def test_saved_model_cli_runs_generate(version_dir):
    out = saved_model_cli("run", "--dir", version_dir, "--tag_set", "serve", "--signature_def", "serving_default",
                          "--input_exprs", 'prompt=["First"];max_length=20;temperature=1.0;top_k=0;seed=3')
    ids = out.split("Result for output key ids:\n")[1].split("\n")[0]
    assert len(ids.strip("[]").split()) == 20


def test_generate_is_deterministic_per_seed(client):
    same, again, other = client["again"]
    assert same == again and same != other
    assert len(same["text"][0]) == 20 and len(same["ids"][0]) == 20
    greedy_1, greedy_2 = client["greedy"]
    assert greedy_1 == greedy_2  # top_k=1 leaves nothing to chance


def test_batch_rows_equal_each_prompt_alone(client):
    batch, alone = client["batch"], client["alone"]
    assert batch["text"] == [a["text"][0] for a in alone]
    assert batch["ids"] == [a["ids"][0] for a in alone]
    assert len(batch["text"][1]) == 20  # the empty prompt starts after the start token


def test_per_row_max_length(client):
    lengths, batch = client["lengths"], client["batch"]
    assert [len(t) for t in lengths["text"]] == [5, 0, 12]
    assert [t[:n] for t, n in zip(batch["text"], (5, 0, 12))] == lengths["text"]
    assert [row[n:] == [-1] * (12 - n) for row, n in zip(lengths["ids"], (5, 0, 12))] == [True] * 3


@pytest.mark.parametrize("case, message", [
    ("cap", "max_length must be <= 1000"), ("negative", "max_length must be >= 0"),
    ("cold", "temperature must be > 0"), ("top_k", "top_k must be >= 0"),
    ("unknown", "prompt has characters outside the vocabulary:] [\u20ac]"), ("rows", "")])
def test_bad_requests_are_invalid_argument(client, case, message):
    assert client["errors"][case] is not None and message in client["errors"][case]


def test_text_matches_ids_and_step_matches_keras(run_dir, version_dir):
    trained, vocab, config, _ = load_run(run_dir)
    saved = tf.saved_model.load(version_dir)
    out = saved.signatures["serving_default"](prompt=tf.constant(["First"]), max_length=tf.constant(30),
                                              temperature=tf.constant(0.8), top_k=tf.constant(5),
                                              seed=tf.constant(1, tf.int64))
    assert vocab.decode(out["ids"].numpy()[0]) == out["text"].numpy()[0].decode()

    model = build_model(vocab.size, 1, None, **config.model_args())
    copy_weights(trained, model)
    ids = vocab.encode("First Citizen")
    expected = model.predict(ids[None], verbose=0)[0, -1]
    states = {n: tf.zeros([1, 16]) for n in ("layer0_h", "layer0_c")}
    for token in ids:
        result = saved.signatures["step"](token=tf.constant([token]), **states)
        states = {n: result[f"next_{n}"] for n in states}
    np.testing.assert_allclose(result["logits"].numpy()[0], expected, atol=1e-5)


def write_untrained_run(run_dir, vocab):
    os.makedirs(run_dir)
    save_model(build_model(vocab.size, 1, None, **TINY), os.path.join(run_dir, "best.keras"))
    write_json(os.path.join(run_dir, "config.json"), Config(**TINY).to_json())
    write_json(os.path.join(run_dir, "vocab.json"), vocab.to_json())
    return run_dir


def generate(version_dir, prompts, max_length=8):
    out = tf.saved_model.load(version_dir).signatures["serving_default"](
        prompt=tf.constant(prompts), max_length=tf.constant(max_length), temperature=tf.constant(1.0),
        top_k=tf.constant(0), seed=tf.constant(7, tf.int64))
    return [t.decode("utf-8") for t in out["text"].numpy()], out["ids"].numpy()


def test_skip_policy_drops_unknown_characters(tmp_path):
    run_dir = write_untrained_run(tmp_path / "run", Vocab("char", "abc"))
    version = export_serving(run_dir, tmp_path / "models", unknown="skip")
    assert generate(version, ["axbyc"])[1].tolist() == generate(version, ["abc"])[1].tolist()


def test_byte_mode_takes_any_text(tmp_path):
    version = export_serving(write_untrained_run(tmp_path / "run", Vocab("byte")), tmp_path / "models")
    texts, ids = generate(version, ["h\u00e9llo \u20ac", ""], max_length=40)
    assert ids.shape == (2, 40) and ids.min() >= 0 and ids.max() < 256
    assert texts == [bytes(row.tolist()).decode("utf-8", errors="replace") for row in ids]


def test_versions_increase_and_nothing_is_overwritten(run_dir, tmp_path):
    base = tmp_path / "models"
    first = export_serving(run_dir, base, name="lm")
    with open(os.path.join(first, "saved_model.pb"), "rb") as f:
        first_bytes = f.read()
    os.makedirs(base / "lm" / "7")
    (base / "lm" / "7" / "keep").write_text("an older version")
    second = export_serving(run_dir, base, name="lm")
    assert (first, second) == (str(base / "lm" / "1"), str(base / "lm" / "8"))
    assert sorted(os.listdir(base / "lm")) == ["1", "7", "8"]  # no temporary directory left behind
    assert open(os.path.join(first, "saved_model.pb"), "rb").read() == first_bytes
    assert (base / "lm" / "7" / "keep").read_text() == "an older version"
