"""SplitMix64 and choose() reproduce the contract's test vectors (export/sampling_vectors.json)."""
import json
import os

import numpy as np
import pytest

from kerasrnn_edge.sampling import SplitMix64, choose

VECTORS = os.path.join(os.path.dirname(__file__), "..", "export", "sampling_vectors.json")
with open(VECTORS) as f:
    DOC = json.load(f)


def test_contract_version():
    assert DOC["contract_version"] == 1


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
