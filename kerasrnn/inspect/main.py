"""`kerasrnn inspect`: runs the model over a text in numpy and gathers what the report shows."""
import base64
import math
import os

import numpy as np

from kerasrnn_edge.errors import UserError
from kerasrnn_edge.sampling import generate
from kerasrnn_edge.vocab import decode_utf8

from .. import corpus, data
from ..callbacks import read_history, read_samples
from ..models import family_of
from ..run import load_run
from . import features, lstmvis, report
from .ngram import NGram
from .recompute import NumpyStepModel, log_softmax, start_states

NGRAM_ORDER = 5
LONGEST_RESET = 1024
TEMPERATURES = (0.2, 0.5, 0.8, 1.0, 1.2, 1.5)
TOP_CELLS = 8
WINDOW = 320  # characters in a feature's example strip


def inspect_run(run_dir, text=None, split="val", chars=2000, out=None, lstmvis_dir=None, skip_unknown=False,
                which="best", verbose=True):
    """Writes the HTML report of `run_dir` on `chars` tokens of `text` (a file) or of the run's `split`,
    and, given `lstmvis_dir`, the states for LSTMVis. Returns the report's data."""
    model, vocab, config, record = load_run(run_dir, which)
    family = family_of(model)
    if "inspect" not in family.supports:
        raise family.refuse("kerasrnn inspect reads a recurrent model's states and gates, and this model has none "
                            "(kerasrnn sample and export run it)", run_dir)
    weights = family.recompute(model)
    train_ids, ids, source, skipped = read_text(config, vocab, text, split, chars, skip_unknown)
    if skipped and verbose:
        print(f"kerasrnn: skipped {len(skipped)} characters outside the vocabulary: {show(skipped)}")
    tokens = token_texts(vocab)
    layers, length = weights.num_layers, len(ids)
    steps = layers * (length + 1) + sum(layers * (k + 1) for k in reset_intervals(length))
    progress = None
    if verbose:
        import keras
        bar = keras.utils.Progbar(steps, unit_name="step")
        progress = lambda n: bar.add(n)  # noqa: E731

    # the text, read from the start state after the start token (where sampling starts)
    trace = weights.forward(np.concatenate([[weights.start_token], ids])[None], start_states(weights), gates=True,
                    progress=progress)
    h = [x[0, 1:] for x in trace.h]
    c = [x[0, 1:] for x in trace.c]
    gates = {name: [x[0, 1:] for x in per_layer] for name, per_layer in trace.gates.items()}
    logp = log_softmax(trace.logits[0, 1:])                     # [T, V]: the next token after each
    losses = -logp[np.arange(length - 1), ids[1:]]
    top = np.argsort(-logp, axis=1, kind="stable")[:, :5]

    ngram = NGram(train_ids, NGRAM_ORDER, vocab.size)
    ngram_losses = {n: ngram.losses(ids, n) for n in range(1, NGRAM_ORDER + 1)}
    memory = memory_curve(weights, ids, progress) + [("never", float(losses.mean()))]
    best_n = min(ngram_losses, key=lambda n: ngram_losses[n].mean())

    text_chars = feature_chars(vocab, ids)
    signals = [(layer, kind, values) for layer in range(layers)
               for kind, values in (("h", h[layer]), ("c", c[layer] if c else None)) if values is not None]
    if lstmvis_dir:
        lstmvis.export(lstmvis_dir, os.path.basename(os.path.abspath(run_dir)), tokens, ids, h, c)
    page = {
        "title": os.path.basename(os.path.abspath(run_dir)),
        "model": {"cell": weights.label, "layers": layers, "units": weights.units, "vocab": vocab.size,
                  "checkpoint": which, "step": record.get("step"), "val_loss": record.get("val_loss")},
        "source": source, "skipped": skipped,
        "tokens": tokens, "ids": ids.tolist(),
        "loss": float(losses.mean()),
        "losses": np.round(losses, 3).tolist(),
        "top": top.tolist(), "top_p": np.round(np.exp(np.take_along_axis(logp, top, axis=1)), 3).tolist(),
        "signals": [encode_signal(layer, kind, values) for layer, kind, values in signals],
        "features": cell_finder(text_chars, [values for _, _, values in signals], weights.units),
        "saturation": {name: [{"left": np.round((g < 0.1).mean(axis=0), 4).tolist(),
                               "right": np.round((g > 0.9).mean(axis=0), 4).tolist()} for g in per_layer]
                       for name, per_layer in gates.items()},
        "memory": [{"reset": k, "loss": loss} for k, loss in memory],
        "ngram": [{"n": n, "loss": float(v.mean())} for n, v in ngram_losses.items()],
        "errors": errors(tokens, ids, losses, ngram_losses[best_n], best_n, top),
        "history": read_history(run_dir, math.inf),
        "samples": read_samples(run_dir, math.inf),
        "gallery": [{"temperature": t, "text": "".join(generate(NumpyStepModel(weights), vocab, "", 300,
                                                                temperature=t, seed=1))} for t in TEMPERATURES],
    }
    out = out or os.path.join(run_dir, "report.html")
    report.write(out, page)
    if verbose:
        also = f"; LSTMVis files in {lstmvis_dir}" if lstmvis_dir else ""
        print(f"kerasrnn: wrote {out} ({length:,} tokens of {source}; {losses.mean():.3f} nats/token, "
              f"{best_n}-gram {ngram_losses[best_n].mean():.3f}){also}")
    return page


def read_text(config, vocab, text, split, chars, skip_unknown):
    """(training ids, the ids to inspect, where they come from, characters skipped). The training split is
    the n-gram baseline's text, so the run's corpus must still be at hand."""
    if config.text and not os.path.exists(config.text):
        raise UserError(f"the run's training text {config.text} is missing (the n-gram baseline needs it): run from "
                        "the directory the run was trained in, or put the text back")
    path = corpus.source(config)
    corpus_vocab, ids = corpus.load_ids(path, config.tokens, vocab if vocab.kind == "bpe" else None)
    try:  # a fine-tuned run's vocabulary holds more characters than its text
        ids = vocab.recode(ids, corpus_vocab)
    except UserError as e:
        raise UserError(f"{path} is not the text the run was trained on ({e})") from None
    parts = dict(zip(("train", "val", "test"), data.split(ids, config.train_frac, config.val_frac)))
    skipped = []
    if text:
        raw = corpus.read_bytes(text)
        if vocab.kind == "char":
            decoded, known, kept = decode_utf8(raw), set(vocab.chars), []
            if not skip_unknown:
                skipped = sorted(set(decoded[:chars]) - known)
                if skipped:
                    raise UserError(f"{text} has {len(skipped)} characters outside the model's vocabulary: "
                                    f"{show(skipped)}; pass --skip-unknown to leave them out")
            for ch in decoded:  # the first `chars` characters the model knows
                if ch not in known:
                    skipped.append(ch)
                elif len(kept) < chars:
                    kept.append(ch)
                else:
                    break
            skipped = sorted(set(skipped))
            chosen, source = vocab.encode("".join(kept)), text
        elif vocab.kind == "bpe":  # every text has bpe ids (byte pieces for what the pieces lack)
            chosen, source = vocab.encode(decode_utf8(raw))[:chars], text
        else:
            chosen, source = np.frombuffer(raw, np.uint8)[:chars], text
    else:
        chosen, source = parts[split][:chars], f"the {split} split of {path}"
    if len(chosen) < 2:
        raise UserError(f"{source} has {len(chosen)} usable tokens: the report needs at least 2")
    return parts["train"], np.asarray(chosen, np.int64), source, skipped


def show(chars):
    return " ".join(repr(c) for c in chars[:20]) + (f" … ({len(chars)} in all)" if len(chars) > 20 else "")


def token_texts(vocab):
    """Each id's text on the page: its character, or for a byte that is not printable ASCII, \\xNN."""
    def byte(b):
        return chr(b) if 32 <= b < 127 or b in (9, 10) else f"\\x{b:02x}"
    if vocab.kind == "char":
        return list(vocab.chars)
    if vocab.kind == "bpe":  # the pieces, in the strip as they are
        return [byte(p) if isinstance(p, int) else "<unk>" if p is None else p for p in vocab.pieces]
    return [byte(b) for b in range(256)]


def feature_chars(vocab, ids):
    """One character per token, for the text features of the cell finder: the token's own (a char), its
    byte as Latin-1 (byte, and bpe's byte pieces), or a piece's last character."""
    if vocab.kind == "char":
        return "".join(vocab.chars[i] for i in ids)
    if vocab.kind == "byte":
        return bytes(ids.tolist()).decode("latin-1")
    return "".join(chr(p) if isinstance(p, int) else (p or " ")[-1] for p in (vocab.pieces[i] for i in ids))


def reset_intervals(length):
    k = 1
    while k < length - 1 and k <= LONGEST_RESET:
        yield k
        k *= 2


def memory_curve(weights, ids, progress=None):
    """[(k, loss)]: the loss on the text when the state goes back to the start (and the start token is fed)
    every k tokens, k = 1, 2, 4 ... The text's chunks of k run side by side, as one batch."""
    curve = []
    for k in reset_intervals(len(ids)):
        chunks = -(-len(ids) // k)
        padded = np.full(chunks * k, weights.start_token)
        padded[:len(ids)] = ids
        batch = np.concatenate([np.full((chunks, 1), weights.start_token), padded.reshape(chunks, k)], axis=1)
        trace = weights.forward(batch, start_states(weights, chunks), progress=progress)
        logits = trace.logits[:, 1:].reshape(chunks * k, -1)[:len(ids) - 1]
        curve.append((k, float(-log_softmax(logits)[np.arange(len(ids) - 1), ids[1:]].mean())))
    return curve


def encode_signal(layer, kind, values):
    """One layer's h or c [T, H] for the page: int8 per cell, scaled to its largest magnitude, base64."""
    scale = np.abs(values).max(axis=0)
    scale = np.where(scale > 0, scale, 1)
    quantized = np.round(values / scale * 127).astype(np.int8)
    return {"layer": layer, "kind": kind, "scale": np.round(scale, 4).tolist(),
            "data": base64.b64encode(quantized.tobytes()).decode("ascii")}


def cell_finder(text, signals, units):
    """Per built-in feature: the cells (signal, cell) that track it best, and a window of text to show."""
    activations = np.concatenate(signals, axis=1)
    ranked = features.ranks(activations)
    found = []
    for name, (kind, function) in features.FEATURES.items():
        values = np.asarray(function(text), np.float64)
        entry = {"name": name, "kind": kind, "present": bool(features.present(kind, values))}
        if entry["present"]:
            signed, strength = features.score(ranked, kind, values)
            best = np.argsort(-strength, kind="stable")[:TOP_CELLS]
            entry["cells"] = [{"signal": int(j // units), "cell": int(j % units), "score": round(float(signed[j]), 4)}
                              for j in best]
            entry["window"] = busiest_window(values)
        found.append(entry)
    return found


def busiest_window(values):
    """The start of the WINDOW-token stretch where the feature varies most (the best example to show)."""
    if len(values) <= WINDOW:
        return 0
    starts = range(0, len(values) - WINDOW + 1, WINDOW // 8)
    return max(starts, key=lambda s: values[s:s + WINDOW].std())


CLASSES = ("letters", "whitespace", "punctuation", "digits", "brackets", "other")


def char_class(token):
    if len(token) != 1:
        return "other"
    if token in "()[]{}<>":
        return "brackets"
    if token.isalpha():
        return "letters"
    if token.isdigit():
        return "digits"
    if token.isspace():
        return "whitespace"
    return "punctuation" if token.isprintable() else "other"


def errors(tokens, ids, losses, ngram_losses, n, top):
    """The loss by class of the character predicted, against the n-gram's; and the costliest characters."""
    classes = np.array([CLASSES.index(char_class(tokens[i])) for i in ids[1:]])
    table = []
    for index, name in enumerate(CLASSES):
        mask = classes == index
        if mask.any():
            table.append({"class": name, "count": int(mask.sum()), "model": float(losses[mask].mean()),
                          "ngram": float(ngram_losses[mask].mean()),
                          "share": float(losses[mask].sum() / losses.sum())})
    costliest = np.argsort(-losses, kind="stable")[:40]
    return {"n": n, "classes": table,
            "costliest": [{"at": int(t), "model": round(float(losses[t]), 3), "ngram": round(float(ngram_losses[t]), 3),
                           "guess": int(top[t, 0])} for t in costliest]}
