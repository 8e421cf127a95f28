"""SplitMix64, choose() and generate() reproduce the contract's test vectors (export/sampling_vectors.json)."""
import json
import os
import sys

import numpy as np
import pytest

from kerasrnn_edge.manifest import SAMPLING_CONTRACT
from kerasrnn_edge.sampling import SplitMix64, choose, generate
from kerasrnn_edge.vocab import Vocab

EXPORT = os.path.join(os.path.dirname(__file__), "..", "export")
sys.path.insert(0, EXPORT)
from make_sampling_vectors import TableModel  # noqa: E402

VECTORS = os.path.join(EXPORT, "sampling_vectors.json")
with open(VECTORS) as f:
    DOC = json.load(f)


def test_contract_version():
    assert DOC["contract_version"] == SAMPLING_CONTRACT == 2


@pytest.mark.parametrize("case", DOC["rng"], ids=lambda c: c["seed"])
def test_splitmix64(case):
    rng = SplitMix64(int(case["seed"]))
    assert [str(rng.next_u64()) for _ in case["next_u64"]] == case["next_u64"]
    rng = SplitMix64(int(case["seed"]))
    assert [rng.next_double() for _ in case["next_double"]] == case["next_double"]


@pytest.mark.parametrize("case", DOC["cases"], ids=lambda c: c["name"])
def test_choose(case):
    rng = SplitMix64(int(case["seed"]))
    logits = np.array(case["logits"], np.float32)
    ids = [choose(logits, rng, case["temperature"], case["top_k"], case["top_p"], case["argmax"])
           for _ in range(case["draws"])]
    assert ids == case["ids"]


@pytest.mark.parametrize("case", DOC["generate"]["cases"], ids=lambda c: c["name"])
def test_generate(case):
    table = np.array(DOC["generate"]["table"], np.float32)
    model = TableModel(table, case["start_token"], case["start"])
    text = generate(model, Vocab.from_json(DOC["generate"]["vocab"]), case["prime"], case["length"],
                    case["temperature"], case["top_k"], case["top_p"], int(case["seed"]), case["argmax"])
    assert "".join(text) == case["text"]
