"""Beam search (SPEC.md, "Beam search"): the likeliest continuation the model gives, found by keeping the
`width` likeliest sequences at every step, each a row of a batched step model.

    beams = beam_search(model, vocab, "ROMEO:", 200, width=4)   # best first
    print("ROMEO:" + beams[0].text)

`model` is a batched step model of at least `width` rows (sampling.generate_batch's interface) that can also
reorder its rows: `select(rows)` makes row r hold what row `rows[r]` held (every family has one: the Keras step
models, the edge runtimes).
"""
import sys
from dataclasses import dataclass

import numpy as np

from .errors import UserError, option
from .sampling import check_stop, stop_index


@dataclass
class Beam:
    """One sequence the search kept: its `ids`, its `text` (cut before a stop string), the sum of its tokens'
    log-probabilities (`log_prob`), `score` (that divided by the length penalty) and whether a stop string
    ended it (`stopped`)."""
    ids: list
    text: str
    log_prob: float
    score: float
    stopped: bool


def check_beam(width, length_penalty=0.0, length=0):
    if width < 1:
        raise UserError(f"the beam width must be >= 1 (got {option('beam', width)}); 1 is greedy decoding")
    if not length_penalty >= 0:
        raise UserError(f"the length penalty must be >= 0 (got {option('length_penalty', length_penalty)}); "
                        "0 ranks by log-probability alone")
    if length < 0:
        raise UserError(f"length must be >= 0 (got {length})")


def log_probs(logits):
    """log softmax of float32 logits [R, V] in double, row by row: x - m - log(sum exp(x - m)), the sum in
    ascending id order (a cumulative sum: the same additions as Java and JavaScript)."""
    x = np.asarray(logits, np.float64)
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.cumsum(np.exp(x), axis=1)[:, -1:])


def penalty(tokens, alpha):
    """GNMT's length penalty ((5 + |Y|) / 6) ^ alpha (Wu et al. 2016); 1 at alpha 0."""
    return ((5.0 + tokens) / 6.0) ** alpha


def beam_search(model, vocab, prime="", length=100, width=4, length_penalty=0.0, stop=()):
    """The `width` best sequences of at most `length` tokens after `prime`, best first (SPEC.md, "Beam
    search"). Without stop strings every sequence has `length` tokens, and the best is the one of the
    highest log-probability the search met."""
    check_beam(width, length_penalty, length)
    stop = check_stop(stop)
    ids = vocab.encode(prime)
    if model.batch < width:
        raise UserError(f"a beam of {width} needs a batch model of at least {width} rows (this one has "
                        f"{model.batch}): export the bundle with kerasrnn export RUN --out BUNDLE --batch {width}")
    model.reset()
    prime_ids = np.concatenate([[model.start_token], ids]).astype(np.int32)
    logits = model.feed(np.tile(prime_ids, (model.batch, 1)))
    live, finished = [([], 0.0)], []  # live[r]: (ids, log-probability) of model row r
    for n in range(length):
        scores = log_probs(logits[:len(live)]) + np.array([p for _, p in live])[:, None]
        flat = scores.T.reshape(-1)  # index token * beams + parent: ties to the lower token, then parent
        kept = []
        for k in np.argsort(-flat, kind="stable")[:width].tolist():
            token, parent = divmod(k, len(live))
            seq = (live[parent][0] + [token], float(flat[k]))
            if stop and stop_index(_text(vocab, seq[0]), stop) >= 0:
                finished.append(seq)
            else:
                kept.append((seq, parent))
        if not kept or n + 1 == length:
            live = [seq for seq, _ in kept]
            break
        parents = [parent for _, parent in kept]
        model.select(parents + parents[:1] * (model.batch - len(kept)))  # spare rows copy the first
        tokens = np.array([seq[0][-1] for seq, _ in kept] + [kept[0][0][0][-1]] * (model.batch - len(kept)),
                          np.int32)
        logits = model.feed(tokens[:, None])
        live = [seq for seq, _ in kept]
    beams = [_beam(vocab, seq, length_penalty, stop, True) for seq in finished]
    beams += [_beam(vocab, seq, length_penalty, stop, False) for seq in live]
    beams.sort(key=lambda beam: -beam.score)  # stable: ties keep the order above
    return beams[:width]


def _text(vocab, ids):
    decode = vocab.decoder()
    return "".join(decode(i) for i in ids)


def _beam(vocab, seq, length_penalty, stop, stopped):
    ids, log_prob = seq
    text = _text(vocab, ids)
    if stopped:
        text = text[:stop_index(text, stop)]
    return Beam(ids, text, log_prob, log_prob / penalty(len(ids), length_penalty), stopped)


def add_beam_options(parser):
    """--beam, --length-penalty, --show-beams and --stop, for both samplers' command lines."""
    parser.add_argument("--beam", type=int, metavar="N",
                        help="beam search: print the likeliest continuation found keeping the N likeliest sequences "
                             "at each step (deterministic; not with --temperature, --top-k, --top-p; a bundle needs "
                             "batch models of >= N rows, kerasrnn export --batch N)")
    parser.add_argument("--length-penalty", type=float, default=0.0, metavar="ALPHA",
                        help="with --beam: rank finished sequences by log-probability / ((5 + tokens) / 6)^ALPHA "
                             "(GNMT's; default 0; it matters only where --stop ends sequences early)")
    parser.add_argument("--show-beams", action="store_true", help="with --beam: print all N sequences, best first, "
                                                                  "each after a line with its score")
    parser.add_argument("--stop", action="append", default=[], metavar="STRING",
                        help="end the text before the first occurrence of STRING, which is not printed "
                             "(repeatable: the first of any; escapes \\n \\t \\r \\\\)")


def check_beam_args(args, until, novel):
    """The command-line combinations beam search refuses (it draws no random numbers and makes one text)."""
    if args.beam is None:
        if args.show_beams or args.length_penalty:
            raise UserError("--show-beams and --length-penalty go with --beam N")
        return
    check_beam(args.beam, args.length_penalty)
    sampling = [name for name, used in [("--temperature", args.temperature != 1.0), ("--top-k", args.top_k != 0),
                                        ("--top-p", args.top_p != 1.0), ("--argmax", args.argmax),
                                        ("--num-samples", args.num_samples != 1), ("--until", bool(until)),
                                        ("--novel", novel)] if used]
    if sampling:
        raise UserError(f"--beam searches for the likeliest text and draws nothing: drop {', '.join(sampling)} "
                        "(or drop --beam to sample)")


def write_beams(beams, prime, show_beams=False, out=None):
    """The best text (prime + text, then a newline), or with `show_beams` every beam, best first, each after
    a line "# beam i: score S (log-probability P, T tokens[, stopped])"."""
    out = out or sys.stdout
    if not show_beams:
        out.write(prime + beams[0].text + "\n")
    for i, beam in enumerate(beams if show_beams else []):
        out.write(f"# beam {i}: score {beam.score:.6f} (log-probability {beam.log_prob:.6f}, {len(beam.ids)} tokens"
                  f"{', stopped' if beam.stopped else ''})\n{prime}{beam.text}\n")
    out.flush()
