"""The micro target (docs/micro.md): the C sampling core against the contract's vectors and against
kerasrnn-edge's text over a real model's recorded logits, compiled with gcc -std=c99 -Wall -Wextra -Werror;
`kerasrnn export --micro` on a trained run, run by TensorFlow Lite for Microcontrollers' interpreter and by
LiteRT on the same full-integer file.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, Recorder, run_cli
from kerasrnn_edge import cli as edge_cli
from kerasrnn_edge.sampler import EdgeSampler
from kerasrnn_edge.sampling import generate, stream_seed
from kerasrnn_edge.vocab import Vocab
from test_export import exported_run

sys.path.insert(0, os.path.join(REPO, "export"))
from make_sampling_vectors import TableModel  # noqa: E402

C_CORE = os.path.join(REPO, "export", "micro")
VECTORS = os.path.join(REPO, "export", "sampling_vectors.json")
GCC = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]

with open(VECTORS, encoding="utf-8") as f:
    V = json.load(f)


def _hex(text):
    return text.encode("utf-8").hex() or "-"


def _floats(values):
    return " ".join(float(v).hex() for v in np.asarray(values, np.float32).ravel())


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """The C core and tests/micro_driver.c, built with gcc's strictest C99."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: install it (Debian: apt-get install gcc) to test the C sampling core")
    binary = str(tmp_path_factory.mktemp("micro") / "driver")
    subprocess.run([*GCC, "-I", C_CORE, os.path.join(C_CORE, "kerasrnn_sample.c"),
                    os.path.join(REPO, "tests", "micro_driver.c"), "-lm", "-o", binary], check=True)

    def run(commands):
        result = subprocess.run([binary], input="\n".join(commands) + "\n", capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()
    return run


def _vocab_command(vocab):
    return "vocab byte" if vocab.kind == "byte" else f"vocab char {vocab.size} " + " ".join(str(ord(c)) for c in vocab.chars)


def _generate_command(case, seed=None, until=""):
    return (f"generate {case['start_token']} {case['start']} {seed if seed is not None else case['seed']} "
            f"{case['temperature']!r} {case['top_k']} {case['top_p']!r} {int(case['argmax'])} {case['length']} "
            f"{_hex(case['prime'])} {_hex(until)}")


def test_splitmix64_and_stream_seeds(driver):
    out = driver([f"rng {r['seed']} {len(r['next_u64'])}" for r in V["rng"]])
    expected = [(u, d) for r in V["rng"] for u, d in zip(r["next_u64"], r["next_double"])]
    assert [(line.split()[0], float.fromhex(line.split()[1])) for line in out] == expected
    seeds = V["generate"]["many"]["stream_seeds"]
    out = driver([f"stream {s['seed']} {i}" for s in seeds for i in s["i"]])
    assert out == [x for s in seeds for x in s["stream_seed"]]


def test_choose(driver):
    cases = V["cases"]
    out = driver([f"choose {c['seed']} {c['temperature']!r} {c['top_k']} {c['top_p']!r} {int(c['argmax'])} "
                  f"{c['draws']} {len(c['logits'])} {_floats(c['logits'])}" for c in cases])
    for case, line in zip(cases, out):
        assert [int(i) for i in line.split()] == case["ids"], case["name"]


def test_generate_and_many(driver):
    """Every generate case; every stream of every batch case, run alone with its stream seed and cut after
    its `until` (as a firmware samples one stream). BPE cases are not for this core (char and byte only)."""
    g = V["generate"]
    table = g["table"]
    head = [_vocab_command(Vocab.from_json(g["vocab"])), f"table {len(table)} {len(table[0])} {_floats(table)}"]
    out = driver(head + [_generate_command(c) for c in g["cases"]])
    assert [bytes.fromhex(line.replace("-", "")).decode("utf-8") for line in out] == [c["text"] for c in g["cases"]]
    streams = [(c, stream_seed(int(c["seed"]), i), text) for c in g["many"]["cases"] for i, text in enumerate(c["texts"])]
    out = driver(head + [_generate_command(c, seed, c["until"]) for c, seed, _ in streams])
    assert [bytes.fromhex(line.replace("-", "")).decode("utf-8") for line in out] == [t for _, _, t in streams]


@pytest.mark.parametrize("bias", ["utf8", "invalid"])
def test_byte_vocab_decodes_as_python(driver, bias):
    """Byte mode over a table biased to multi-byte, overlong, surrogate and out-of-range sequences: the C
    decoder writes Python's text (U+FFFD and all) byte for byte."""
    from test_java_sampler import byte_bias
    table = (np.random.default_rng(5).normal(0, 2, (101, 256)) + byte_bias(bias)).astype(np.float32)
    vocab = Vocab("byte")
    case = dict(start_token=3, start=1, temperature=1.0, top_k=0, top_p=1.0, argmax=False, length=3000,
                prime="naïve ")
    python = "".join(generate(TableModel(table, 3, 1), vocab, case["prime"], 3000, seed=11))
    (line,) = driver([_vocab_command(vocab), f"table 101 256 {_floats(table)}", _generate_command(case, 11)])
    assert bytes.fromhex(line).decode("utf-8") == python
    assert "\ufffd" in python and any(ord(c) > 0x7F and c != "\ufffd" for c in python)


def test_prime_outside_the_vocabulary(driver):
    g = V["generate"]
    case = dict(g["cases"][0], prime="ROMEOx")
    out = driver([_vocab_command(Vocab.from_json(g["vocab"])), f"table 1 {g['vocab']['size']} "
                  + _floats(g["table"][0]), _generate_command(case)])
    assert out == [f"error -2 {len('ROMEO')}"]


@pytest.fixture(scope="module")
def micro_bundle(tmp_path_factory):
    """A small trained LSTM (test_export's) and its micro bundle, written by the command line."""
    pytest.importorskip("tflite_micro", reason="tflite-micro (the test extra; x86-64 Linux wheels) is not installed")
    run_dir, _ = exported_run(tmp_path_factory, "lstm")
    bundle = str(tmp_path_factory.mktemp("micro-bundle") / "micro")
    result = run_cli("export", run_dir, "--micro", bundle)
    assert result.returncode == 0, result.stderr
    assert "arena" in result.stdout
    return bundle


def test_c_core_replays_kerasrnn_edge(driver, micro_bundle, capsys):
    """The C core fed the logits TFLite Micro computed, token by token, writes kerasrnn-edge's text."""
    assert edge_cli.main(["sample", micro_bundle, "--runtime", "tflite-micro", "--prime", "ROMEO:", "--length", "300",
                          "--temperature", "0.9", "--top-k", "20", "--seed", "44"]) == 0
    printed = capsys.readouterr().out
    sampler = EdgeSampler.load(micro_bundle, "tflite-micro")
    recording = Recorder(sampler.model)
    text = "".join(generate(recording, sampler.vocab, "ROMEO:", 300, 0.9, 20, 1.0, 44))
    assert printed == "ROMEO:" + text + "\n"
    records = " ".join(f"{token} {_floats(logits)}" for token, logits in zip(recording.fed, recording.rows))
    case = dict(start_token=sampler.model.start_token, start=0, temperature=0.9, top_k=20, top_p=1.0, argmax=False,
                length=300, prime="ROMEO:")
    (line,) = driver([_vocab_command(sampler.vocab), f"replay {len(recording.fed)} {sampler.vocab.size} {records}",
                      _generate_command(case, 44)])
    assert bytes.fromhex(line) == text.encode("utf-8")


def test_micro_bundle(micro_bundle):
    """Only ops TFLite Micro has; an int8 cost measured; C sources that compile as C99 without a warning;
    TFLite Micro the default runtime."""
    from kerasrnn_edge.micro import MicroStep
    assert isinstance(EdgeSampler.load(micro_bundle).model, MicroStep)
    with open(os.path.join(micro_bundle, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    (entry,) = manifest["files"]
    assert entry["precision"] == "integer" and manifest["micro"]["arena_bytes"] < 256 * 1024
    loss = manifest["micro"]["validation"]
    assert abs(loss["integer"] - loss["fp32"]) < 0.05, loss
    header = open(os.path.join(micro_bundle, "c", "kerasrnn_model.h"), encoding="utf-8").read()
    assert "(resolver).AddGather();" in header and "Flex" not in header
    if shutil.which("gcc"):
        subprocess.run([*GCC, "-c", os.path.join(micro_bundle, "c", "kerasrnn_model.c"), "-o", os.devnull], check=True)


def test_tflite_micro_and_litert_on_the_same_file(micro_bundle):
    """Both runtimes run the full-integer file (float32 states carried between steps, SPEC.md "Micro
    bundle"). Their int8 kernels round differently, so the texts part; what holds: from the same inputs
    (token and states) at every position of a 300-token sample, their logits are within one output
    quantization step."""
    from ai_edge_litert.interpreter import Interpreter
    micro = EdgeSampler.load(micro_bundle, "tflite-micro")
    litert = EdgeSampler.load(micro_bundle, "ai-edge-litert")
    recording = Recorder(micro.model)
    "".join(generate(recording, micro.vocab, "ROMEO:", 300, seed=7))
    interpreter = Interpreter(model_path=os.path.join(micro_bundle, "step_micro.tflite"))
    dequantized = {op["outputs"][0]: op["inputs"][0] for op in interpreter._get_ops_details()
                   if op["op_name"] == "DEQUANTIZE"}
    step = interpreter.get_tensor_details()[dequantized[litert.model.logits]]["quantization"][0]
    micro.model.reset()
    worst = 0.0
    for token, logits in zip(recording.fed, recording.rows):
        states = micro.model.states
        for (index, _), state in zip(litert.model.state_pairs, states):
            litert.model.interpreter.set_tensor(index, state)
        litert.model.interpreter.set_tensor(litert.model.token, np.array([token], np.int32))
        litert.model.interpreter.invoke()
        micro.model.feed([token])
        worst = max(worst, float(np.abs(litert.model.interpreter.get_tensor(litert.model.logits)[0] - logits).max()))
    assert len(recording.fed) == 306 and worst <= step * 1.0001, (worst, step)

