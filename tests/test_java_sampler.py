"""The Java sampler core (android_demo/core) against the Python edge sampler: same logits, same seed, same text.

Both run the generate loop of export/SPEC.md (sampling contract 2) over one table of float32 logits
instead of a network, for 1,000 tokens, in char mode and byte mode, with temperature, top-k and top-p.
The table model's state is the sum of the ids fed since the reset: feed number n returns row
(n + that sum, this id included) mod rows, so every wrongly fed id changes all later logits and the
text. Its start token is not 0, and fed first after every reset: a sampler that skips it, or feeds 0
in its place, writes another text, whatever the prime.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "export"))

from kerasrnn_edge.sampling import generate  # noqa: E402
from kerasrnn_edge.vocab import Vocab  # noqa: E402

CORE_SOURCES = os.path.join(REPO, "android_demo", "core", "src", "main", "java")
LENGTH = 1000
ROWS = 1031
# Not 0: a sampler that feeds token 0 instead of the start token reads other rows.
START_TOKEN = 17

# Sorted by code point; escapes, a control character, non-Latin-1 and a non-BMP character test
# the Java JSON reader and the code point handling on the way.
CHARS = sorted(set("\n\t !\"'(),-.:;?\\abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789é€😀"))


class TableModel:
    """A step model whose logits come from a fixed table (the same rule as GenerateFromLogits.LogitsTable):
    feed number n (from 0 after a reset) returns row (n + the sum of the ids fed since the reset) mod rows."""

    def __init__(self, table, start_token):
        self.table = table
        self.start_token = start_token
        self.reset()

    def reset(self):
        self.feeds = 0
        self.fed_sum = 0

    def feed(self, ids):
        for token in ids:
            self.fed_sum += int(token)
            logits = self.table[(self.feeds + self.fed_sum) % len(self.table)]
            self.feeds += 1
        return logits


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory):
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("javac/java not found: install a JDK (Debian: default-jdk-headless) to compare the Java sampler")
    classes = tmp_path_factory.mktemp("java-classes")
    sources = [os.path.join(root, name) for root, _, names in os.walk(CORE_SOURCES)
               for name in names if name.endswith(".java")]
    subprocess.run(["javac", "--release", "8", "-nowarn", "-encoding", "UTF-8", "-d", str(classes), *sources],
                   check=True)
    return classes


def logits_table(vocab_size, table_seed, bias=None):
    table = np.random.default_rng(table_seed).normal(0, 2, (ROWS, vocab_size))
    if bias is not None:
        table += bias
    return table.astype(np.float32)


def java_generate(classes, tmp_path, vocab, table, prime, seed, params):
    spec = dict(vocab=vocab.to_json(), start_token=START_TOKEN, prime=prime, length=LENGTH, seed=str(seed), **params)
    spec_path = tmp_path / "spec.json"
    logits_path = tmp_path / "logits.bin"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    table.astype("<f4").tofile(logits_path)
    result = subprocess.run(["java", "-cp", str(classes), "org.kerasrnn.edge.GenerateFromLogits",
                             str(spec_path), str(logits_path)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return result.stdout.decode("utf-8")


BIASES = {
    # Continuation bytes and common lead bytes: many byte sequences are valid characters.
    "utf8": {range(0x80, 0xC0): 2.5, (0xC3, 0xE2, 0xF0): 3.0},
    # Lead bytes with restricted second bytes (overlongs, encoded surrogates, beyond U+10FFFF):
    # where decoders most easily disagree on how many U+FFFD to write.
    "invalid": {range(0x80, 0xC0): 2.5, (0xC0, 0xE0, 0xED, 0xF0, 0xF4, 0xF5): 3.5},
}


def byte_bias(name):
    bias = np.zeros(256)
    for ids, value in BIASES[name].items():
        bias[list(ids)] += value
    return bias


CASES = [
    # name, vocab kind, prime, seed, sampling parameters, table seed, table bias
    ("char-t1", "char", "The ", 7, dict(temperature=1.0, top_k=0, top_p=1.0, argmax=False), 1, None),
    ("char-t0.6-topk", "char", "é€😀 \"quoted\"\n", 2**63 + 5, dict(temperature=0.6, top_k=8, top_p=1.0, argmax=False), 2, None),
    ("char-topp", "char", "", 123, dict(temperature=1.3, top_k=0, top_p=0.8, argmax=False), 3, None),
    ("char-all", "char", "x", 2**64 - 1, dict(temperature=0.9, top_k=20, top_p=0.6, argmax=False), 4, None),
    ("char-argmax", "char", "ab", 0, dict(temperature=1.0, top_k=0, top_p=1.0, argmax=True), 5, None),
    ("byte-t1", "byte", "", 42, dict(temperature=1.0, top_k=0, top_p=1.0, argmax=False), 6, None),
    ("byte-utf8", "byte", "é€😀", 99, dict(temperature=0.8, top_k=0, top_p=1.0, argmax=False), 7, "utf8"),
    ("byte-topk-topp", "byte", "naïve ", 2024, dict(temperature=1.0, top_k=40, top_p=0.9, argmax=False), 8, "utf8"),
    ("byte-invalid", "byte", "", 5, dict(temperature=1.0, top_k=0, top_p=1.0, argmax=False), 9, "invalid"),
]


@pytest.mark.parametrize("name,kind,prime,seed,params,table_seed,bias", CASES, ids=[c[0] for c in CASES])
def test_java_and_python_generate_the_same_text(java_classes, tmp_path, name, kind, prime, seed, params,
                                                table_seed, bias):
    vocab = Vocab("char", CHARS) if kind == "char" else Vocab("byte")
    table = logits_table(vocab.size, table_seed, byte_bias(bias) if bias else None)
    python_text = "".join(generate(TableModel(table, START_TOKEN), vocab, prime=prime, length=LENGTH, seed=seed,
                                   **params))

    java_text = java_generate(java_classes, tmp_path, vocab, table, prime, seed, params)

    assert java_text == python_text
    if kind == "char":
        assert len(python_text) == LENGTH
    if bias:  # the comparison covered both completed multi-byte characters and replacements
        assert "\ufffd" in python_text
        assert any(ord(c) > 0x7F and c != "\ufffd" for c in python_text)
