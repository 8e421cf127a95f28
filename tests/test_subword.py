"""Subword tokens (`--tokens bpe`): byte-exact round trips in Python, JavaScript and Java on real corpora;
one bpe run sampled by every sampler (Keras, LiteRT, ONNX Runtime, the SavedModel's graph, the JavaScript
contract, the Java core) writing the same text; resume and fine-tuning keep the vocabulary; losses in bits
per character; the tokenizer of a 50 MB corpus learned in bounded memory."""
import csv
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SHAKESPEARE, Recorder, run_cli
from test_java_sampler import java_classes  # noqa: F401 (the fixture: the core compiled once)
from test_web import WEB, node_or_skip

pytest.importorskip("sentencepiece", reason="--tokens bpe needs sentencepiece (pip install \"kerasrnn[subword]\")")

from kerasrnn import corpus  # noqa: E402
from kerasrnn.config import Config  # noqa: E402

VOCAB_SIZE = 600
SLICE = 1_000_000  # bytes of the stdlib and Linux corpora (whole lines)


def unicode_text(seed, lines=3000):
    """Random lines of every kind of text: ASCII words, CJK, emoji, combining marks, right-to-left
    script, tabs, CRLF and LF line ends, literal U+2581 and SentencePiece's piece names, a NUL."""
    rng = np.random.default_rng(seed)
    kinds = [lambda: "".join(rng.choice(list("etaoinshrdlu"), rng.integers(1, 9))),
             lambda: "".join(chr(c) for c in rng.integers(0x4E00, 0x9FFF, rng.integers(1, 4))),
             lambda: "".join(chr(c) for c in rng.integers(0x1F300, 0x1F64F, rng.integers(1, 3))),
             lambda: "e\u0301" + chr(int(rng.integers(0x300, 0x36F))) + "n\u0303",
             lambda: "مرحبا", lambda: "\t", lambda: "\u2581", lambda: "<0x41>", lambda: "<unk>", lambda: "\x00",
             lambda: "\ufeff", lambda: "  "]
    out = []
    for _ in range(lines):
        words = [kinds[int(rng.integers(len(kinds)))]() for _ in range(rng.integers(0, 12))]
        out.append(" ".join(words) + ("\r\n" if rng.random() < 0.3 else "\n"))
    return "".join(out)


def head_lines(data, size):
    return data[:data.rfind(b"\n", 0, size) + 1]


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """name -> path of a UTF-8 text: tiny-shakespeare's fixture, 1 MB of Python's standard library and of
    Linux's C (where the kernel source is installed), random Unicode text."""
    base = tmp_path_factory.mktemp("texts")
    found = {"shakespeare": SHAKESPEARE}
    with open(corpus.python_stdlib_corpus().path, "rb") as f:
        (base / "stdlib.py").write_bytes(head_lines(f.read(3 * SLICE), SLICE))
    found["python-stdlib"] = str(base / "stdlib.py")
    if os.path.exists(corpus.linux_source_path()):
        data = b""
        for _, chunks in corpus.linux_corpus().members():
            data += b"".join(chunks)
            if len(data) > SLICE:
                break
        (base / "linux.c").write_bytes(head_lines(data, SLICE))
        found["linux"] = str(base / "linux.c")
    (base / "unicode.txt").write_bytes(unicode_text(5).encode())
    found["unicode"] = str(base / "unicode.txt")
    return found


def js_round_trip(vocab, path, tmp_path):
    """(ids, decoded text) of the file by export/web/contract.mjs."""
    (tmp_path / "vocab.json").write_text(json.dumps(vocab.to_json()), encoding="utf-8")
    script = ("import { readFileSync, writeFileSync } from 'node:fs'; import { Vocab } from './contract.mjs';"
              "const [vocabPath, textPath, outPath] = process.argv.slice(1);"
              "const vocab = new Vocab(JSON.parse(readFileSync(vocabPath, 'utf8')));"
              "const ids = vocab.encode(readFileSync(textPath, 'utf8')); const decode = vocab.decoder();"
              "writeFileSync(outPath, ids.map(decode).join('')); console.log(JSON.stringify(ids));")
    done = subprocess.run(["node", "--input-type=module", "-e", script, str(tmp_path / "vocab.json"), path,
                           str(tmp_path / "js.out")], cwd=WEB, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), (tmp_path / "js.out").read_bytes()


def java_round_trip(classes, vocab, path, tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps(vocab.to_json()), encoding="utf-8")
    done = subprocess.run(["java", "-cp", str(classes), "org.kerasrnn.edge.Tokenize", str(tmp_path / "vocab.json"),
                           path, str(tmp_path / "java.out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [int(line) for line in done.stdout.split()], (tmp_path / "java.out").read_bytes()


@pytest.mark.parametrize("name", ["shakespeare", "python-stdlib", "linux", "unicode"])
def test_round_trip_is_byte_exact_everywhere(texts, name, java_classes, tmp_path):  # noqa: F811
    """The ids training caches (SentencePiece's encoder) are the spec's (Python, JS, Java), and decode
    to the file byte for byte; the same for the unicode text under a vocabulary that lacks most of it."""
    if name not in texts:
        pytest.skip(f"the linux corpus reads {corpus.linux_source_path()}: apt-get install linux-source-6.1")
    node_or_skip()
    # the random text's thousands of CJK characters each take a piece: a vocabulary big enough for them
    vocab, ids = corpus.load_ids(texts[name], "bpe", vocab_size=6000 if name == "unicode" else VOCAB_SIZE)
    data = open(texts[name], "rb").read()
    assert len(ids) < len(data) / {"unicode": 1.2, "linux": 1.5}.get(name, 1.8)  # pieces, not bytes (C: 1.62)
    cases = [(vocab, texts[name], data, ids.tolist())]
    if name == "shakespeare":  # a vocabulary that lacks most of the unicode text: byte pieces
        unicode_data = open(texts["unicode"], "rb").read()
        cases.append((vocab, texts["unicode"], unicode_data, vocab.encode(unicode_data.decode()).tolist()))
    for vocab, path, data, expected in cases:
        assert b"".join(vocab.piece_bytes(i) for i in expected) == data
        assert vocab.encode(data.decode()).tolist() == expected
        assert vocab.decode(expected).encode() == data
        assert js_round_trip(vocab, path, tmp_path) == (expected, data)
        assert java_round_trip(java_classes, vocab, path, tmp_path) == (expected, data)


def test_a_literal_sentencepiece_space_stays_itself():
    """SentencePiece writes spaces as U+2581; ours are spaces, and U+2581 is a character like another."""
    vocab, _ = corpus.load_ids(SHAKESPEARE, "bpe", vocab_size=VOCAB_SIZE)
    assert " the" in vocab.pieces and not any("\u2581" in p for p in vocab.pieces if isinstance(p, str))
    text = "a\u2581b \u2581 \u2581\u2581"
    assert vocab.decode(vocab.encode(text)) == text


# One run, every sampler -------------------------------------------------------------------------------

PRIME = "ROMEO:\nWhat 😀 ▁ naïve"
SAMPLE = dict(temperature=0.8, top_k=40, seed=7, length=120)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from kerasrnn.train import train

    run_dir = str(tmp_path_factory.mktemp("bpe") / "run")
    config = Config(text=SHAKESPEARE, tokens="bpe", vocab_size=VOCAB_SIZE, rnn_size=48, num_layers=1,
                    embedding_size=16, batch_size=8, seq_length=32, max_epochs=2, eval_every=40, seed=1)
    train(config, run_dir, verbose=0)
    return run_dir


@pytest.fixture(scope="module")
def bundle(run, tmp_path_factory):
    from kerasrnn.export import export_bundle

    out = str(tmp_path_factory.mktemp("bpe-bundle") / "bundle")
    export_bundle(run, out)
    return out


def sample_args():
    return ["--prime", PRIME, "--seed", SAMPLE["seed"], "--temperature", SAMPLE["temperature"], "--top-k",
            SAMPLE["top_k"], "--length", SAMPLE["length"]]


def edge_text(bundle_dir, runtime):
    done = subprocess.run([sys.executable, "-m", "kerasrnn_edge.cli", "sample", bundle_dir, "--runtime", runtime,
                           *map(str, sample_args())], capture_output=True, text=True, encoding="utf-8",
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_sampler_writes_the_same_text(run, bundle, java_classes, tmp_path):  # noqa: F811
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (registers the SentencePiece ops the SavedModel runs)

    from kerasrnn_edge.manifest import read_manifest
    from kerasrnn_edge.runtimes import open_step_model
    from kerasrnn_edge.sampling import generate
    from kerasrnn.export import export_serving

    done = run_cli("sample", run, *sample_args())
    assert done.returncode == 0, done.stderr
    keras_text = done.stdout
    assert keras_text.startswith(PRIME) and len(keras_text) > len(PRIME) + SAMPLE["length"]  # pieces: > 1 char
    assert edge_text(bundle, "ai-edge-litert") == keras_text
    assert edge_text(bundle, "onnxruntime") == keras_text

    saved = tf.saved_model.load(export_serving(run, str(tmp_path / "serving")))
    out = saved.signatures["serving_default"](
        prompt=tf.constant([PRIME, PRIME]), max_length=tf.constant(SAMPLE["length"]),
        temperature=tf.constant(SAMPLE["temperature"], tf.float64), top_k=tf.constant(SAMPLE["top_k"]),
        top_p=tf.constant(1.0, tf.float64), argmax=tf.constant(False), seed=tf.constant(SAMPLE["seed"], tf.uint64))
    assert [PRIME + t.decode() for t in out["text"].numpy()] == [keras_text[:-1]] * 2

    # The JavaScript contract and the Java core over the logits the fp32 TFLite model gave along this text:
    # each must feed the same tokens (the prime's ids, then its own choices) to get the next row.
    manifest = read_manifest(bundle)
    recorder = Recorder(open_step_model(manifest, "ai-edge-litert"))
    settings = dict(temperature=SAMPLE["temperature"], top_k=SAMPLE["top_k"], seed=SAMPLE["seed"])
    assert PRIME + "".join(generate(recorder, manifest.vocab, PRIME, SAMPLE["length"], **settings)) + "\n" == keras_text
    rows = np.stack(recorder.rows).astype("<f4")
    spec = dict(vocab=manifest.vocab.to_json(), start_token=recorder.start_token, fed=recorder.fed, prime=PRIME,
                length=SAMPLE["length"], temperature=SAMPLE["temperature"], top_k=SAMPLE["top_k"], top_p=1.0,
                argmax=False, seed=str(SAMPLE["seed"]))
    (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    rows.tofile(tmp_path / "logits.bin")
    java = subprocess.run(["java", "-cp", str(java_classes), "org.kerasrnn.edge.GenerateFromLogits",
                           str(tmp_path / "spec.json"), str(tmp_path / "logits.bin")], capture_output=True, timeout=60)
    assert java.returncode == 0, java.stderr.decode()
    assert PRIME + java.stdout.decode() + "\n" == keras_text

    node_or_skip()
    script = ("import { readFileSync } from 'node:fs'; import { Vocab, generate } from './contract.mjs';"
              "const spec = JSON.parse(readFileSync(process.argv[1], 'utf8'));"
              "const data = readFileSync(process.argv[2]); const V = spec.vocab.size;"
              "const rows = new Float32Array(data.buffer, data.byteOffset, data.length / 4); let n = 0;"
              "const model = { startToken: spec.start_token, reset() { n = 0; }, async feed(ids) {"
              "  for (const t of ids) { if (spec.fed[n] !== t) throw new Error(`feed ${n}: ${t}`); n++; }"
              "  return rows.subarray((n - 1) * V, n * V); } };"
              "let text = ''; for await (const p of generate(model, new Vocab(spec.vocab), { prime: spec.prime,"
              "  length: spec.length, temperature: spec.temperature, topK: spec.top_k, seed: spec.seed })) text += p.text;"
              "process.stdout.write(text);")
    js = subprocess.run(["node", "--input-type=module", "-e", script, str(tmp_path / "spec.json"),
                         str(tmp_path / "logits.bin")], cwd=WEB, capture_output=True, timeout=60)
    assert js.returncode == 0, js.stderr.decode()
    assert PRIME + js.stdout.decode() + "\n" == keras_text


def test_many_samples_until_agree(run, bundle):
    args = ["--prime", "ROMEO:", "--seed", "3", "--length", "40", "--num-samples", "3", "--until", "\n"]
    keras = run_cli("sample", run, *args)
    assert keras.returncode == 0, keras.stderr
    edge = subprocess.run([sys.executable, "-m", "kerasrnn_edge.cli", "sample", bundle, *args], capture_output=True,
                          text=True, encoding="utf-8", timeout=120, cwd=REPO)
    assert edge.returncode == 0, edge.stderr
    assert edge.stdout == keras.stdout and keras.stdout.count("ROMEO:") == 3


def test_losses_in_bits_per_character(run):
    from kerasrnn import data
    from kerasrnn.run import load_vocab

    with open(os.path.join(run, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert rows and {"bpc", "val_bpc"} <= rows[0].keys()
    vocab = load_vocab(run)
    _, ids = corpus.load_ids(SHAKESPEARE, "bpe", vocab)
    val = data.stream_batches(ids, 8, 32, 0.9, 0.1)[1].tokens
    per_character = len(val) / vocab.characters(val)
    assert 0.2 < per_character < 0.6  # several characters a token
    for row in rows:
        assert float(row["val_bpc"]) == pytest.approx(float(row["val_loss"]) * per_character / math.log(2), rel=1e-5)


def test_resume_and_fine_tuning_keep_the_vocabulary(run, tmp_path, texts):
    from kerasrnn.run import load_checkpoints, load_vocab
    from kerasrnn.train import train

    resumed = str(tmp_path / "resumed")
    shutil.copytree(run, resumed)
    config = Config.from_json(json.load(open(os.path.join(run, "config.json"))))
    config.max_epochs = 3
    train(config, resumed, resume=True, verbose=0)
    assert load_checkpoints(resumed)["last"]["step"] > load_checkpoints(run)["last"]["step"]
    assert load_vocab(resumed) == load_vocab(run)

    tuned = str(tmp_path / "tuned")
    config = Config(text=texts["unicode"], tokens="bpe", vocab_size=2000, rnn_size=48, num_layers=1,
                    embedding_size=16, batch_size=8, seq_length=32, max_epochs=1, eval_every=40, init_from=run)
    train(config, tuned, verbose=0)
    assert load_vocab(tuned) == load_vocab(run)  # the base run's pieces, whatever the new text and vocab_size


def test_inspect_shows_pieces(run, tmp_path):
    done = run_cli("inspect", run, "--chars", "300", "--out", tmp_path / "report.html")
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert json.dumps(" the") in page or "\" the\"" in page


def test_a_50_mb_corpus_is_learned_in_bounded_memory(tmp_path):
    """Learning streams the corpus's lines to SentencePiece, which samples at most SENTENCES of them: a
    child process learns the pieces of a generated 50 MB text within 1 GB of resident memory."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), n)) for n in rng.integers(2, 10, 20_000)]
    path = tmp_path / "big.txt"
    with open(path, "w", encoding="utf-8") as f:
        while f.tell() < 50_000_000:
            picks = rng.choice(len(words), (20_000, 12))
            f.write("".join(" ".join(words[i] for i in line) + "\n" for line in picks))
    # VmHWM: the peak of this process's own memory (ru_maxrss would keep the forking test process's peak)
    script = ("import sys; from kerasrnn import corpus;"
              "vocab = corpus.learn(corpus.Source(sys.argv[1]), 4000, 0.9, 0);"
              "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'));"
              "print(vocab.size, peak.split()[1])")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=900,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    size, peak_kb = map(int, done.stdout.split())
    assert size == 4000
    assert peak_kb < 1_000_000, f"peak resident memory {peak_kb / 1e6:.2f} GB"
