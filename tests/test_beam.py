"""Beam search and stop strings (export/SPEC.md, "Beam search", "Stop strings").

Beam search against the exhaustive search on an 8-token LSTM with fixed (seeded) weights; the same beam text
from `kerasrnn sample --beam`, `kerasrnn-edge sample --beam` on LiteRT and ONNX Runtime, and the Java core
(which replays the logits the Python search recorded), for an LSTM and a GPT run; stop strings in every
sampler; bad options in one line, exit 2.
"""
import itertools
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import run_cli, shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.model import build_model
from kerasrnn.run import load_run
from kerasrnn.sample import KerasStepModel
from kerasrnn.train import train
from kerasrnn_edge import cli as edge_cli
from kerasrnn_edge.beam import beam_search, log_probs
from kerasrnn_edge.sampling import generate
from kerasrnn_edge.vocab import Vocab
from kerasrnn_export import export_bundle

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
    steps = KerasStepModel(model, vocab, batch=len(everything))
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
    best = beam_search(KerasStepModel(model, vocab, width), vocab, "", LENGTH, width)[0]
    assert best.text == "hehe"
    assert best.ids == everything[np.argmax(totals)].tolist()
    assert best.log_prob == pytest.approx(totals.max(), abs=1e-5)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8, 16, 64])
def test_every_beam_scores_at_least_greedy_decoding(eight_token_lstm, width):
    model, vocab, everything, totals = eight_token_lstm
    greedy = "".join(generate(KerasStepModel(model, vocab), vocab, "", LENGTH, argmax=True))
    greedy_score = totals[everything.tolist().index(vocab.encode(greedy).tolist())]
    beams = beam_search(KerasStepModel(model, vocab, width), vocab, "", LENGTH, width)
    assert beams[0].log_prob >= greedy_score - 1e-5  # batch 4096 and batch N logits agree to float rounding
    assert [b.score for b in beams] == sorted((b.score for b in beams), reverse=True)
    assert len({tuple(b.ids) for b in beams}) == len(beams) == min(width, len(everything))
    if width == 1:  # one beam is greedy decoding, ties and all
        assert beams[0].text == greedy
    else:
        assert beams[0].log_prob > greedy_score + 0.01
