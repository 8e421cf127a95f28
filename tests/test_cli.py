"""The command line end to end, and every bad input: one line on stderr, no traceback, nothing lost or written."""
import hashlib
import os
import subprocess
import zipfile
from unittest import mock

import pytest

from conftest import run_cli, shakespeare_slice
from kerasrnn import cli, startup

TINY = ["--batch-size", "4", "--seq-length", "16", "--rnn-size", "16", "--num-layers", "1", "--embedding-size", "8"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory trained through the CLI on 6,000 characters of tiny-shakespeare."""
    tmp = tmp_path_factory.mktemp("cli")
    text = shakespeare_slice(tmp, 6000)
    run_dir = str(tmp / "run")
    result = run_cli("train", "--text", text, "--run-dir", run_dir, "--max-epochs", "2", *TINY)
    assert result.returncode == 0, result.stderr
    (tmp / "train.out").write_text(result.stdout)
    return text, run_dir


def test_train_takes_the_fastest_backend_unless_told(trained):
    """Unset, KERAS_BACKEND becomes torch where PyTorch is installed on a CPU-only Linux machine."""
    _, run_dir = trained
    first_line = open(os.path.join(os.path.dirname(run_dir), "train.out")).readline()
    expected = os.environ.get("KERAS_BACKEND") or startup.fastest_backend() or "tensorflow"
    assert f"parameters, on {expected}, " in first_line, first_line  # then the precision taken


def test_train_writes_the_run_directory(trained):
    _, run_dir = trained
    for name in ["config.json", "vocab.json", "best.keras", "last.keras", "checkpoint.json", "history.csv",
                 "loss.png", "logs"]:
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert open(os.path.join(run_dir, "history.csv")).readline().strip().endswith("val_loss")


def test_train_logs_each_epoch_to_tensorboard(trained):
    """TensorBoard's logs hold the epochs' losses (and no per-batch summaries: kerasrnn's callback skips them)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    _, run_dir = trained
    tags = {}
    for split in ("train", "validation"):
        events = EventAccumulator(os.path.join(run_dir, "logs", split))
        events.Reload()
        tags[split] = set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
    assert "epoch_loss" in tags["train"] and "epoch_loss" in tags["validation"], tags
    assert not any(tag.startswith("batch_") for tag in tags["train"]), tags


def test_sample_same_seed_same_text(trained):
    _, run_dir = trained
    args = ["sample", run_dir, "--prime", "First", "--length", "60", "--temperature", "0.8", "--seed", "7"]
    a, b, c = run_cli(*args), run_cli(*args), run_cli(*args[:-1], "8")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("First") and len(a.stdout) == len("First") + 60 + 1
    assert c.stdout != a.stdout
    greedy = run_cli("sample", run_dir, "--prime", "First", "--length", "30", "--argmax", "--top-k", "3")
    assert greedy.returncode == 0 and len(greedy.stdout) == 36


def digest(directory):
    """Every file's sha256, but the lock's (it holds the id of the last process that took it)."""
    return {name: hashlib.sha256(open(os.path.join(directory, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(directory)) if os.path.isfile(os.path.join(directory, name))
            and name != "lock"}


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and lines[0].startswith("kerasrnn: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_inputs_get_one_line_and_lose_nothing(trained, tmp_path, capsys):
    text, run_dir = trained
    before = digest(run_dir)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("To be or not to be")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    corrupt = tmp_path / "corrupt"
    os.makedirs(corrupt)
    for name in ("config.json", "vocab.json"):
        (corrupt / name).write_bytes(open(os.path.join(run_dir, name), "rb").read())
    (corrupt / "best.keras").write_bytes(open(os.path.join(run_dir, "best.keras"), "rb").read()[:5000])
    foreign = tmp_path / "foreign"
    os.makedirs(foreign)
    for name in ("config.json", "vocab.json"):
        (foreign / name).write_bytes(open(os.path.join(run_dir, name), "rb").read())
    with zipfile.ZipFile(foreign / "best.keras", "w") as z:
        z.writestr("config.json", '{"class_name": "Sequential", "config": {}}')
    other_text = shakespeare_slice(tmp_path, 6000, name="other.txt", start=40_000)
    file = tmp_path / "file.txt"  # a file where a directory is expected
    file.write_text("not a directory\n")

    cases = [
        (["train", "--text", tmp_path / "missing.txt", "--run-dir", tmp_path / "r1"],
         "does not exist: pass an existing text file with --text"),  # the command line names its flags
        (["train", "--text", tmp_path, "--include", "*.txt", "--run-dir", tmp_path / "r2"],
         f"{tmp_path}/latin1.txt is not valid UTF-8 (byte offset 3)"),
        (["train", "--text", tmp_path / "empty.txt", "--run-dir", tmp_path / "r3"], "is empty"),
        (["train", "--text", tmp_path / "short.txt", "--run-dir", tmp_path / "r4", *TINY], "= 65 are needed"),
        (["train", "--text", tmp_path / "latin1.txt", "--run-dir", tmp_path / "r5"], "byte offset 3"),
        (["train", "--text", text, "--preset", "huge", "--run-dir", tmp_path / "r6"], "unknown preset"),
        (["train", "--text", text, "--rnn-size", "0", "--run-dir", tmp_path / "r7"], "--rnn-size must be positive"),
        (["train", "--text", text, "--batch-size", "-3", "--run-dir", tmp_path / "r8"], "--batch-size must be positive"),
        (["train", "--text", text, "--run-dir", run_dir], "already holds a run"),
        (["train", "--text", other_text, "--run-dir", run_dir, "--resume", *TINY],
         "the text has characters outside the vocabulary: 'G' 'K' 'x' (its vocab.json)"),
        (["train", "--text", text, "--run-dir", run_dir, "--resume", "--rnn-size", "32"], "rnn_size 16 -> 32"),
        (["train", "--text", text, "--init-from", run_dir, "--run-dir", tmp_path / "r9", *TINY, "--rnn-size", "32"],
         "cannot fine-tune from " + run_dir + ": rnn_size 16 -> 32 differ from its model"),
        (["train", "--text", text, "--freeze", "embedding", "--run-dir", tmp_path / "r11"],
         "--freeze goes with fine-tuning: pass --init-from RUN_DIR too"),
        (["train", "--text", text, "--init-from", run_dir, "--freeze", "embedding,2", "--run-dir", tmp_path / "r12",
          *TINY], "--freeze names layers among embedding, 0, output (got '2')"),
        (["train", "--text", text, "--init-from", run_dir, "--replay", "1", "--run-dir", tmp_path / "r13"],
         "--replay must be in [0, 1) (got 1.0)"),
        (["sample", run_dir, "--temperature", "0"], "temperature must be > 0"),
        (["sample", run_dir, "--temperature", "-1"], "temperature must be > 0"),
        (["sample", run_dir, "--length", "-5"], "length must be >= 0"),
        (["sample", run_dir, "--prime", "Жук"], "outside the vocabulary: 'Ж' 'к' 'у'"),
        (["sample", corrupt], "not a Keras checkpoint"),
        (["sample", foreign], "could not be loaded as a kerasrnn checkpoint"),
        (["sample", tmp_path / "nowhere"], "does not exist: pass a run directory made by kerasrnn train"),
    ]
    folders = [  # each argument that names a directory, given a file: nothing is written
        (["train", "--text", text, "--run-dir", file], f"--run-dir {file} is a file: pass a directory for the run"),
        (["train", "--text", text, "--run-dir", file / "run"], f"--run-dir {file}/run is inside {file}, a file"),
        (["train", "--text", text, "--init-from", file, "--run-dir", tmp_path / "r10"],
         f"--init-from {file} is a file: pass a run directory made by kerasrnn train"),
        (["demo", "--run-dir", file], f"--run-dir {file} is a file"),
        (["sample", file], f"{file} is a file: pass a run directory made by kerasrnn train"),
        (["export", file, "--out", tmp_path / "bundle"], f"{file} is a file: pass a run directory"),
        (["export", run_dir, "--out", file], f"--out {file} is a file: pass a directory for the bundle"),
        (["export", run_dir, "--web", file], f"--web {file} is a file: pass a directory for the web sampler"),
        (["export", run_dir, "--web", file / "site"], f"--web {file}/site is inside {file}, a file"),
        (["export", run_dir, "--serving", file], f"--serving {file} is a file: pass a base directory"),
        (["export", run_dir, "--micro", file], f"--micro {file} is a file: pass a directory for the micro bundle"),
        (["inspect", file], f"{file} is a file: pass a run directory"),
        (["inspect", run_dir, "--lstmvis", file], f"--lstmvis {file} is a file: pass a directory for LSTMVis"),
        (["serve-web", file], f"{file} is a file: pass the directory kerasrnn export RUN --web DIR wrote"),
    ]
    (args, fragment), *rest = cases
    assert_one_line_error(run_cli(*args), fragment)  # a real process: exit status 2, one line, no traceback
    for args, fragment in rest:  # the same main(), in this process (a process each took two minutes)
        assert_one_line_error(run_main(capsys, *args), fragment)
    for args, fragment in folders:  # real processes: refused before Keras is imported, at once
        written = written_under(tmp_path)
        result = run_cli(*args)
        assert_one_line_error(result, fragment)
        assert result.returncode == 2 and written_under(tmp_path) == written, args
    assert digest(run_dir) == before


def written_under(directory):
    """Every path under a directory, with each file's sha256."""
    return {os.path.join(root, name): digest(root).get(name) for root, dirs, names in os.walk(directory)
            for name in dirs + names}


def run_main(capsys, *args):
    """`kerasrnn ARGS` through the console script's main() in this process: exit status and output. The
    environment is restored after (main sets KERAS_BACKEND for train, which later tests' processes would
    inherit)."""
    capsys.readouterr()
    try:
        with mock.patch.dict(os.environ):
            cli.main([str(a) for a in args])
        status = 0
    except SystemExit as e:
        status = e.code
    return subprocess.CompletedProcess(args, status, *capsys.readouterr())
