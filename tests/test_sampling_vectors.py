"""SplitMix64, choose() and generate() reproduce the contract's test vectors (export/sampling_vectors.json)."""
import json
import os
import sys

import numpy as np
import pytest

from kerasrnn_edge.beam import beam_search, log_probs
from kerasrnn_edge.manifest import SAMPLING_CONTRACT
from kerasrnn_edge.sampling import SplitMix64, choose, generate, generate_batch, stream_seed
from kerasrnn_edge.vocab import Vocab

EXPORT = os.path.join(os.path.dirname(__file__), "..", "export")
sys.path.insert(0, EXPORT)
from make_sampling_vectors import BatchTableModel, BeamTableModel, TableModel  # noqa: E402

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


@pytest.mark.parametrize("case", DOC["generate"]["many"]["stream_seeds"], ids=lambda c: c["seed"])
def test_stream_seeds(case):
    assert [str(stream_seed(int(case["seed"]), int(i))) for i in case["i"]] == case["stream_seed"]


@pytest.mark.parametrize("case", DOC["generate"]["many"]["cases"], ids=lambda c: c["name"])
def test_generate_batch(case):
    table = np.array(DOC["generate"]["table"], np.float32)
    model = BatchTableModel(table, case["start_token"], case["start"], case["batch"])
    seeds = [stream_seed(int(case["seed"]), i) for i in range(case["num_samples"])]
    texts = generate_batch(model, Vocab.from_json(DOC["generate"]["vocab"]), case["prime"], case["length"],
                           case["temperature"], case["top_k"], case["top_p"], seeds, case["argmax"], case["until"])
    assert texts == case["texts"]
    for seed, text in zip(seeds, texts):  # each stream is the single generate, cut after its first `until`
        model = TableModel(table, case["start_token"], case["start"])
        single = "".join(generate(model, Vocab.from_json(DOC["generate"]["vocab"]), case["prime"], case["length"],
                                  case["temperature"], case["top_k"], case["top_p"], seed, case["argmax"]))
        cut = single.find(case["until"]) if case["until"] else -1
        assert text == (single[:cut + len(case["until"])] if cut >= 0 else single)


@pytest.mark.parametrize("case", DOC["tokenization"]["cases"], ids=lambda c: repr(c["text"])[:40])
def test_bpe_tokenization(case):
    vocab = Vocab.from_json(DOC["tokenization"]["vocab"])
    assert vocab.encode(case["text"]).tolist() == case["ids"]
    assert "".join(map(vocab.decoder(), case["ids"])) == case["text"]


def test_bpe_tokenization_is_sentencepieces():
    """The spec's encoder is SentencePiece's, run on the vocabulary's model (kerasrnn.subword.model_proto)."""
    from kerasrnn.subword import Encoder
    encoder = Encoder(Vocab.from_json(DOC["tokenization"]["vocab"]))
    for case in DOC["tokenization"]["cases"]:
        assert encoder.encode(case["text"]) == case["ids"], case["text"]


@pytest.mark.parametrize("case", DOC["tokenization"]["generate"], ids=lambda c: c["name"])
def test_bpe_generate(case):
    model = TableModel(np.array(DOC["tokenization"]["table"], np.float32), case["start_token"], case["start"])
    text = generate(model, Vocab.from_json(DOC["tokenization"]["vocab"]), case["prime"], case["length"],
                    case["temperature"], case["top_k"], case["top_p"], int(case["seed"]), case["argmax"])
    assert "".join(text) == case["text"]


STOP_CASES = [(DOC["generate"], c) for c in DOC["generate"]["stop"]] + [
    (DOC["tokenization"], c) for c in DOC["tokenization"]["stop"]]


@pytest.mark.parametrize("part,case", STOP_CASES, ids=[c["name"] for _, c in STOP_CASES])
def test_stop(part, case):
    """The text generated without stop strings, up to the first token after which it holds one, cut before
    the leftmost; streamed in pieces; each stream of a batch stops alike."""
    table, vocab = np.array(part["table"], np.float32), Vocab.from_json(part["vocab"])
    args = (vocab, case["prime"], case["length"], case["temperature"], case["top_k"], case["top_p"],
            int(case["seed"]), case["argmax"])
    pieces = list(generate(TableModel(table, case["start_token"], case["start"]), *args, stop=case["stop"]))
    assert "".join(pieces) == case["text"]
    text = ""  # the text without stop strings, token by token, up to the first token completing one
    for piece in generate(TableModel(table, case["start_token"], case["start"]), *args):
        text += piece
        if any(s in text for s in case["stop"]):
            break
    assert case["text"] == text[:min(i for i in (text.find(s) for s in case["stop"]) if i >= 0)]
    model = BatchTableModel(table, case["start_token"], case["start"], 2)
    assert generate_batch(model, *args[:6], seeds=[int(case["seed"])] * 3, argmax=case["argmax"],
                          stop=case["stop"]) == [case["text"]] * 3


BEAM_CASES = [(DOC["generate"]["vocab"], DOC["generate"]["beam"]["ties_table" if "ties" in c["name"] else "table"], c)
              for c in DOC["generate"]["beam"]["cases"]] + [
    (DOC["tokenization"]["vocab"], DOC["tokenization"]["table"], c) for c in DOC["tokenization"]["beam"]]


@pytest.mark.parametrize("vocab,table,case", BEAM_CASES, ids=[c["name"] for _, _, c in BEAM_CASES])
def test_beam(vocab, table, case):
    """Every result sequence; each one's log-probability is that of its ids fed to one row, one by one."""
    table, vocab = np.array(table, np.float32), Vocab.from_json(vocab)
    model = BeamTableModel(table, case["start_token"], case["start"], case["width"])
    beams = beam_search(model, vocab, case["prime"], case["length"], case["width"], case["length_penalty"],
                        case["stop"])
    assert [(b.ids, b.text, b.stopped) for b in beams] == [(b["ids"], b["text"], b["stopped"]) for b in case["beams"]]
    assert [b.score for b in beams] == pytest.approx([b["score"] for b in case["beams"]], abs=1e-9)
    for beam in beams:
        row = BeamTableModel(table, case["start_token"], case["start"], 1)
        row.reset()
        logits = row.feed([[case["start_token"], *vocab.encode(case["prime"])]])
        total = 0.0
        for token in beam.ids:
            total += log_probs(logits)[0, token]
            logits = row.feed([[token]])
        assert beam.log_prob == pytest.approx(total, abs=1e-9)
