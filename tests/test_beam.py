"""Beam search and stop strings (export/SPEC.md, "Beam search", "Stop strings").

Beam search against the exhaustive search on an 8-token LSTM with fixed (seeded) weights; the same beam text
from `kerasrnn sample --beam`, `kerasrnn-edge sample --beam` on LiteRT and ONNX Runtime, and the Java core
(which replays the logits the Python search recorded), for an LSTM and a GPT run; stop strings in every
sampler; bad options in one line, exit 2.
"""
import itertools
import json
import subprocess

import keras
import numpy as np
import pytest

from conftest import Recorder, run_cli, shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.models.recurrent import build_model
from kerasrnn.sample import step_model
from kerasrnn.train import train
from kerasrnn_edge import cli as edge_cli
from kerasrnn_edge.beam import beam_search, log_probs
from kerasrnn_edge.sampling import generate
from kerasrnn_edge.vocab import Vocab
from kerasrnn.export import export_bundle
from test_export import exported_run
from test_java_sampler import java_classes  # noqa: F401 (a fixture)

LENGTH = 4  # tokens the exhaustive search tries: 8^4 sequences


@pytest.fixture(scope="module")
def eight_token_lstm():
    """An LSTM over 8 tokens with seeded random weights, where greedy decoding (heff), a beam of 2 to 4 (heed)
    and the exhaustive search (hehe) each find another sequence; its vocabulary, and the log-probability of
    every sequence of LENGTH tokens after the start token, from one batch."""
    keras.utils.set_random_seed(45)
    vocab = Vocab("char", list("abcdefgh"))
    model = build_model(vocab.size, 1, None, cell="lstm", rnn_size=16, num_layers=1, embedding_size=8)
    for weight in model.weights:
        if weight.trainable:
            weight.assign(np.random.default_rng(len(weight.path) + 45).normal(0, 0.5, weight.shape))
    everything = np.array(list(itertools.product(range(vocab.size), repeat=LENGTH)), np.int32)
    steps = step_model(model, len(everything))
    steps.reset()
    logits = steps.feed(np.full((len(everything), 1), steps.start_token, np.int32))
    totals = np.zeros(len(everything))
    for n in range(LENGTH):
        totals += log_probs(logits)[np.arange(len(everything)), everything[:, n]]
        logits = steps.feed(everything[:, n:n + 1])
    return model, vocab, everything, totals


def test_a_beam_as_wide_as_the_tree_finds_the_exhaustive_searchs_best(eight_token_lstm):
    model, vocab, everything, totals = eight_token_lstm
    width = vocab.size ** (LENGTH - 1)
    best = beam_search(step_model(model, width), vocab, "", LENGTH, width)[0]
    assert best.text == "hehe"
    assert best.ids == everything[np.argmax(totals)].tolist()
    assert best.log_prob == pytest.approx(totals.max(), abs=1e-5)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8, 16, 64])
def test_every_beam_scores_at_least_greedy_decoding(eight_token_lstm, width):
    model, vocab, everything, totals = eight_token_lstm
    greedy = "".join(generate(step_model(model), vocab, "", LENGTH, argmax=True))
    greedy_score = totals[everything.tolist().index(vocab.encode(greedy).tolist())]
    beams = beam_search(step_model(model, width), vocab, "", LENGTH, width)
    assert beams[0].log_prob >= greedy_score - 1e-5  # batch 4096 and batch N logits agree to float rounding
    assert [b.score for b in beams] == sorted((b.score for b in beams), reverse=True)
    assert len({tuple(b.ids) for b in beams}) == len(beams) == min(width, len(everything))
    if width == 1:  # one beam is greedy decoding, ties and all
        assert beams[0].text == greedy
    else:
        assert beams[0].log_prob > greedy_score + 0.01


@pytest.fixture(scope="module", params=["lstm", "gpt"])
def run_and_bundle(request, tmp_path_factory):
    """A tiny run of each family (the LSTM: test_export's, trained once per session) and its bundle with batch
    models of 4 rows (TFLite; ONNX: an LSTM's batch graph, a GPT's batch-1 graph run row by row)."""
    base = tmp_path_factory.mktemp(request.param)
    bundle_dir = str(base / "bundle")
    if request.param == "lstm":
        run_dir, _ = exported_run(tmp_path_factory)
    else:
        run_dir = str(base / "run")
        train(Config(text=shakespeare_slice(base, 20_000), model="gpt", num_layers=2, num_heads=4, embedding_size=32,
                     context=16, seq_length=16, batch_size=8, max_epochs=1, eval_every=50, seed=1), run_dir, verbose=0)
    export_bundle(run_dir, bundle_dir, batch=4)
    return run_dir, bundle_dir


def edge(capsys, bundle_dir, runtime, *args):
    assert edge_cli.main(["sample", bundle_dir, "--runtime", runtime, *map(str, args)]) == 0
    return capsys.readouterr().out


class BatchRecorder:
    """A batched step model that records its calls, one token column at a time, for the Java core to replay
    (GenerateFromLogits.BatchRecording)."""

    def __init__(self, model):
        self.model, self.batch, self.start_token = model, model.batch, model.start_token

    def reset(self):
        self.model.reset()
        self.calls, self.rows = [], []

    def select(self, rows):
        self.calls.append({"select": [int(r) for r in rows]})
        self.model.select(rows)

    def feed(self, ids):
        for column in np.asarray(ids, np.int32).T:
            self.calls.append({"feed": column.tolist()})
            self.rows.append(self.model.feed(column[:, None]))
        return self.rows[-1]


def java_text(java_classes, tmp_path, spec, rows):
    (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    np.concatenate(rows).astype("<f4").tofile(tmp_path / "logits.bin")
    done = subprocess.run(["java", "-cp", str(java_classes), "org.kerasrnn.edge.GenerateFromLogits",
                           str(tmp_path / "spec.json"), str(tmp_path / "logits.bin")], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode("utf-8")


def java_beam(java_classes, tmp_path, bundle_dir, prime, length, width, stop=()):
    """The Java core's beam text over the logits LiteRT's batch model gave the Python search."""
    from kerasrnn_edge.manifest import read_manifest
    from kerasrnn_edge.runtimes import open_step_model
    manifest = read_manifest(bundle_dir)
    recorder = BatchRecorder(open_step_model(manifest, "ai-edge-litert", batch=width))
    python = beam_search(recorder, manifest.vocab, prime, length, width, 0.0, stop)[0].text
    spec = dict(vocab=manifest.vocab.to_json(), start_token=recorder.start_token, prime=prime, length=length,
                stop=list(stop), beam=dict(width=width, batch=recorder.batch, length_penalty=0.0, calls=recorder.calls))
    return python, java_text(java_classes, tmp_path, spec, [r.reshape(-1, r.shape[-1]) for r in recorder.rows])


def java_sample(java_classes, tmp_path, bundle_dir, prime, length, seed, temperature, stop):
    """The Java core's sampled text over the logits LiteRT gave the Python sampler."""
    from kerasrnn_edge.manifest import read_manifest
    from kerasrnn_edge.runtimes import open_step_model
    manifest = read_manifest(bundle_dir)
    recorder = Recorder(open_step_model(manifest, "ai-edge-litert"))
    python = "".join(generate(recorder, manifest.vocab, prime, length, temperature, seed=seed, stop=stop))
    spec = dict(vocab=manifest.vocab.to_json(), start_token=recorder.start_token, fed=recorder.fed, prime=prime,
                length=length, temperature=temperature, top_k=0, top_p=1.0, argmax=False, seed=str(seed), stop=stop)
    return python, java_text(java_classes, tmp_path, spec, [np.stack(recorder.rows)])


BEAM = ["--prime", "ROMEO:", "--length", "60", "--beam", "4"]


def test_same_beam_text_from_every_sampler(run_and_bundle, capsys, java_classes, tmp_path):
    run_dir, bundle_dir = run_and_bundle
    done = run_cli("sample", run_dir, *BEAM)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 60 + 1
    for runtime in ("ai-edge-litert", "onnxruntime"):
        assert edge(capsys, bundle_dir, runtime, *BEAM) == text, runtime
    python, java = java_beam(java_classes, tmp_path, bundle_dir, "ROMEO:", 60, 4)
    assert "ROMEO:" + python + "\n" == "ROMEO:" + java + "\n" == text
    shown = edge(capsys, bundle_dir, "onnxruntime", *BEAM, "--show-beams").split("# beam ")[1:]
    assert len(shown) == 4 and shown[0].split("\n", 1)[1] == text


def test_stop_ends_sampling_and_beam_search_in_every_sampler(run_and_bundle, capsys, java_classes, tmp_path):
    """A stop string taken from each text's middle: the same text up to it, the stop string not printed."""
    run_dir, bundle_dir = run_and_bundle
    sampled = ["--prime", "ROMEO:", "--length", "80", "--seed", "3", "--temperature", "0.8"]
    full = edge(capsys, bundle_dir, "onnxruntime", *sampled)[len("ROMEO:"):-1]
    beamed = edge(capsys, bundle_dir, "onnxruntime", *BEAM)[len("ROMEO:"):-1]
    for args, text in [(sampled, full), (BEAM, beamed)]:
        stop = text[30:33]
        want = "ROMEO:" + text[:text.find(stop)] + "\n"
        assert len(want) < len(text)
        done = run_cli("sample", run_dir, *args, "--stop", stop, "--stop", "\\t\\t")
        assert done.returncode == 0, done.stderr
        assert done.stdout == want
        for runtime in ("ai-edge-litert", "onnxruntime"):
            assert edge(capsys, bundle_dir, runtime, *args, "--stop", stop) == want, runtime
        if args is BEAM:
            python, java = java_beam(java_classes, tmp_path, bundle_dir, "ROMEO:", 60, 4, [stop])
        else:
            python, java = java_sample(java_classes, tmp_path, bundle_dir, "ROMEO:", 80, 3, 0.8, [stop])
        assert "ROMEO:" + python + "\n" == "ROMEO:" + java + "\n" == want


@pytest.mark.parametrize("args,message", [
    (["--beam", "0"], "the beam width must be >= 1"),
    (["--beam", "4", "--temperature", "0.8"], "drop --temperature"),
    (["--beam", "4", "--top-k", "5"], "drop --top-k"),
    (["--beam", "4", "--top-p", "0.9"], "drop --top-p"),
    (["--stop", ""], "a stop string must not be empty"),
], ids=["beam-0", "temperature", "top-k", "top-p", "empty-stop"])
def test_bad_beam_and_stop_options_are_one_line_exit_2(run_and_bundle, capsys, args, message):
    run_dir, bundle_dir = run_and_bundle
    assert edge_cli.main(["sample", bundle_dir, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kerasrnn-edge: error: ") and message in err and len(err.strip().splitlines()) == 1, err
    from kerasrnn import cli
    with pytest.raises(SystemExit) as exit_code:
        cli.main(["sample", run_dir, *args])
    assert exit_code.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("kerasrnn: error: ") and message in err and len(err.strip().splitlines()) == 1, err


def test_the_python_api_takes_beam_and_stop(run_and_bundle):
    from kerasrnn import KerasrnnError, Run
    run_dir, _ = run_and_bundle
    run = Run(run_dir)
    best = run.sample("ROMEO:", 30, beam=2)
    assert best == "ROMEO:" + beam_search(step_model(run.model, 2), run.vocab, "ROMEO:", 30, 2)[0].text
    sampled = run.sample("ROMEO:", 30, seed=1)
    assert run.sample("ROMEO:", 30, seed=1, stop=[sampled[20:22]]) == sampled[:sampled.find(sampled[20:22], 6)]
    with pytest.raises(KerasrnnError, match="drop temperature"):
        run.sample("ROMEO:", 30, beam=2, temperature=0.5)


@pytest.mark.parametrize("run_and_bundle", ["lstm"], indirect=True)  # the SavedModel serves recurrent runs only
def test_the_saved_models_generate_stop_cuts_where_the_samplers_stop(run_and_bundle, capsys, tmp_path):
    """generate_stop: the text kerasrnn-edge (so kerasrnn sample) writes with the same stop strings, for stop
    strings that end the text, overlap (the one completed first wins, though another starts earlier) or never
    occur; serving_default unchanged."""
    import tensorflow as tf

    from kerasrnn.export import export_serving
    run_dir, bundle_dir = run_and_bundle
    saved = tf.saved_model.load(export_serving(run_dir, str(tmp_path)))
    request = dict(prompt=tf.constant(["ROMEO:", "ROMEO:"]), max_length=tf.constant(80),
                   temperature=tf.constant(0.8, tf.float64), top_k=tf.constant(0), top_p=tf.constant(1.0, tf.float64),
                   argmax=tf.constant(False), seed=tf.constant([3, 4], tf.uint64))
    full = [t.decode() for t in saved.signatures["serving_default"](**request)["text"].numpy()]
    assert edge(capsys, bundle_dir, "onnxruntime", "--prime", "ROMEO:", "--length", "80", "--seed", "3",
                "--temperature", "0.8") == "ROMEO:" + full[0] + "\n"
    text = full[0]
    for stop in [[text[40:43]], [text[38:45], text[41:42]], [text[10:12], "\t\t"], ["\t\t"]]:
        out = saved.signatures["generate_stop"](**request, stop=tf.constant(stop))
        want = edge(capsys, bundle_dir, "onnxruntime", "--prime", "ROMEO:", "--length", "80", "--seed", "3",
                    "--temperature", "0.8", *[a for s in stop for a in ("--stop", s.replace("\t", "\\t"))])
        assert "ROMEO:" + out["text"].numpy()[0].decode() + "\n" == want, stop
        assert out["ids"].numpy().tolist() == saved.signatures["serving_default"](**request)["ids"].numpy().tolist()
