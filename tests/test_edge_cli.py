"""kerasrnn-edge sample on bad input: one line on stderr, exit code 2, no traceback (real files, subprocess)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from kerasrnn_edge.runtimes import installed_version
from test_export import exported_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def bundle(tmp_path_factory, tmp_path):
    """A fresh copy of a real bundle, for each test to break."""
    _, bundle_dir = exported_run(tmp_path_factory)
    return shutil.copytree(bundle_dir, tmp_path / "bundle")


def edge(*args):
    env = {**os.environ, "PYTHONPATH": os.path.join(REPO, "export")}
    return subprocess.run([sys.executable, "-m", "kerasrnn_edge.cli", "sample", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kerasrnn-edge: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def edit_manifest(bundle, edit):
    path = bundle / "manifest.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def test_good_bundle_samples(bundle):
    result = edge(bundle, "--prime", "ROMEO:", "--length", "50", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:") and len(result.stdout) == len("ROMEO:") + 50 + 1


def test_missing_bundle(tmp_path):
    assert_one_line_error(edge(tmp_path / "nowhere"), "does not exist")


def test_missing_manifest(bundle):
    (bundle / "manifest.json").unlink()
    assert_one_line_error(edge(bundle), "manifest.json is missing")


def test_missing_model_file(bundle):
    (bundle / "step_int8.tflite").unlink()
    assert_one_line_error(edge(bundle), "step_int8.tflite is missing", "export it again")


def test_truncated_model_file(bundle):
    data = (bundle / "step_fp32.tflite").read_bytes()
    (bundle / "step_fp32.tflite").write_bytes(data[:len(data) // 2])
    assert_one_line_error(edge(bundle), "step_fp32.tflite has", "bytes")


def test_sha256_mismatch(bundle):
    data = bytearray((bundle / "step_fp32.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "step_fp32.tflite").write_bytes(bytes(data))
    assert_one_line_error(edge(bundle, "--runtime", "ai-edge-litert"), "sha256", "corrupt")


def test_unknown_format_version(bundle):
    edit_manifest(bundle, lambda doc: doc.update(format_version=2))
    assert_one_line_error(edge(bundle), "format version 2", "upgrade kerasrnn-edge")


def test_contract_1_bundle_is_refused(bundle):
    def to_contract_1(doc):
        doc.update(sampling_contract=1)
        del doc["start"]
    edit_manifest(bundle, to_contract_1)
    assert_one_line_error(edge(bundle), "sampling contract 1", "export the bundle again")


@pytest.mark.parametrize("edit, fragment", [
    (lambda doc: doc.pop("start"), "'start'"),
    (lambda doc: doc["start"].update(token=10_000), "start token 10000"),
    (lambda doc: doc["start"]["state"].pop("layer0_c"), "'layer0_c'"),
    (lambda doc: doc["start"]["state"]["layer1_h"].pop(), "layer1_h"),
    (lambda doc: doc["start"]["state"]["layer0_h"].__setitem__(0, 1e999), "layer0_h is not finite"),
], ids=["missing", "token", "state-name", "state-length", "not-finite"])
def test_malformed_start_is_refused(bundle, edit, fragment):
    edit_manifest(bundle, edit)
    assert_one_line_error(edge(bundle), "malformed", fragment)


@pytest.mark.skipif(installed_version("tflite-runtime") is not None, reason="tflite-runtime is installed here")
def test_runtime_not_installed(bundle):
    assert_one_line_error(edge(bundle, "--runtime", "tflite-runtime"), "pip install tflite-runtime")


def test_file_needs_newer_runtime(bundle):
    def require_future_litert(doc):
        for entry in doc["files"]:
            entry["min_runtime"]["ai-edge-litert"] = "99.0"
    edit_manifest(bundle, require_future_litert)
    assert_one_line_error(edge(bundle, "--runtime", "ai-edge-litert"), "needs ai-edge-litert >= 99.0",
                          f"installed: {installed_version('ai-edge-litert')}", "pip install -U ai-edge-litert")


def test_prime_outside_vocabulary(bundle):
    assert_one_line_error(edge(bundle, "--prime", "naïve €"), "outside the vocabulary", "'€'")


def test_int8_on_onnxruntime(bundle):
    assert_one_line_error(edge(bundle, "--runtime", "onnxruntime", "--precision", "int8"), "no int8 onnx file")


def test_float_bundle_on_tflite_micro(bundle):
    """TFLite Micro runs full-integer files only (kerasrnn export --micro): a float bundle's are not for it."""
    assert_one_line_error(edge(bundle, "--runtime", "tflite-micro"), "cannot run on tflite-micro")


def rename_model_file(bundle, name):
    """Points the manifest's fp32 TFLite entries at `name` instead of step_fp32.tflite."""
    def edit(doc):
        for entry in doc["files"]:
            if entry["path"] == "step_fp32.tflite":
                entry["path"] = name
    edit_manifest(bundle, edit)


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_paths_leading_out_of_the_bundle_are_refused(bundle, tmp_path, where):
    """The file outside is the bundle's own model (its sha256 matches): only its place is wrong."""
    outside = tmp_path / "step_fp32.tflite"
    shutil.move(bundle / "step_fp32.tflite", outside)
    if where == "absolute":
        rename_model_file(bundle, str(outside))
    elif where == "dotdot":
        rename_model_file(bundle, "../step_fp32.tflite")
    else:
        os.symlink(outside, bundle / "step_fp32.tflite")
    assert_one_line_error(edge(bundle, "--runtime", "ai-edge-litert"), "outside the bundle folder")


def test_bad_many_samples_options(bundle, tmp_path):
    assert_one_line_error(edge(bundle, "--num-samples", "0"), "--num-samples must be >= 1")
    assert_one_line_error(edge(bundle, "--until", "\\q"), "unknown escape (\\q)", "use \\n")
    assert_one_line_error(edge(bundle, "--num-samples", "3", "--novel-against", tmp_path / "nowhere.txt"),
                          "cannot read the training text", "nowhere.txt")


def test_batch_files_are_checked(tmp_path, tmp_path_factory):
    """A bundle whose batch model is missing is refused like one whose step model is."""
    from kerasrnn.export import export_bundle
    run_dir, _ = exported_run(tmp_path_factory)
    bundle = tmp_path / "bundle"
    export_bundle(run_dir, str(bundle), batch=2)
    (bundle / "step_b2_int8.tflite").unlink()
    assert_one_line_error(edge(bundle), "step_b2_int8.tflite is missing", "export it again")
