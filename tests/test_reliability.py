"""docs/reliability.md, shown with real processes, real signals and a real small disk: a full disk, a
run directory used twice, preemption (SIGTERM) and kills (SIGKILL) at several moments of the `tiny`
preset's training with its regularizers on, resumed exactly, on TensorFlow and on torch."""
import contextlib
import gc
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, run_cli, shakespeare_slice

TINY = ["--batch-size", "4", "--seq-length", "16", "--rnn-size", "16", "--num-layers", "1", "--embedding-size", "8"]


def start_cli(*args, env=None):
    """`python -m kerasrnn ARGS` in the background, its output unbuffered (lines arrive as printed)."""
    return subprocess.Popen([sys.executable, "-m", "kerasrnn", *map(str, args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})


def wait_for(condition, what, timeout=240):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def one_line(stderr, prefix="kerasrnn: error: "):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix) and "Traceback" not in stderr, stderr
    return lines[0]


def record(run_dir, which="last"):
    with open(os.path.join(run_dir, "checkpoint.json")) as f:
        return json.load(f)[which]


def temp_files(run_dir):
    return [name for name in os.listdir(run_dir) if ".tmp" in name]


def weights(run_dir, name="last.keras"):
    """{path: value} of every weight and optimizer variable (the weight averages among them) of a checkpoint."""
    import keras

    from kerasrnn.run import load_model
    model = load_model(os.path.join(run_dir, name))
    return {v.path: keras.ops.convert_to_numpy(v.value) for v in model.weights + model.optimizer.variables}


def assert_same_weights(run_dir, reference):
    got, want = weights(run_dir), weights(reference)
    assert got.keys() == want.keys()
    differences = {path: float(np.max(np.abs(got[path] - want[path]), initial=0)) for path in want}
    print(f"largest difference from the uninterrupted run: {max(differences.values())}")
    assert max(differences.values()) <= 1e-6, differences


@contextlib.contextmanager
def small_disk(path, size):
    """A tmpfs of `size` mounted at `path` (root only); skips the test where mounting is not allowed."""
    os.makedirs(path)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'}): needs root")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def resize(path, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_full_disk_fails_in_one_line_and_resumes_once_space_is_freed(tmp_path):
    text = shakespeare_slice(tmp_path, 6000)
    disk = tmp_path / "disk"
    run_dir, reference = disk / "run", tmp_path / "reference"
    args = ["train", "--text", text, "--eval-every", "20", "--lr-schedule", "constant", *TINY]  # as --max-epochs grows
    straight = run_cli(*args, "--run-dir", reference, "--max-epochs", "2")
    assert straight.returncode == 0, straight.stderr
    with small_disk(disk, "8m"):
        first = run_cli(*args, "--run-dir", run_dir, "--max-epochs", "1")
        assert first.returncode == 0, first.stderr
        before = {name: digest(run_dir / name) for name in ("last.keras", "best.keras", "checkpoint.json")}
        used = os.statvfs(disk).f_blocks - os.statvfs(disk).f_bfree
        resize(disk, (used + 4) * os.statvfs(disk).f_frsize)  # 16 KiB free: less than a checkpoint

        full = run_cli(*args, "--run-dir", run_dir, "--resume", "--max-epochs", "2")
        line = one_line(full.stderr)
        assert full.returncode == 2
        assert "No space left on device (ENOSPC)" in line and str(run_dir) in line and "--resume" in line, line
        assert not temp_files(run_dir)
        assert {name: digest(run_dir / name) for name in before} == before
        assert len(weights(run_dir)) > 0  # the earlier checkpoint loads

        resize(disk, "64m")
        resumed = run_cli(*args, "--run-dir", run_dir, "--resume", "--max-epochs", "2")
        assert resumed.returncode == 0, resumed.stderr
        assert record(run_dir)["step"] == record(reference)["step"]
        assert_same_weights(run_dir, reference)


def test_export_to_a_read_only_file_system_fails_in_one_line(tmp_path):
    text = shakespeare_slice(tmp_path, 3000)
    run_dir, disk = tmp_path / "run", tmp_path / "disk"
    trained = run_cli("train", "--text", text, "--run-dir", run_dir, "--max-epochs", "1", *TINY)
    assert trained.returncode == 0, trained.stderr
    with small_disk(disk, "8m"):
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for target in (["--out", disk / "bundle"], ["--serving", disk / "serving"]):
            result = run_cli("export", run_dir, *target)
            assert result.returncode == 2
            assert "Read-only file system (EROFS)" in one_line(result.stderr)


def test_a_run_directory_has_one_writer_and_a_killed_one_leaves_no_lock(tmp_path):
    text = shakespeare_slice(tmp_path, 40_000)
    run_dir = tmp_path / "run"
    trained = run_cli("train", "--text", text, "--run-dir", run_dir, "--max-epochs", "1", "--eval-every", "50", *TINY)
    assert trained.returncode == 0, trained.stderr
    first = start_cli("train", "--run-dir", run_dir, "--resume", "--max-epochs", "1000")
    try:
        wait_for(lambda: open(run_dir / "lock").read().strip() == str(first.pid), "the first run's lock")
        started = time.time()
        second = run_cli("train", "--run-dir", run_dir, "--resume")
        assert time.time() - started < 10 and second.returncode == 2
        assert f"is in use by process {first.pid}" in one_line(second.stderr)

        sample = run_cli("sample", run_dir, "--checkpoint", "last", "--length", "20", "--seed", "1")
        assert sample.returncode == 0 and len(sample.stdout) == 21, sample.stderr  # readers take no lock
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    steps = record(run_dir)["step"]
    third = run_cli("train", "--run-dir", run_dir, "--resume", "--max-epochs", "1000", "--max-seconds", "1")
    assert third.returncode == 0, third.stderr
    assert record(run_dir)["step"] > steps


# the `tiny` preset as it is (dropout 0.25, weight averaging 0.99), smaller: 40,000 characters, 4 chunks of 17
# steps per pass (a validation each), 3 passes
PRESET = ["--preset", "tiny", "--rnn-size", "64", "--batch-size", "16", "--seq-length", "32", "--eval-every", "20",
          "--seed", "5", "--max-seconds", "0", "--max-epochs", "3"]
STEPS, CHUNKS = 17, 12


@pytest.fixture(scope="module", params=["tensorflow", "torch"])
def uninterrupted(request, tmp_path_factory):
    """(arguments, environment, run directory) of the preset's run left alone, trained by the command line
    on a backend. torch waits passively for its threads: OpenMP's spinning slows it several times over on
    a busy 2-core machine."""
    backend = request.param
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f'{backend} is not installed (pip install ".[{backend}]")')
    tmp = tmp_path_factory.mktemp(backend)
    env = {"KERAS_BACKEND": backend, **({"OMP_WAIT_POLICY": "PASSIVE"} if backend == "torch" else {})}
    args = ["train", "--text", shakespeare_slice(tmp, 40_000), *PRESET]
    reference = tmp / "reference"
    straight = run_cli(*args, "--run-dir", reference, env=env)
    assert straight.returncode == 0, straight.stderr
    assert record(reference)["step"] == STEPS * CHUNKS and f"parameters, on {backend}, " in straight.stdout
    return args, env, reference


def chunk_began(process, number):
    """A condition: the process has printed Keras's line for its Keras epoch `number` (counted from 1)."""
    def began():
        return process.stdout.readline().startswith(f"Epoch {number}/")
    began.__doc__ = f"Keras epoch {number}"
    return began


def validating(run_dir):
    """A condition: the process has begun validating (TensorBoard opens its validation log then)."""
    logs = run_dir / "logs" / "validation"
    before = set(os.listdir(logs)) if logs.exists() else set()

    def began():
        """validation"""
        return logs.exists() and set(os.listdir(logs)) != before
    return began


def writing(run_dir):
    """A condition: a checkpoint is being written (its temporary files exist)."""
    def began():
        """a checkpoint's temporary files"""
        return any(name.startswith((".best.keras.", ".last.keras.")) for name in temp_files(run_dir))
    return began


def test_sigterm_at_five_moments_then_resume_trains_as_an_uninterrupted_run(uninterrupted, tmp_path):
    """SIGTERM mid-pass (in a fresh run, then in the second `fit` of a run resumed mid-pass), during
    validation and while a checkpoint is written, then a second SIGTERM during the checkpoint a first one
    asked for; each followed by --resume, the run ends with every weight and optimizer variable (the
    weight averages too) of the run left alone."""
    args, env, reference = uninterrupted
    run_dir = tmp_path / "run"

    def stop(resume, moment):
        """Starts the run (resumed or not), waits for `moment` (a condition, given the process), sends
        SIGTERM, and checks the one line and the exit within 10 s; the checkpoint's record."""
        process = start_cli(*args, "--run-dir", run_dir, *(["--resume"] if resume else []), env=env)
        condition = moment(process)
        wait_for(condition, condition.__doc__)
        process.send_signal(signal.SIGTERM)
        sent = time.time()
        _, stderr = process.communicate(timeout=60)
        assert time.time() - sent < 10
        assert process.returncode == 128 + signal.SIGTERM
        line = one_line(stderr, "kerasrnn: stopped by SIGTERM; the checkpoint at step")
        assert f"continue with kerasrnn train --run-dir {run_dir} --resume" in line
        assert not temp_files(run_dir)
        return record(run_dir)

    # 1. mid-pass, between two validations: once the second Keras epoch (chunk) has begun
    last = stop(False, lambda process: chunk_began(process, 2))
    assert "val_loss" not in last and 0 < last["batch"] < STEPS and last["keras_epoch"] == 1, last
    assert record(run_dir, "best")["step"] == STEPS

    # 2. mid-pass again, in the resumed run's second fit (the first fit trains the rest of the chunk)
    last = stop(True, lambda process: chunk_began(process, 4))
    assert "val_loss" not in last and 0 < last["batch"] < STEPS and last["keras_epoch"] == 3, last

    # 3. during validation: the checkpoint is that validation's
    last = stop(True, lambda process: validating(run_dir))
    assert last["step"] == 4 * STEPS and last["batch"] == STEPS and "val_loss" in last, last

    # 4. while a checkpoint is being written
    last = stop(True, lambda process: writing(run_dir))
    assert last["step"] == 5 * STEPS and "val_loss" in last, last

    # 5. a second SIGTERM while the first one's checkpoint is written: out at once, the previous one kept
    before = {name: digest(run_dir / name) for name in ("last.keras", "checkpoint.json", "history.csv")}

    def first_sigterm_then_writing(process):
        wait_for(chunk_began(process, 6), "Keras epoch 6")  # the first of this run
        process.send_signal(signal.SIGTERM)
        return writing(run_dir)
    last = stop(True, first_sigterm_then_writing)
    assert last["step"] == 5 * STEPS and {name: digest(run_dir / name) for name in before} == before

    resumed = run_cli(*args, "--run-dir", run_dir, "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(run_dir, reference)
    history = [line.split(",") for line in open(run_dir / "history.csv").read().split()[1:]]
    assert [int(row[4]) for row in history] == [STEPS * (k + 1) for k in range(CHUNKS)]


def test_sigkill_at_three_moments_then_resume_trains_as_an_uninterrupted_run(uninterrupted, tmp_path):
    """SIGKILL mid-pass, during validation and while a checkpoint is written: each time every file is whole
    and the last complete checkpoint is a validation's; --resume (which removes the temporaries left) ends
    with every weight and optimizer variable of the run left alone."""
    args, env, reference = uninterrupted
    run_dir = tmp_path / "run"
    moments = [lambda process: chunk_began(process, 2), lambda process: validating(run_dir),
               lambda process: writing(run_dir)]
    for number, moment in enumerate(moments):
        process = start_cli(*args, "--run-dir", run_dir, *(["--resume"] if number else []), env=env)
        condition = moment(process)
        wait_for(condition, condition.__doc__)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        last = record(run_dir)
        assert "val_loss" in last and last["step"] % STEPS == 0, last
        for name in ("best.keras", "last.keras"):
            weights(run_dir, name)
        assert all(len(row.split(",")) == 6 for row in open(run_dir / "history.csv").read().split())
    resumed = run_cli(*args, "--run-dir", run_dir, "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert not temp_files(run_dir)
    assert_same_weights(run_dir, reference)


@contextlib.contextmanager
def stop_signals_after_a_first_sigterm():
    """A StopSignals block that has had its first SIGTERM; it yields a function that sends the second one
    inside a garbage collector callback, where the handler's exception cannot propagate (JAX installs one)."""
    from kerasrnn.signals import StopSignals

    def callback(phase, info):
        if phase == "start":
            signal.raise_signal(signal.SIGTERM)
            sum(range(1000))  # bytecode after the signal: its handler runs here, inside the callback

    def second_sigterm_inside_a_gc_callback():
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)

    with StopSignals() as signals:
        signals.signum = signal.SIGTERM
        yield second_sigterm_inside_a_gc_callback


def test_a_second_signal_inside_a_garbage_collector_callback_still_stops_at_once(capfd):
    """The second signal's Stopped must still reach the training loop, silently."""
    from kerasrnn.signals import Stopped

    with pytest.raises(Stopped) as stopped, stop_signals_after_a_first_sigterm() as second_sigterm:
        second_sigterm()
        deadline = time.time() + 5
        while time.time() < deadline:
            time.sleep(0.001)
    assert stopped.value.at_once and stopped.value.signum == signal.SIGTERM
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_swallowed_second_signal_still_abandons_the_write_under_way(tmp_path, capfd):
    """The same, during a checkpoint's write: its files are not renamed into place, the old ones stay."""
    from kerasrnn.files import Writes
    from kerasrnn.signals import Stopped

    target = tmp_path / "checkpoint.json"
    target.write_text("old\n")
    with pytest.raises(Stopped) as stopped, stop_signals_after_a_first_sigterm() as second_sigterm:
        with Writes() as writes:
            writes.text(target, "new\n")
            second_sigterm()
    assert stopped.value.at_once and target.read_text() == "old\n" and os.listdir(tmp_path) == ["checkpoint.json"]
    time.sleep(0.1)  # the signal sent again finds the block ended: nothing happens
    assert "Exception ignored" not in capfd.readouterr().err
