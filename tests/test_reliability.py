"""docs/reliability.md, shown with real processes, real signals and a real small disk: a full disk, a
run directory used twice, preemption (SIGTERM) at three moments, resumed exactly."""
import contextlib
import gc
import hashlib
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


def start_cli(*args):
    """`python -m kerasrnn ARGS` in the background, its output unbuffered (lines arrive as printed)."""
    return subprocess.Popen([sys.executable, "-m", "kerasrnn", *map(str, args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


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


def weights(run_dir):
    import keras

    from kerasrnn.run import load_model
    model = load_model(os.path.join(run_dir, "last.keras"))
    return [keras.ops.convert_to_numpy(v.value) for v in model.weights + model.optimizer.variables]


def assert_same_weights(run_dir, reference):
    got, want = weights(run_dir), weights(reference)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-5)


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


def test_sigterm_at_three_moments_then_resume_trains_as_an_uninterrupted_run(tmp_path):
    """SIGTERM mid-batch, during validation and while a checkpoint is written, each followed by --resume,
    ends with the weights (and optimizer state) of a run that was never stopped; so does a second SIGTERM
    during the checkpoint the first one asked for."""
    text = shakespeare_slice(tmp_path, 40_000)
    run_dir, reference = tmp_path / "run", tmp_path / "reference"
    args = ["train", "--text", text, "--max-epochs", "1", "--eval-every", "150", "--dropout", "0.1", *TINY]
    straight = run_cli(*args, "--run-dir", reference)
    assert straight.returncode == 0, straight.stderr
    steps = record(reference, "best")["batch"]  # per chunk (Keras epoch); 4 chunks

    def stop(process, moment):
        """Waits for `moment` (a condition on the process and the run directory), sends SIGTERM, and
        checks the one line and the exit within 10 s."""
        wait_for(moment, moment.__doc__)
        process.send_signal(signal.SIGTERM)
        sent = time.time()
        _, stderr = process.communicate(timeout=60)
        assert time.time() - sent < 10
        assert process.returncode == 128 + signal.SIGTERM
        line = one_line(stderr, "kerasrnn: stopped by SIGTERM; the checkpoint at step")
        assert f"continue with kerasrnn train --run-dir {run_dir} --resume" in line
        assert not temp_files(run_dir)
        return record(run_dir)

    # 1. mid-batch: once the second Keras epoch (chunk) has begun
    process = start_cli(*args, "--run-dir", run_dir)

    def second_chunk_began():
        """the second chunk"""
        return process.stdout.readline().startswith("Epoch 2/")
    last = stop(process, second_chunk_began)
    assert "val_loss" not in last and 0 < last["batch"] < steps and last["keras_epoch"] == 1, last
    assert record(run_dir, "best")["step"] == steps

    # 2. during validation: TensorBoard opens its validation log when the process first validates
    validation_logs = run_dir / "logs" / "validation"
    logs_before = set(os.listdir(validation_logs))
    process = start_cli(*args, "--run-dir", run_dir, "--resume")

    def validating():
        """validation"""
        return set(os.listdir(validation_logs)) != logs_before
    last = stop(process, validating)
    assert last["step"] == 2 * steps and last["batch"] == steps and "val_loss" in last, last  # that validation's

    # 3. while a checkpoint is being written (its temporary files exist)
    process = start_cli(*args, "--run-dir", run_dir, "--resume")

    def writing():
        """a checkpoint's temporary files"""
        return any(name.startswith((".best.keras.", ".last.keras.")) for name in temp_files(run_dir))
    last = stop(process, writing)
    assert last["step"] == 3 * steps and "val_loss" in last, last

    # and a second SIGTERM while the first one's checkpoint is written: out at once, the previous one kept
    before = {name: digest(run_dir / name) for name in ("last.keras", "checkpoint.json", "history.csv")}
    process = start_cli(*args, "--run-dir", run_dir, "--resume")

    def fourth_chunk_began():
        """the fourth chunk"""
        return process.stdout.readline().startswith("Epoch 4/")
    wait_for(fourth_chunk_began, fourth_chunk_began.__doc__)
    process.send_signal(signal.SIGTERM)
    last = stop(process, writing)
    assert last["step"] == 3 * steps and {name: digest(run_dir / name) for name in before} == before

    resumed = run_cli(*args, "--run-dir", run_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert record(run_dir)["step"] == record(reference)["step"]
    assert_same_weights(run_dir, reference)
    history = [line.split(",") for line in open(run_dir / "history.csv").read().split()[1:]]
    assert [int(row[4]) for row in history] == [steps, 2 * steps, 3 * steps, 4 * steps]


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
