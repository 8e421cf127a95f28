"""Writes sampling_vectors.json, the sampling contract's test vectors (SPEC.md, "Sampling").

Run once per contract version; every implementation (Python, Java) must reproduce the file.
"""
import json
import os

import numpy as np

from kerasrnn_edge.beam import beam_search
from kerasrnn_edge.manifest import SAMPLING_CONTRACT
from kerasrnn_edge.sampling import SplitMix64, choose, generate, generate_batch, stream_seed
from kerasrnn_edge.vocab import Vocab

HERE = os.path.dirname(os.path.abspath(__file__))


def logits_cases():
    rng = np.random.default_rng(2015)
    yield "normal-65", rng.normal(0, 2, 65).astype(np.float32)
    yield "peaked-65", (rng.normal(0, 1, 65) + 8 * (np.arange(65) == 17)).astype(np.float32)
    yield "bytes-256", rng.normal(0, 3, 256).astype(np.float32)
    yield "ties-8", np.array([1, 3, 3, 0, 3, -2, 1, 3], np.float32)
    yield "extreme-6", np.array([-1e30, 80, 79.5, -80, 0, 80], np.float32)
    yield "two", np.array([0.25, -0.25], np.float32)


SETTINGS = [
    dict(temperature=1.0, top_k=0, top_p=1.0, argmax=False),
    dict(temperature=0.5, top_k=0, top_p=1.0, argmax=False),
    dict(temperature=2.0, top_k=0, top_p=1.0, argmax=False),
    dict(temperature=1.0, top_k=5, top_p=1.0, argmax=False),
    dict(temperature=1.0, top_k=1, top_p=1.0, argmax=False),
    dict(temperature=1.0, top_k=0, top_p=0.9, argmax=False),
    dict(temperature=0.8, top_k=10, top_p=0.5, argmax=False),
    dict(temperature=1.0, top_k=0, top_p=1e-6, argmax=False),
    dict(temperature=1.0, top_k=0, top_p=1.0, argmax=True),
]


class TableModel:
    """The step model of the "generate" vectors: a counter for a state. Feed number n after a reset,
    counting from the start state `start`, of token t returns row (start + n + t) mod rows of `table`,
    so feeding the wrong tokens, or not feeding the start token, changes the text."""

    def __init__(self, table, start_token, start):
        self.table, self.start_token, self.start = table, start_token, start

    def reset(self):
        self.feeds = self.start

    def feed(self, ids):
        for token in ids:
            logits = self.table[(self.feeds + int(token)) % len(self.table)]
            self.feeds += 1
        return logits


class BatchTableModel:
    """A batched step model of `batch` rows, each row a TableModel of its own."""

    def __init__(self, table, start_token, start, batch):
        self.rows = [TableModel(table, start_token, start) for _ in range(batch)]
        self.batch, self.start_token = batch, start_token

    def reset(self):
        for row in self.rows:
            row.reset()

    def feed(self, ids):
        return np.stack([row.feed(row_ids) for row, row_ids in zip(self.rows, ids)])


class BeamTableModel:
    """The batched step model of the "beam" vectors: each row's state is an integer; feeding token t to a
    row in state s sets it to (7 s + t + 1) mod rows of `table` and returns that row, so a row's logits
    depend on all it was fed, and a beam that continued the wrong parent reads other rows."""

    def __init__(self, table, start_token, start, batch):
        self.table, self.start_token, self.start, self.batch = table, start_token, start, batch

    def reset(self):
        self.states = np.full(self.batch, self.start)

    def feed(self, ids):
        for column in np.asarray(ids).T:
            self.states = (7 * self.states + column + 1) % len(self.table)
        return self.table[self.states]

    def select(self, rows):
        self.states = self.states[rows]


def beam_cases(vocab, table, cases_in, name):
    """Beam searches over a BeamTableModel of `width` rows: every result sequence, best first."""
    cases = []
    for prime, start_token, start, width, length, alpha, stop in cases_in:
        model = BeamTableModel(table, start_token, start, width)
        beams = beam_search(model, vocab, prime, length, width, alpha, stop)
        cases.append(dict(name=f"{name}/{len(cases)}", start_token=start_token, start=start, prime=prime,
                          width=width, length=length, length_penalty=alpha, stop=stop,
                          beams=[dict(ids=b.ids, text=b.text, log_prob=b.log_prob, score=b.score, stopped=b.stopped)
                                 for b in beams]))
    return cases


def stop_cases(table, vocab, cases_in, name):
    """Generate cases with stop strings: each stop taken from the text the case gives without them (a
    slice `[a:b]` of it), so that it occurs; a stop string that never occurs rides along."""
    cases = []
    for prime, start_token, start, settings, length, cuts in cases_in:
        seed = 13 * len(cases) + 1
        full = "".join(generate(TableModel(table, start_token, start), vocab, prime, length, seed=seed, **settings))
        stop = [full[a:b] for a, b in cuts] + ["\u00a7never"]
        text = "".join(generate(TableModel(table, start_token, start), vocab, prime, length, seed=seed, stop=stop,
                                **settings))
        cases.append(dict(name=f"{name}/{len(cases)}", start_token=start_token, start=start, prime=prime,
                          seed=str(seed), **settings, length=length, stop=stop, text=text))
    return cases


def many_cases(table, vocab):
    """Stream seeds, then batches: `num_samples` streams over BatchTableModel rows, `batch` at a time
    (the last group padded), each text cut after its first `until`."""
    seeds = [dict(seed=str(seed), i=[str(i) for i in indices], stream_seed=[str(stream_seed(seed, i)) for i in indices])
             for seed in (0, 42, 2**63 + 12345, 2**64 - 1)
             for indices in [[0, 1, 2, 3, 1000, 2**32 + 5, 2**64 - 1]]]
    cases = []
    for prime, start_token, start, settings, until, num_samples, seed in [
            ("", 0, 0, SETTINGS[0], "\n", 5, 3), ("ROMEO:", 9, 17, SETTINGS[6], " ", 4, 2**64 - 1),
            ("", 5, 11, SETTINGS[1], "", 3, 42), ("a rose", 2, 7, SETTINGS[5], "OO", 6, 2**63 + 1)]:
        model = BatchTableModel(table, start_token, start, 3)
        texts = generate_batch(model, vocab, prime, 30, seeds=[stream_seed(seed, i) for i in range(num_samples)],
                               until=until, **settings)
        cases.append(dict(name=f"many/{len(cases)}", start_token=start_token, start=start, prime=prime,
                          seed=str(seed), num_samples=num_samples, batch=3, until=until, **settings, length=30,
                          texts=texts))
    return dict(stream_seeds=seeds, cases=cases)


def generate_cases():
    rng = np.random.default_rng(2016)
    vocab = Vocab("char", sorted("\n !,:AEMORaeors"))
    table = rng.normal(0, 2, (23, vocab.size)).astype(np.float32)
    cases = []
    for prime, start_token, start, settings in [
            ("", 0, 0, SETTINGS[0]), ("", 5, 11, SETTINGS[1]), ("ROMEO:", 0, 3, SETTINGS[0]),
            ("ROMEO:", 9, 17, SETTINGS[6]), ("a rose", 2, 7, SETTINGS[7]), ("", 14, 22, SETTINGS[8])]:
        seed = 7 * len(cases) + 3
        text = "".join(generate(TableModel(table, start_token, start), vocab, prime, 30, seed=seed, **settings))
        cases.append(dict(name=f"generate/{len(cases)}", start_token=start_token, start=start, prime=prime,
                          seed=str(seed), **settings, length=30, text=text))
    stops = stop_cases(table, vocab, [("", 0, 0, SETTINGS[0], 30, [(10, 12)]),
                                      ("ROMEO:", 9, 17, SETTINGS[6], 30, [(20, 23), (12, 13)]),
                                      ("", 5, 11, SETTINGS[8], 30, [(4, 9), (5, 6)])], "stop")
    ties = np.round(table[:5]).astype(np.float32)  # few distinct values: equal scores, token and parent ties
    beams = beam_cases(vocab, table, [("", 0, 0, 1, 20, 0.0, []), ("ROMEO:", 9, 17, 3, 25, 0.0, []),
                                      ("", 5, 11, 4, 30, 0.6, ["O", "!"]), ("a rose", 2, 7, 8, 30, 1.0, ["se", "Ma"]),
                                      ("", 14, 22, 16, 10, 0.0, [])], "beam")
    beams += beam_cases(vocab, ties, [("", 3, 1, 5, 12, 0.0, []), ("E", 1, 4, 6, 12, 0.3, ["A"])], "beam-ties")
    return dict(vocab=vocab.to_json(), table=table.tolist(), cases=cases, many=many_cases(table, vocab), stop=stops,
                beam=dict(table=table.tolist(), ties_table=ties.tolist(), cases=beams))


# Text pieces in id order (merge priority): merges that compete ("the" by "th" or "he", "aa" in "aaa"),
# a piece no merge reaches ("xyz": no "xy" or "yz"), pieces of CJK, emoji (outside the BMP: one symbol,
# two UTF-16 units), a combining mark, tab, carriage return and a literal U+2581, which is no space.
BPE_PIECES = ["th", "he", " t", "the", " the", "aa", "in", "ing", "e\u0301", "中文", "😀😀", "\r", "\t\t",
              "xyz", "  ", "    ", "ro", "se", "rose", " a", "\u2581a", "e", "t", "h", "a", "i", "n", "g", " ",
              "x", "y", "z", "r", "o", "s", "中", "文", "😀", "\u0301", "\u2581", "\t", "R", "O", "M", "E", ":"]
BPE_TEXTS = ["", "the", "the theme", " the rose", "aaaaa", "aaa aa", "xyz", "xy z", "singing in",
             "e\u0301te\u0301", "é", "中文中", "😀😀😀 😀", "line\r\nnext\n\n\tend\t\t", "\u2581a\u2581 a▁",
             "    indented\n  two", "ROMEO:\nthe rose", "\x00<0x41><unk>", "\U0010ffff\ufeffq", "\n"]


def bpe_vocab():
    return Vocab("bpe", pieces=[None, *range(256), *BPE_PIECES])


def tokenization_cases():
    """Encoding and decoding cases of a bpe vocabulary (SPEC.md "Vocabulary"), then generate cases over it
    (random ids: byte pieces that form invalid UTF-8 too)."""
    vocab = bpe_vocab()
    rng = np.random.default_rng(2017)
    alphabet = "the rosinagxyzROME:\n\t\r\u2581\u0301中文😀é"
    texts = BPE_TEXTS + ["".join(rng.choice(list(alphabet), 40)) for _ in range(10)]
    table = rng.normal(0, 2, (11, vocab.size)).astype(np.float32)
    table[:, 257:] += 2  # text pieces likelier than byte pieces
    cases = []
    for prime, start_token, start, settings in [("", 0, 0, SETTINGS[0]), ("the rose", 12, 5, SETTINGS[6]),
                                               ("中文😀", 300, 9, SETTINGS[5]), ("aaa", 260, 1, SETTINGS[3])]:
        seed = 11 * len(cases) + 5
        text = "".join(generate(TableModel(table, start_token, start), vocab, prime, 40, seed=seed, **settings))
        cases.append(dict(name=f"bpe/{len(cases)}", start_token=start_token, start=start, prime=prime,
                          seed=str(seed), **settings, length=40, text=text))
    stops = stop_cases(table, vocab, [("the rose", 12, 5, SETTINGS[6], 40, [(15, 19)]),
                                      ("", 0, 0, SETTINGS[0], 40, [(30, 32)])], "bpe-stop")
    beams = beam_cases(vocab, table, [("the", 260, 3, 3, 15, 0.0, []), ("中文", 300, 9, 4, 15, 0.5, ["se"])],
                       "bpe-beam")
    return dict(vocab=vocab.to_json(), cases=[dict(text=t, ids=vocab.encode(t).tolist()) for t in texts],
                table=table.tolist(), generate=cases, stop=stops, beam=beams)


def main():
    rng_vectors = []
    for seed in (0, 1, 42, 2**63 + 12345, 2**64 - 1):
        rng = SplitMix64(seed)
        u64 = [str(rng.next_u64()) for _ in range(4)]
        rng = SplitMix64(seed)
        doubles = [rng.next_double() for _ in range(4)]
        rng_vectors.append(dict(seed=str(seed), next_u64=u64, next_double=doubles))
    cases = []
    for name, logits in logits_cases():
        for i, settings in enumerate(SETTINGS):
            seed = 1000 * len(cases) + 7
            rng = SplitMix64(seed)
            ids = [choose(logits, rng, **settings) for _ in range(40)]
            cases.append(dict(name=f"{name}/{i}", seed=str(seed), **settings, draws=40, ids=ids,
                              logits=[float(v) for v in logits]))
    doc = dict(contract_version=SAMPLING_CONTRACT,
               about="SplitMix64 outputs, then cases: seed the generator, call choose() `draws` times on the "
                     "same float32 logits, compare ids. Seeds are decimal strings (unsigned 64-bit). Then "
                     "`generate`: the generate loop over a table model (make_sampling_vectors.TableModel: feed "
                     "number n after a reset, counting from `start`, of token t returns row (start + n + t) mod "
                     "rows of `table`), compare the text. `generate.many`: stream seeds (stream i of seed s), "
                     "then batches of `num_samples` streams over the same table, stream i seeded with its stream "
                     "seed and cut after its first `until` (SPEC.md, \"Many samples\"), compare the texts. "
                     "`tokenization`: a bpe vocabulary, cases of a text and its ids (encode, compare the ids; "
                     "decode, compare the text), and generate cases over it (SPEC.md, \"Vocabulary\"). `stop`: "
                     "generate cases with stop strings (SPEC.md, \"Stop strings\"); `beam`: beam searches over "
                     "make_sampling_vectors.BeamTableModel, every result sequence (SPEC.md, \"Beam search\").",
               rng=rng_vectors, cases=cases, generate=generate_cases(), tokenization=tokenization_cases())
    with open(os.path.join(HERE, "sampling_vectors.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
