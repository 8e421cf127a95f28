"""Bad inputs of the newest features (GPT runs, bpe tokens, fine-tuning, the benchmarks, the Python API), as a
new user meets them: one line on stderr, exit status 2, no traceback, and the run directories as they were
(docs/reliability.md). Also the inputs that used to fail and now work: a GPT fine-tuned without --model, a
text with no line break learned as bpe pieces."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import kerasrnn
from conftest import REPO, SHAKESPEARE, run_cli, shakespeare_slice
from test_cli import assert_one_line_error, digest, run_main, written_under

SMALL = ["--batch-size", "4", "--seq-length", "16", "--embedding-size", "8", "--max-epochs", "1"]
RNN = [*SMALL, "--rnn-size", "16", "--num-layers", "1"]
GPT = [*SMALL, "--model", "gpt", "--num-layers", "2", "--num-heads", "2", "--context", "8"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An LSTM run and a GPT run trained through the command line on 6,000 characters, each one pass (finished)."""
    tmp = tmp_path_factory.mktemp("bad")
    text = shakespeare_slice(tmp, 6000)
    made = {"tmp": tmp, "text": text}
    for name, options in (("lstm", RNN), ("gpt", GPT)):
        made[name] = str(tmp / name)
        result = run_cli("train", "--text", text, "--run-dir", made[name], *options)
        assert result.returncode == 0, result.stderr
    return made


def test_bad_inputs_of_gpt_bpe_and_fine_tuning_are_one_line_and_change_nothing(runs, tmp_path, capsys):
    text, lstm, gpt = runs["text"], runs["lstm"], runs["gpt"]
    before = {run: digest(run) for run in (lstm, gpt)}
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "breaks.txt").write_text("\n" * 500)
    os.makedirs(tmp_path / "nothing")
    moving = shakespeare_slice(tmp_path, 6000, name="moving.txt")
    base = str(tmp_path / "base")  # a run whose text is moved away after it trained
    assert run_cli("train", "--text", moving, "--run-dir", base, *RNN).returncode == 0
    os.rename(moving, tmp_path / "moved.txt")
    cases = [
        (["train", "--init-from", gpt, "--model", "rnn", "--text", text, "--run-dir", tmp_path / "r1", *SMALL],
         f"cannot fine-tune from {gpt}: it is --model gpt, not --model rnn; leave --model out"),
        (["train", "--text", text, "--num-heads", "4", "--run-dir", tmp_path / "r2"],
         "--num-heads is not read by --model rnn: leave it out"),
        (["train", "--model", "gpt", "--cell", "gru", "--text", text, "--run-dir", tmp_path / "r3"],
         "--cell is not read by --model gpt: leave it out"),
        (["train", "--init-from", gpt, "--rnn-size", "32", "--text", text, "--run-dir", tmp_path / "r4"],
         "--rnn-size is not read by --model gpt"),
        (["train", "--run-dir", gpt, "--resume", "--cell", "gru"], "--cell is not read by --model gpt"),
        (["train", "--init-from", gpt, "--num-heads", "4", "--text", text, "--run-dir", tmp_path / "r5", *SMALL],
         f"cannot fine-tune from {gpt}: num_heads 2 -> 4 differ from its model"),
        (["train", "--run-dir", lstm, "--resume"],
         f"{lstm} has finished its 1 pass over the text (step 84): to train it further, raise --max-epochs "
         "(e.g. --max-epochs 2) with --resume"),
        (["train", "--tokens", "bpe", "--text", tmp_path / "empty.txt", "--run-dir", tmp_path / "r6"],
         "empty.txt is empty: pass a file with text in it"),
        (["train", "--tokens", "bpe", "--vocab-size", "258", "--text", tmp_path / "breaks.txt",
          "--run-dir", tmp_path / "r7"], "holds nothing but line breaks"),
        (["train", "--tokens", "bpe", "--vocab-size", "1000000000", "--text", text, "--run-dir", tmp_path / "r8"],
         "--vocab-size 1000000000 is more pieces than the training part of", "(at most 5,657:"),
        (["train", "--tokens", "char", "--vocab-size", "500", "--text", text, "--run-dir", tmp_path / "r9"],
         "--vocab-size is read with --tokens bpe only"),
        (["train", "--text", tmp_path / "nothing", "--run-dir", tmp_path / "r10"],
         "nothing holds no files: pass a directory or archive with text files in it"),
        (["train", "--init-from", base, "--replay", "0.25", "--text", text, "--run-dir", tmp_path / "r11", *SMALL],
         f"cannot replay the text of {base}: {moving}, which it trained on (its config.json), is missing; "
         "put it back, or fine-tune without --replay"),
    ]
    for args, *fragments in cases:
        written = written_under(tmp_path)
        assert_one_line_error(run_main(capsys, *args), *fragments)
        assert written_under(tmp_path) == written, args  # not even an empty run directory
    assert {run: digest(run) for run in (lstm, gpt)} == before


@pytest.mark.parametrize("args, message", [
    (["train", "--vocab-size", "1k"], "kerasrnn train: error: argument --vocab-size: invalid int value: '1k' "
                                      "(kerasrnn train --help lists the options)"),
    (["sample", "run", "--length", "ten"], "kerasrnn sample: error: argument --length: invalid int value: 'ten'"),
    (["export"], "kerasrnn export: error: the following arguments are required: run_dir"),
])
def test_a_malformed_argument_is_one_line_without_the_usage(args, message):
    result = run_cli(*args)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(message), result.stderr


@pytest.mark.parametrize("script, args, message", [
    ("rnn_to_llm.py", ["context", "--seconds", "0"], "argument --seconds: must be above 0 (got 0)"),
    ("rnn_to_llm.py", ["contexts"], "argument experiment: invalid choice: 'contexts'"),
    ("train_throughput.py", ["--grid", "nope"], "argument --grid: invalid choice: 'nope'"),
    ("train_throughput.py", ["--steps", "-1"], "argument --steps: must be above 0 (got -1)"),
    ("train_throughput.py", ["--seq-length", "64,100"],
     "argument --seq-length: takes divisors of 8192, comma-separated (got '100')"),
    ("train_throughput.py", ["--seq-length", "64", "--models", "rnn,lstm"],
     "argument --models: takes rnn, gpt, mingru, minlstm, comma-separated (got 'lstm')"),
    ("int8_quality.py", ["run", "--chars", "-5"], "argument --chars: must be 0 or more (got -5)"),
])
def test_the_benchmarks_refuse_bad_budgets_and_choices_in_one_line(script, args, message):
    result = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", script), *args], capture_output=True,
                            text=True, cwd=REPO, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert last == f"{script}: error: {message}{last[len(script) + 9 + len(message):]}" and "--help" in last, last


def test_the_sequence_length_sweep_times_its_torch_peers_on_the_torch_backend_only():
    """--seq-length --torch has each family's PyTorch peer take turns in kerasrnn's process: on another backend the
    script says so in one line, before it reads anything."""
    result = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "train_throughput.py"), "--seq-length",
                             "64", "--models", "gpt", "--torch"], capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "train_throughput.py: error: --seq-length times its --torch peers in kerasrnn's process, on the torch "
        "backend: set KERAS_BACKEND=torch")


def test_a_gpt_run_fine_tunes_as_a_gpt_without_model(runs, tmp_path):
    """--init-from takes the base run's family, shape and tokens; a frozen block stays the base's."""
    import keras

    from kerasrnn.run import load_config, load_model
    other = shakespeare_slice(tmp_path, 6000, name="other.txt", start=30_000)
    run_dir = str(tmp_path / "tuned")
    result = run_cli("train", "--init-from", runs["gpt"], "--text", other, "--run-dir", run_dir, "--batch-size", "4",
                     "--seq-length", "16", "--max-epochs", "1", "--freeze", "0", "--replay", "0.25")
    assert result.returncode == 0, result.stderr
    base, tuned = load_config(runs["gpt"]), load_config(run_dir)
    assert (tuned.model, tuned.num_layers, tuned.num_heads, tuned.embedding_size, tuned.context) == (
        "gpt", base.num_layers, base.num_heads, base.embedding_size, base.context)
    def block_0(path):
        return {w.path: keras.ops.convert_to_numpy(w.value) for w in load_model(path, False).weights if "block_0" in w.path}
    frozen, after = block_0(os.path.join(runs["gpt"], "best.keras")), block_0(os.path.join(run_dir, "last.keras"))
    assert frozen.keys() == after.keys() and all(np.array_equal(after[path], frozen[path]) for path in frozen)
    assert run_cli("sample", run_dir, "--length", "20").returncode == 0


def test_the_python_api_names_keywords_and_refuses_unknown_ones(runs, tmp_path):
    """Every KerasrnnError of the API names the keyword the caller wrote (`num_heads=`), never a flag."""
    text = runs["text"]
    calls = [
        (lambda: kerasrnn.Run.train(str(tmp_path / "a"), text=text, num_head=2, verbose=0),
         "num_head= is not a training option: did you mean num_heads=?"),
        (lambda: kerasrnn.Run.train(str(tmp_path / "b"), text=text, model="gpt", cell="gru", verbose=0),
         "cell= is not read by model='gpt': leave it out"),
        (lambda: kerasrnn.Run.train(str(tmp_path / "c"), text=text, tokens="bpe", vocab_size=10**9, verbose=0),
         "vocab_size=1000000000 is more pieces than the training part of"),
        (lambda: kerasrnn.Run.train(str(tmp_path / "d"), init_from=runs["gpt"], text=text, model="rnn", verbose=0),
         "it is model='gpt', not model='rnn'; leave model= out"),
        (lambda: kerasrnn.Run.train(runs["lstm"], resume=True, verbose=0),
         "raise max_epochs= (e.g. max_epochs=2) with resume=True"),
        (lambda: kerasrnn.Run.load(runs["lstm"]).export(text), f"{text} is a file where a directory is needed"),
    ]
    for call, fragment in calls:
        with pytest.raises(kerasrnn.KerasrnnError) as error:
            call()
        assert fragment in str(error.value) and "--" not in str(error.value), str(error.value)
    assert sorted(os.listdir(tmp_path)) == []


def test_bpe_learns_from_a_text_with_no_line_break_and_the_edge_samples_its_text(tmp_path):
    """A 100 kB text with no line break (SentencePiece skips lines over 8 kB whole) trains with --tokens bpe, and
    its bundle samples on the edge what `kerasrnn sample` samples."""
    with open(SHAKESPEARE, encoding="utf-8") as f:
        flat = (f.read() * 2)[:100_000].replace("\n", " ")
    path = tmp_path / "flat.txt"
    path.write_text(flat)
    run_dir = str(tmp_path / "run")
    result = run_cli("train", "--text", path, "--tokens", "bpe", "--vocab-size", "400", "--run-dir", run_dir,
                     "--batch-size", "8", "--seq-length", "32", "--rnn-size", "32", "--num-layers", "1",
                     "--embedding-size", "16", "--max-epochs", "1")
    assert result.returncode == 0, result.stderr
    vocab = json.load(open(os.path.join(run_dir, "vocab.json")))
    merged = [p for p in vocab["pieces"] if isinstance(p, str) and len(p) > 1]
    assert len(vocab["pieces"]) == 400 and len(merged) > 50, len(merged)  # learned, not bytes alone
    settings = ["--prime", "ROMEO: ", "--length", "80", "--temperature", "0.8", "--seed", "3"]
    keras_text = run_cli("sample", run_dir, *settings)
    assert keras_text.returncode == 0, keras_text.stderr
    bundle = str(tmp_path / "bundle")
    assert run_cli("export", run_dir, "--out", bundle).returncode == 0
    edge = subprocess.run([sys.executable, "-m", "kerasrnn_edge.cli", "sample", bundle, *settings], capture_output=True,
                          text=True, timeout=300)
    assert edge.returncode == 0, edge.stderr
    assert edge.stdout == keras_text.stdout and len(keras_text.stdout) > 80
    shutil.rmtree(bundle)
