"""Many samples at once: a batch of N streams gives, stream for stream, what N single runs with the stream
seeds give (Keras at batch N, the edge batch models on TFLite fp32/int8 and ONNX, a bundle without them);
--until cuts each stream at its delimiter, --novel / --novel-against drop samples found in a text."""
import io
import os

import pytest

from conftest import run_cli
from kerasrnn import corpus
from kerasrnn.run import load_config
from kerasrnn.sample import sample, sample_many
from kerasrnn_edge import cli
from kerasrnn_edge.errors import UserError
from kerasrnn_edge.manifest import read_manifest
from kerasrnn_edge.samples import parse_until
from kerasrnn_edge.sampling import stream_seed
from test_export import exported_run

SETTINGS = dict(prime="ROMEO:", length=60, temperature=0.9)


@pytest.fixture(scope="module")
def run_and_bundles(tmp_path_factory):
    """(run_dir, bundle without batch models, bundle with TFLite batch 3 and the ONNX batch graph)."""
    from kerasrnn.export import export_bundle
    run_dir, bundle_dir = exported_run(tmp_path_factory)
    batch_dir = os.path.join(os.path.dirname(bundle_dir), "bundle-b3")
    if not os.path.exists(os.path.join(batch_dir, "manifest.json")):
        export_bundle(run_dir, batch_dir, batch=3)
    return run_dir, bundle_dir, batch_dir


def keras_many(run_dir, **options):
    out, err = io.StringIO(), io.StringIO()
    sample_many(run_dir, **{**SETTINGS, **options}, out=out, err=err)
    return out.getvalue(), err.getvalue()


def edge(capsys, *args):
    assert cli.main(["sample", *map(str, args)]) == 0
    return capsys.readouterr().out


def test_seed_rule():
    assert stream_seed(7, 0) == 7 and stream_seed(2**64 - 1, 0) == 2**64 - 1
    assert len({stream_seed(7, i) for i in range(1000)}) == 1000
    assert stream_seed(2**64 - 1, 2**70) < 2**64  # any i, modulo 2^64


def test_keras_batch_is_four_single_runs(run_and_bundles):
    run_dir, _, _ = run_and_bundles
    singles = []
    for i in range(4):
        out = io.StringIO()
        sample(run_dir, **SETTINGS, seed=stream_seed(5, i), out=out)
        singles.append(out.getvalue())
    many, _ = keras_many(run_dir, seed=5, num_samples=4)
    assert many == "\n".join(singles)  # each "ROMEO:...\n", an empty line between
    assert len(set(singles)) == 4


def test_edge_batch_is_four_single_runs(run_and_bundles, capsys):
    run_dir, bundle_dir, batch_dir = run_and_bundles
    expected, _ = keras_many(run_dir, seed=5, num_samples=4)
    options = ["--prime", "ROMEO:", "--length", "60", "--temperature", "0.9"]
    for bundle, runtime in [(batch_dir, "ai-edge-litert"), (batch_dir, "onnxruntime"), (bundle_dir, "onnxruntime")]:
        assert edge(capsys, bundle, *options, "--seed", "5", "--num-samples", "4", "--runtime", runtime) == expected
    singles = [edge(capsys, bundle_dir, *options, "--seed", stream_seed(5, i), "--precision", "int8")
               for i in range(4)]  # int8: its own text; batch 3 runs the four as 3 + 1 padded
    assert edge(capsys, batch_dir, *options, "--seed", "5", "--num-samples", "4", "--precision", "int8",
                "--runtime", "ai-edge-litert") == "\n".join(singles)


def test_batch_manifest(run_and_bundles):
    _, bundle_dir, batch_dir = run_and_bundles
    manifest, plain = read_manifest(batch_dir), read_manifest(bundle_dir)
    assert manifest.files == plain.files and plain.batch_files == []
    hidden, size = manifest.state[0]["shape"][1], manifest.vocab.size
    assert [(f["path"], f["batch"], f["signature"], f["inputs"]["token"]["shape"], f["outputs"]["logits"]["shape"])
            for f in manifest.batch_files] == [
        ("step_b3_fp32.tflite", 3, "step", [3], [3, size]), ("step_b3_int8.tflite", 3, "step", [3], [3, size]),
        ("step_batch.onnx", -1, "steps", [-1, -1], [-1, size])]
    for entry in manifest.batch_files:
        assert entry["inputs"]["layer0_h"] == {"shape": [entry["batch"], hidden], "dtype": "float32"}
        manifest.verified_path(entry)


def single_texts(run_dir, options, seed, n):
    """The texts of n single runs (kerasrnn sample) with the stream seeds of `seed`."""
    texts = []
    for i in range(n):
        out = io.StringIO()
        sample(run_dir, **options, seed=stream_seed(seed, i), out=out)
        texts.append(out.getvalue()[:-1])
    return texts


UNTIL = dict(prime="", length=80, temperature=1.0, seed=2, num_samples=8, until="\n")


def test_until_cuts_each_stream_at_its_delimiter(run_and_bundles):
    run_dir, _, _ = run_and_bundles
    many, _ = keras_many(run_dir, **UNTIL)
    expected = [text.split("\n")[0] for text in single_texts(run_dir, dict(prime="", length=80), 2, 8)]
    assert many == "".join(line + "\n" for line in expected)
    assert any(len(line) < 80 for line in expected)  # some stopped at a newline, before the cap


def test_novel_keeps_samples_not_found_in_the_training_text(run_and_bundles):
    run_dir, _, _ = run_and_bundles
    every, _ = keras_many(run_dir, **UNTIL)
    novel, err = keras_many(run_dir, **UNTIL, novel=True)
    path = corpus.source(load_config(run_dir)).path
    with open(path, encoding="utf-8") as f:
        lines = set(f.read().split("\n"))
    kept = [s for s in every.split("\n")[:-1] if s not in lines]
    assert novel == "".join(s + "\n" for s in kept)
    assert err == f"kerasrnn: {len(kept)} of 8 samples are novel (not found in {path})\n"
    result = run_cli("sample", run_dir, "--num-samples", "8", "--until", "\\n", "--length", "80", "--seed", "2",
                     "--novel")  # the escape as a shell passes it
    assert result.returncode == 0 and (result.stdout, result.stderr) == (novel, err), result.stderr


def test_novel_against_a_names_file(run_and_bundles, capsys, tmp_path):
    _, bundle_dir, _ = run_and_bundles
    options = [bundle_dir, "--length", "80", "--seed", "2", "--num-samples", "8", "--until", "\\n"]
    samples = edge(capsys, *options).split("\n")[:-1]
    names = tmp_path / "names.txt"
    names.write_text(f"Mary\n{samples[1]}\nJohn\n{samples[4]}\n", encoding="utf-8")
    kept = [s for s in samples if s not in ("Mary", samples[1], "John", samples[4])]
    assert cli.main(["sample", *options, "--novel-against", str(names)]) == 0
    out, err = capsys.readouterr()
    assert out == "".join(s + "\n" for s in kept) and len(kept) < 8
    assert err == f"kerasrnn-edge: {len(kept)} of 8 samples are novel (not found in {names})\n"


def test_parse_until():
    assert parse_until("\\n") == "\n" and parse_until("\\t--\\\\") == "\t--\\" and parse_until("END") == "END"
    with pytest.raises(UserError, match="unknown escape"):
        parse_until("\\q")


def test_web_site_of_a_batch_bundle_lists_one_stream_files(run_and_bundles, tmp_path):
    """The page runs one stream: its site copies step.onnx only, and its manifest lists no batch models."""
    from kerasrnn_export.web import write_site
    _, _, batch_dir = run_and_bundles
    doc = write_site(batch_dir, str(tmp_path / "site"))
    assert "batch_files" not in doc and read_manifest(str(tmp_path / "site")).batch_files == []
