"""TF Serving export (docs/serving.md): the SavedModel's signatures, generate's determinism, batching,
validation and versioning, checked through saved_model_cli and a Python that has TensorFlow but no Keras."""
import io
import json
import os
import shlex
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
import tensorflow as tf

from conftest import SHAKESPEARE, run_cli, shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.models.language_model import copy_weights, get_start, reset_to_start
from kerasrnn.models.recurrent import build_model
from kerasrnn.files import save_model, write_json
from kerasrnn.run import load_run
from kerasrnn.sample import sample, step_model
from kerasrnn_edge.sampling import SplitMix64, choose
from kerasrnn_edge.vocab import Vocab
from kerasrnn.export import export_serving

TINY = dict(cell="lstm", rnn_size=16, num_layers=1, embedding_size=8)

# Runs in a Python whose path has site-packages without Keras (`import tensorflow` imports Keras
# whenever it is installed) and without kerasrnn: what a serving host has.
CLIENT = r"""
import json, sys
import tensorflow as tf

generate = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]

def call(prompt, max_length=20, temperature=1.0, top_k=0, top_p=1.0, argmax=False, seed=3):
    out = generate(prompt=tf.constant(prompt), max_length=tf.constant(max_length, tf.int32),
                   temperature=tf.constant(temperature, tf.float64), top_k=tf.constant(top_k, tf.int32),
                   top_p=tf.constant(top_p, tf.float64), argmax=tf.constant(argmax), seed=tf.constant(seed, tf.uint64))
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
    "argmax": [call(["First"], argmax=True, seed=s)["text"] for s in (1, 2)],
    "errors": {"cap": error(max_length=1001), "negative": error(max_length=-1), "cold": error(temperature=0.0),
               "top_k": error(top_k=-1), "top_p": error(top_p=0.0), "top_p_high": error(top_p=1.5),
               "unknown": error(prompt=["First\u20ac"]),
               "rows": error(prompt=["a", "b", "c"], max_length=[1, 2])},
}
assert "keras" not in sys.modules and not any(m.startswith("kerasrnn") for m in sys.modules)
print(json.dumps(results))
"""


def train_tiny(tmp, *args):
    """A 1 x 16 LSTM trained for a few seconds: enough that prompts and seeds change its text."""
    text = shakespeare_slice(tmp, 8000)
    result = run_cli("train", "--text", text, "--run-dir", tmp / "run", "--max-epochs", 4, "--learning-rate", 0.02,
                     "--batch-size", 4, "--seq-length", 16, "--rnn-size", 16, "--num-layers", 1, "--embedding-size", 8,
                     "--dropout", 0, "--ema", 0, *args)  # the weights trained, not their slow average
    assert result.returncode == 0, result.stderr
    return str(tmp / "run")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("serving_run"))


@pytest.fixture(scope="module")
def byte_run_dir(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("serving_byte_run"), "--tokens", "byte")


@pytest.fixture(scope="module")
def version_dir(run_dir, tmp_path_factory):
    return export_serving(run_dir, tmp_path_factory.mktemp("models"))


def run_tf_only(script, *args, tmp, timeout=120):
    """`script`'s last line of output, parsed as JSON, run with a site-packages that lacks keras and kerasrnn."""
    site, tf_only = sysconfig.get_paths()["purelib"], tmp / "site"
    os.makedirs(tf_only, exist_ok=True)
    for entry in os.listdir(site):
        if not entry.startswith(("keras", "__editable__")) and not entry.endswith(".pth") \
                and not os.path.lexists(tf_only / entry):
            os.symlink(os.path.join(site, entry), tf_only / entry)
    result = subprocess.run([sys.executable, "-S", "-c", script, *args], capture_output=True, text=True,
                            timeout=timeout, cwd=tf_only, env={**os.environ, "PYTHONPATH": str(tf_only)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def client(version_dir, tmp_path_factory):
    """The CLIENT script's results."""
    return run_tf_only(CLIENT, version_dir, tmp=tmp_path_factory.mktemp("tf_only"))


def saved_model_cli(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def signature_shown(shown, name):
    return shown.split(f"signature_def['{name}']")[1].split("signature_def[")[0].split("Concrete Functions")[0]


def assert_tensors(shown, tensors):
    for name, dtype, shape in tensors:
        assert f"['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" in shown


def test_saved_model_cli_shows_the_signatures(version_dir):
    shown = saved_model_cli("show", "--all", "--dir", version_dir)
    params = [("temperature", "DT_DOUBLE", "unknown_rank"), ("top_k", "DT_INT32", "unknown_rank"),
              ("top_p", "DT_DOUBLE", "unknown_rank"), ("argmax", "DT_BOOL", "unknown_rank")]
    assert_tensors(signature_shown(shown, "serving_default"), [
        ("prompt", "DT_STRING", "(-1)"), ("max_length", "DT_INT32", "unknown_rank"), *params,
        ("seed", "DT_UINT64", "unknown_rank"), ("text", "DT_STRING", "(-1)"), ("ids", "DT_INT32", "(-1, -1)")])
    states = [(n, "DT_FLOAT", "(-1, 16)") for n in ("layer0_h", "layer0_c")]
    step = signature_shown(shown, "step")
    assert_tensors(step, [("token", "DT_INT32", "(-1)"), *states, ("next_layer0_h", "DT_FLOAT", "(-1, 16)"),
                          ("next_layer0_c", "DT_FLOAT", "(-1, 16)")])
    assert "['logits'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, " in step
    assert_tensors(signature_shown(shown, "start"), [("batch", "DT_INT32", "()"), ("token", "DT_INT32", "(-1)"), *states])
    assert_tensors(signature_shown(shown, "choose"), [
        ("logits", "DT_FLOAT", "(-1, -1)"), ("rng", "DT_UINT64", "unknown_rank"), *params,
        ("id", "DT_INT32", "(-1)"), ("rng", "DT_UINT64", "(-1)")])


def test_saved_model_cli_runs_generate(version_dir):
    out = saved_model_cli("run", "--dir", version_dir, "--tag_set", "serve", "--signature_def", "serving_default",
                          "--input_exprs", 'prompt=["First"];max_length=20;temperature=1.0;top_k=0;top_p=1.0;'
                                           'argmax=False;seed=18446744073709551615')
    ids = out.split("Result for output key ids:\n")[1].split("\n")[0]
    assert len(ids.strip("[]").split()) == 20


def test_generate_is_deterministic_per_seed(client):
    same, again, other = client["again"]
    assert same == again and same != other
    assert len(same["text"][0]) == 20 and len(same["ids"][0]) == 20
    greedy_1, greedy_2 = client["greedy"]
    assert greedy_1 == greedy_2  # top_k=1 leaves nothing to chance
    argmax_1, argmax_2 = client["argmax"]
    assert argmax_1 == argmax_2 == greedy_1


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
    ("top_p", "top_p must be in (0, 1]"), ("top_p_high", "top_p must be in (0, 1]"),
    ("unknown", "prompt has characters outside the vocabulary:] [\u20ac]"), ("rows", "")])
def test_bad_requests_are_invalid_argument(client, case, message):
    assert client["errors"][case] is not None and message in client["errors"][case]


def test_text_matches_ids(run_dir, version_dir):
    _, vocab, _, _ = load_run(run_dir)
    out = tf.saved_model.load(version_dir).signatures["serving_default"](
        prompt=tf.constant(["First"]), max_length=tf.constant(30), temperature=tf.constant(0.8, tf.float64),
        top_k=tf.constant(5), top_p=tf.constant(0.9, tf.float64), argmax=tf.constant(False),
        seed=tf.constant(1, tf.uint64))
    assert vocab.decode(out["ids"].numpy()[0]) == out["text"].numpy()[0].decode()


def write_untrained_run(run_dir, vocab):
    os.makedirs(run_dir)
    save_model(build_model(vocab.size, 1, None, **TINY), os.path.join(run_dir, "best.keras"))
    write_json(os.path.join(run_dir, "config.json"), Config(**TINY).to_json())
    write_json(os.path.join(run_dir, "vocab.json"), vocab.to_json())
    return run_dir


def generate(version_dir, prompts, max_length=8, seed=7):
    out = tf.saved_model.load(version_dir).signatures["serving_default"](
        prompt=tf.constant(prompts), max_length=tf.constant(max_length), temperature=tf.constant(1.0, tf.float64),
        top_k=tf.constant(0), top_p=tf.constant(1.0, tf.float64), argmax=tf.constant(False),
        seed=tf.constant(seed, tf.uint64))
    return [t.decode("utf-8") for t in out["text"].numpy()], out["ids"].numpy()


def test_skip_policy_drops_unknown_characters(tmp_path):
    run_dir = write_untrained_run(tmp_path / "run", Vocab("char", "abc"))
    version = export_serving(run_dir, tmp_path / "models", unknown="skip")
    assert generate(version, ["axbyc"])[1].tolist() == generate(version, ["abc"])[1].tolist()


def test_an_unsorted_vocabulary_encodes_prompts_by_value(tmp_path):
    """A fine-tuned run's grown vocabulary is not sorted (export/SPEC.md, "Vocabulary"): the served text for a
    prompt is kerasrnn sample's."""
    run_dir = write_untrained_run(tmp_path / "run", Vocab("char", "rose a\u2192\u00e9"))
    version = export_serving(run_dir, tmp_path / "models")
    out = tf.saved_model.load(version).signatures["serving_default"](
        prompt=tf.constant(["a rose\u2192", "\u00e9ros"]), max_length=tf.constant(40),
        temperature=tf.constant(1.0, tf.float64), top_k=tf.constant(0), top_p=tf.constant(1.0, tf.float64),
        argmax=tf.constant(True), seed=tf.constant(1, tf.uint64))
    for prompt, text in zip(["a rose\u2192", "\u00e9ros"], out["text"].numpy()):
        expected = io.StringIO()
        sample(run_dir, prompt, 40, argmax=True, out=expected)
        assert prompt + text.decode() + "\n" == expected.getvalue()


def test_byte_mode_takes_any_text_and_decodes_as_the_samplers(tmp_path):
    """An untrained byte model writes many invalid and unfinished UTF-8 sequences; the text is what the
    samplers' streaming decoder writes (U+FFFD for invalid ones, an unfinished one at the end held back)."""
    vocab = Vocab("byte")
    version = export_serving(write_untrained_run(tmp_path / "run", vocab), tmp_path / "models")
    texts, ids = generate(version, ["h\u00e9llo \u20ac", ""] * 50, max_length=[40, 41, 42, 43] * 25)
    assert ids.min() >= -1 and ids.max() < 256
    expected = []
    for row in ids:
        decode = vocab.decoder()
        expected.append("".join(decode(int(i)) for i in row if i >= 0))
    assert texts == expected
    assert any(text != bytes(int(i) for i in row if i >= 0).decode("utf-8", errors="replace")
               for text, row in zip(texts, ids))  # some rows end in a sequence held back


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


# --- The sampling contract (export/SPEC.md): generate writes `kerasrnn sample`'s text ---

VECTORS = json.load(open(os.path.join(os.path.dirname(__file__), "..", "export", "sampling_vectors.json")))
LENGTH = 200
LONG_PROMPT = open(SHAKESPEARE, encoding="utf-8").read()[3000:3300]  # inside the tiny models' training text
SETTINGS = [(t, k, p) for t in (0.8, 1.3) for k in (0, 5) for p in (1.0, 0.9)]  # temperature, top_k, top_p
ROWS = [(prompt, seed, *settings) for prompt in ("ROMEO:", "", LONG_PROMPT) for seed in range(5)
        for settings in SETTINGS] + [("ROMEO:", 2**64 - 1, 0.8, 5, 0.9), ("", 2**63 + 12345, 1.3, 0, 0.9)]

# Generates every row alone and all rows in one batch, in a Python with TensorFlow only.
CONTRACT_CLIENT = r"""
import json, sys
import tensorflow as tf

def generate(fn, rows):
    prompt, seed, temperature, top_k, top_p = zip(*rows)
    out = fn(prompt=tf.constant(prompt), max_length=tf.constant(int(sys.argv[2])),
             temperature=tf.constant(temperature, tf.float64), top_k=tf.constant(top_k),
             top_p=tf.constant(top_p, tf.float64), argmax=tf.constant(False), seed=tf.constant(seed, tf.uint64))
    return [t.decode("utf-8") for t in out["text"].numpy()]

results = {}
for kind, (version_dir, rows) in json.load(open(sys.argv[1])).items():
    fn = tf.saved_model.load(version_dir).signatures["serving_default"]
    results[kind] = {"batch": generate(fn, rows), "alone": [generate(fn, [row])[0] for row in rows]}
assert "keras" not in sys.modules and not any(m.startswith("kerasrnn") for m in sys.modules)
print(json.dumps(results))
"""


def keras_texts(run_dir, rows):
    """`kerasrnn sample`'s text for each (prompt, seed, temperature, top_k, top_p) row: the contract's generate
    loop (kerasrnn_edge.sampling) over the Keras model, the rows of one prompt run as the streams of one batch
    (a row's logits do not depend on the batch: test_sample_equals_the_batched_reference checks sample() itself)."""
    trained, vocab, config, _ = load_run(run_dir)
    texts = {}
    for prompt in dict.fromkeys(row[0] for row in rows):
        group = [row for row in rows if row[0] == prompt]
        model = build_model(vocab.size, len(group), None, **config.model_args())
        copy_weights(trained, model)
        reset_to_start(model)
        feed = tf.function(lambda ids: model(ids, training=False)[:, -1])  # eager Keras calls took 10x longer
        ids = np.concatenate([[get_start(model)[0]], vocab.encode(prompt)]).astype(np.int32)
        logits = np.asarray(feed(np.tile(ids, (len(group), 1))))
        rngs, decoders, pieces = [SplitMix64(row[1]) for row in group], [vocab.decoder() for _ in group], [[] for _ in group]
        for _ in range(LENGTH):
            tokens = [choose(logits[b], rngs[b], *row[2:]) for b, row in enumerate(group)]
            for b, token in enumerate(tokens):
                pieces[b].append(decoders[b](token))
            logits = np.asarray(feed(np.array(tokens, np.int32)[:, None]))
        texts.update({row: "".join(p) for row, p in zip(group, pieces)})
    return [texts[row] for row in rows]


@pytest.fixture(scope="module")
def runs(run_dir, byte_run_dir):
    return {"char": run_dir, "byte": byte_run_dir}


@pytest.fixture(scope="module")
def versions(runs, tmp_path_factory):
    return {kind: export_serving(run, tmp_path_factory.mktemp("contract_models"), name=kind) for kind, run in runs.items()}


@pytest.fixture(scope="module")
def reference(runs):
    return {kind: keras_texts(run, ROWS) for kind, run in runs.items()}


@pytest.fixture(scope="module")
def served(versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract_client")
    job = tmp / "job.json"
    job.write_text(json.dumps({kind: [version, ROWS] for kind, version in versions.items()}))
    return run_tf_only(CONTRACT_CLIENT, str(job), str(LENGTH), tmp=tmp, timeout=900)


@pytest.mark.parametrize("kind", ["char", "byte"])
@pytest.mark.parametrize("how", ["alone", "batch"])
def test_generate_writes_kerasrnn_samples_text(kind, how, served, reference):
    got, expected = served[kind][how], reference[kind]
    wrong = [(row[:1] + row[1:], g, e) for row, g, e in zip(ROWS, got, expected) if g != e]
    assert not wrong, f"{len(wrong)} of {len(ROWS)} rows differ; first: {wrong[0]}"
    # Prompts, seeds and settings change the text (the tiny byte model writes the same text for some rows:
    # with top_k 5, top_p 0.9 often keeps the same ids as 1.0 does, and "" and "ROMEO:" can draw alike;
    # trained on torch, 88 of its 122 rows differ).
    assert len(set(expected)) > len(ROWS) * 2 / 3


@pytest.mark.parametrize("kind", ["char", "byte"])
def test_sample_equals_the_batched_reference(kind, runs, reference):
    """kerasrnn.sample.sample itself (batch 1, as the CLI runs it) writes the reference's text."""
    for i in (82, len(ROWS) - 2, len(ROWS) - 1):  # the long prompt, "ROMEO:" and "", the two large seeds
        prompt, seed, temperature, top_k, top_p = ROWS[i]
        out = io.StringIO()
        sample(runs[kind], prompt, LENGTH, temperature, top_k, top_p, seed, out=out)
        assert out.getvalue() == prompt + reference[kind][i] + "\n"


@pytest.mark.parametrize("kind", ["char", "byte"])
@pytest.mark.parametrize("batch", [1, 3])
def test_step_logits_equal_keras_to_the_bit(kind, batch, runs, versions):
    """From the start signature's states, the step signature's logits equal the Keras sampler's exactly at
    every token of the long prompt, alone and in every row of a batch (against Keras at the same batch: a
    CPU's matrix kernels may sum a one-row product in another order than a many-row one): no draw can land
    between the two."""
    trained, vocab, _, _ = load_run(runs[kind])
    keras_model = step_model(trained, batch)
    keras_model.reset()
    saved = tf.saved_model.load(versions[kind])
    start = saved.signatures["start"](batch=tf.constant(batch))
    token = start.pop("token")
    assert token.numpy().tolist() == [keras_model.start_token] * batch
    for next_token in [*vocab.encode(LONG_PROMPT), None]:
        expected = keras_model.feed(token.numpy()[:, None])
        out = saved.signatures["step"](token=token, **start)
        np.testing.assert_array_equal(out["logits"].numpy(), expected)
        start = {name: out[f"next_{name}"] for name in start}
        token = tf.fill([batch], next_token) if next_token is not None else None


@pytest.fixture(scope="module")
def saved_choose(version_dir):
    saved = tf.saved_model.load(version_dir)
    return saved, saved.signatures["choose"]


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_choose_signature_replays_the_sampling_vectors(case, saved_choose):
    _, choose_fn = saved_choose
    rng, ids = tf.constant(int(case["seed"]), tf.uint64), []
    for _ in range(case["draws"]):
        out = choose_fn(logits=tf.constant([case["logits"]], tf.float32), rng=rng,
                        temperature=tf.constant(case["temperature"], tf.float64), top_k=tf.constant(case["top_k"]),
                        top_p=tf.constant(case["top_p"], tf.float64), argmax=tf.constant(case["argmax"]))
        ids.append(int(out["id"][0]))
        rng = out["rng"]
    assert ids == case["ids"]


def test_start_step_choose_loop_gives_generates_ids(run_dir, version_dir):
    """A client's own loop over the start, step and choose signatures draws what generate draws."""
    signatures = tf.saved_model.load(version_dir).signatures
    vocab = load_run(run_dir)[1]
    settings = dict(temperature=tf.constant(0.8, tf.float64), top_k=tf.constant(5), top_p=tf.constant(0.9, tf.float64),
                    argmax=tf.constant(False))
    seed = tf.constant(2**64 - 1, tf.uint64)
    expected = signatures["serving_default"](prompt=tf.constant(["ROMEO:"]), max_length=tf.constant(30), seed=seed,
                                             **settings)["ids"].numpy()[0].tolist()
    states = signatures["start"](batch=tf.constant(1))
    tokens, rng, ids = [states.pop("token"), *(tf.constant([i]) for i in vocab.encode("ROMEO:"))], seed, []
    while len(ids) < 30:
        for token in tokens:
            out = signatures["step"](token=token, **states)
            states = {name: out[f"next_{name}"] for name in states}
        chosen = signatures["choose"](logits=out["logits"], rng=rng, **settings)
        tokens, rng = [chosen["id"]], chosen["rng"]
        ids.append(int(chosen["id"][0]))
    assert ids == expected


def test_docs_rest_request_writes_the_sample_commands_text(run_dir, version_dir):
    """docs/serving.md's `kerasrnn sample` command and its REST request write the same text on the test model;
    the request's JSON values become tensors of the signature's dtypes, as TF Serving converts them."""
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "serving.md"), encoding="utf-8") as f:
        doc = f.read()
    command = next(line for line in doc.splitlines() if line.startswith("kerasrnn sample "))
    request = json.loads(doc.split("curl -d '")[1].split("'")[0])["inputs"]
    result = run_cli("sample", run_dir, *shlex.split(command)[3:])
    assert result.returncode == 0, result.stderr
    generate = tf.saved_model.load(version_dir).signatures["serving_default"]
    out = generate(**{name: tf.constant(request[name], spec.dtype)
                      for name, spec in generate.structured_input_signature[1].items()})
    assert result.stdout == request["prompt"][0] + out["text"].numpy()[0].decode() + "\n"
    assert request["seed"] >= 2**63  # the example shows how a large seed is sent
