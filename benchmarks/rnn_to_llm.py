"""From RNNs to LLMs, measured (docs/rnn-to-llm.md): the claims told about RNNs and transformers, as
experiments on one pipeline, one corpus, one tokenizer and one time budget for every model.

    python benchmarks/rnn_to_llm.py EXPERIMENT [--seconds 60] [--corpus python-stdlib | --text PATH]

    context    loss when the context is cut to the last k tokens (k = 1 ... 1,024) for the LSTM, GRU,
               SimpleRNN, minGRU and two GPTs (windows of 64 and 256); bytes of state per stream against
               context length; edge sampling time per token against position (ONNX Runtime, LiteRT)
    length     training tokens per second against sequence length T = 32 ... 4,096 at 8,192 tokens a
               batch, and the exponent, for the recurrent cells, the minGRU and the GPT
    gradients  |d loss_t / d x_(t-k)| against k for SimpleRNN, GRU, LSTM and minGRU, trained and
               untrained; and validation loss against the truncation length of BPTT
    tokens     bits per character of byte, character and subword (bpe) runs at equal time, LSTM and minGRU
    finetune   an LSTM and a minGRU base run on the corpus fine-tuned on a small text of another style (the
               Shakespeare in tests/data): what each gains over training from scratch, what it forgets of the
               corpus, and what --freeze and --replay change

Each experiment trains the models it needs for --seconds each (or reuses the runs under --runs), prints
its table, writes its plot OUT/EXPERIMENT.png and its section of docs/rnn-to-llm.md (--doc), between the
markers <!-- EXPERIMENT --> and <!-- /EXPERIMENT -->. The default corpus is the Python standard
library of the running interpreter, which the project makes offline. Training takes the backend
`kerasrnn train` takes; exporting (context) runs `kerasrnn export` as its own process.
"""
import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import time
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kerasrnn import startup  # noqa: E402

startup.choose_backend("train")
startup.import_keras_quietly()

import keras  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kerasrnn import corpus  # noqa: E402
from kerasrnn.api import Run  # noqa: E402
from kerasrnn.config import preset  # noqa: E402
from kerasrnn.data import StreamBatches, split  # noqa: E402
from kerasrnn.models import build_args, family, rebuild  # noqa: E402
from kerasrnn.models.language_model import core, reset_states  # noqa: E402
from kerasrnn.train import tokens_per_character  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, KerasrnnError, one_line_errors, positive  # noqa: E402
from kerasrnn_edge.manifest import read_manifest  # noqa: E402
from kerasrnn_edge.runtimes import installed_version, open_step_model  # noqa: E402

SMALL_TEXT = os.path.join(REPO, "tests", "data", "shakespeare.txt")
# name: (preset, options): every model the experiments train, on the same corpus and budget
MODELS = {
    "lstm": ("tiny", {}),
    "gru": ("tiny", {"cell": "gru"}),
    "rnn": ("tiny", {"cell": "rnn"}),
    "gpt": ("gpt-tiny", {}),
    "gpt-256": ("gpt-tiny", {"context": 256, "seq_length": 256, "batch_size": 8}),
    "mingru": ("mingru-tiny", {}),
}
FINETUNED = (("lstm", ""), ("mingru", "mingru-"))  # finetune's bases, and their variants' run names' prefixes
FINETUNE_PASSES = 10  # over the small text, for every variant: the `tiny` preset's passes (the minGRU's would be 5)
VAL_TOKENS = 100_000  # each run's validation: the first 100,000 tokens of the split
LABELS = {"lstm": "LSTM 1x352", "gru": "GRU 1x352", "rnn": "SimpleRNN 1x352", "gpt": "GPT 4x128, window 64",
          "gpt-256": "GPT 4x128, window 256", "mingru": "minGRU 3x128"}


# -- runs and data --------------------------------------------------------------------------------------------

def trained(args, name, preset=None, **options):
    """The run `name` under --runs, trained for --seconds first if it has no best.keras yet."""
    run_dir = os.path.join(args.runs, name)
    if preset is None:
        preset, options = MODELS[name][0], {**MODELS[name][1], **options}
    if not os.path.exists(os.path.join(run_dir, "best.keras")):
        print(f"== training {name} ({preset}, {options or 'as the preset'}) for {args.seconds:g} s", flush=True)
        text = options.pop("text", args.text)
        data = {"text": text} if text else {"corpus": args.corpus}
        Run.train(run_dir, preset=preset, max_seconds=args.seconds, val_tokens=VAL_TOKENS, verbose=2, **data,
                  **options)
    return Run.load(run_dir)


def validation_ids(run, limit=None):
    """The run's validation split (its own text and vocabulary), at most `limit` tokens."""
    config = run.config
    _, ids = corpus.load_ids(corpus.source(config), config.tokens, vocab=run.vocab if config.tokens == "bpe" else None,
                             vocab_size=config.vocab_size, train_frac=config.train_frac)
    val = np.asarray(split(ids, config.train_frac, config.val_frac)[1][:limit], np.int32)
    return val


def evaluate(run, ids, batch=32, seq_length=64):
    """Mean validation loss (nats per token) of the run on `ids`, read as training's validation reads them."""
    model = rebuild(run.model, batch, seq_length)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return float(model.evaluate(StreamBatches(ids, batch, seq_length, what="validation"), verbose=0))


def cross_entropy(logits, targets):
    logits = logits - logits.max(axis=-1, keepdims=True)
    return np.log(np.exp(logits).sum(axis=-1)) - logits[np.arange(len(targets)), targets]


# -- reports --------------------------------------------------------------------------------------------------

def report(args, name, title, command, table, plot=None, notes=""):
    """Prints the table, writes the plot (OUT/name.png) and puts the experiment's section in --doc, between
    its markers `<!-- name -->` and `<!-- /name -->` (the prose around them stays); OUT/name.md where the doc
    has no such markers."""
    lines = markdown_table(table)
    stamp = (f"{datetime.date.today()} on {os.cpu_count()} CPUs ({cpu_name()}), Keras {keras.__version__} on "
             f"{keras.backend.backend()}")
    text = [f"### {title}", "", f"    {command}", "", f"Measured {stamp}.", "", *lines, ""]
    if plot is not None:
        path = os.path.join(args.out, f"{name}.png")
        plot.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(plot)
        image = os.path.relpath(path, os.path.dirname(args.doc) or ".").replace(os.sep, "/")
        text += [f"![{title}]({image})", ""]
    if notes:
        text += [notes, ""]
    write_section(args, name, "\n".join(text))
    print("\n".join(lines), flush=True)


def write_section(args, name, text):
    begin, end = f"<!-- {name} -->\n", f"<!-- /{name} -->"
    doc = open(args.doc, encoding="utf-8").read() if os.path.exists(args.doc) else ""
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        target, content = args.doc, head + begin + text + rest[rest.index(end):]
    else:
        target, content = os.path.join(args.out, f"{name}.md"), text
    with open(target, "w", encoding="utf-8") as f:
        f.write(content)
    print(f"rnn_to_llm: wrote {name}'s section to {target}", flush=True)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def command_line(args, *extra):
    data = f"--text {args.text}" if args.text else f"--corpus {args.corpus}"
    return " ".join(["python benchmarks/rnn_to_llm.py", args.experiment, f"--seconds {args.seconds:g}", data, *extra])


# -- context: a fixed state against a growing cache -----------------------------------------------------------

CUTS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def cut_context_losses(run, val, positions, rng, chunk=32):
    """Mean loss of predicting a token from only the k tokens before it (the RNN from its zero state), for
    each k in CUTS, at the same `positions` randomly drawn validation positions."""
    targets = rng.choice(np.arange(max(CUTS), len(val)), positions, replace=False)
    losses = []
    model = rebuild(run.model, chunk)
    for k in CUTS:
        total = 0.0
        for i in range(0, positions, chunk):
            rows = targets[i:i + chunk]
            windows = np.stack([val[t - k:t] for t in rows])
            if len(rows) < chunk:
                windows = np.concatenate([windows, np.repeat(windows[-1:], chunk - len(rows), axis=0)])
            reset_states(model)  # (a GPT has no state to reset)
            with warnings.catch_warnings():  # Keras warns of the softmax over one position at k = 1
                warnings.simplefilter("ignore", UserWarning)
                logits = keras.ops.convert_to_numpy(model(windows, training=False)[:, -1])[:len(rows)]
            total += cross_entropy(logits.astype(np.float64), val[rows]).sum()
        losses.append(total / positions)
    return losses


def state_bytes(manifest, length):
    """Bytes of state per stream after `length` tokens: the RNN's fixed state; a GPT's keys and values of the
    positions it holds (at most its window; the exported step model allocates the whole window)."""
    if manifest.doc["model"].get("type") == "gpt":
        caches = [s for s in manifest.state if s["name"].endswith(("_k", "_v"))]
        window = manifest.doc["model"]["context"]
        return sum(s["shape"][1] for s in caches) * 4 * min(length, window) // window
    return sum(s["shape"][1] for s in manifest.state) * 4


def edge_step_times(bundle, runtime, tokens, threads=1):
    """Seconds of each one-token feed of the bundle's fp32 step model on `runtime`, for `tokens` in turn."""
    step = open_step_model(read_manifest(bundle), runtime, "fp32", threads)
    step.reset()
    times = []
    for token in tokens:
        start = time.perf_counter()
        step.feed(np.asarray([token], np.int32))
        times.append(time.perf_counter() - start)
    return np.asarray(times)


def context_experiment(args):
    names = ["lstm", "gru", "rnn", "mingru", "gpt", "gpt-256"]
    runs = {name: trained(args, name) for name in names}
    losses, bundles = {}, {}
    for name, run in runs.items():
        val = validation_ids(run, VAL_TOKENS)  # the tokens the run's own validation read
        losses[name] = cut_context_losses(run, val, args.positions, np.random.default_rng(0))  # the same positions
        bundles[name] = os.path.join(args.runs, f"{name}-bundle")
        if not os.path.exists(os.path.join(bundles[name], "manifest.json")):
            subprocess.run([sys.executable, "-m", "kerasrnn", "export", run.run_dir, "--out", bundles[name]],
                           check=True, stdout=subprocess.DEVNULL)
    table = [["k (tokens of context)", *(LABELS[n] for n in names)],
             *([k, *(f"{losses[n][i]:.3f}" for n in names)] for i, k in enumerate(CUTS)),
             ["the run's validation (every position, state carried)", *(f"{runs[n].record['val_loss']:.3f}" for n in names)],
             ["steps trained", *(f"{runs[n].record['step']:,}" for n in names)]]

    lengths = [1, 16, 64, 256, 1024, 4096]
    manifests = {name: read_manifest(bundles[name]) for name in names}
    state_table = [["tokens read", *(LABELS[n] for n in names)],
                   *([n_tokens, *(f"{state_bytes(manifests[n], n_tokens):,}" for n in names)] for n_tokens in lengths)]

    runtimes = [r for r in ("onnxruntime", "ai-edge-litert") if installed_version(r)]
    positions = 1024
    timing, buckets = {}, [(0, 64), (64, 256), (256, 1024)]
    for name in names:
        tokens = validation_ids(runs[name], positions)
        for runtime in runtimes:
            timing[name, runtime] = edge_step_times(bundles[name], runtime, tokens)
    time_table = [["model", "runtime", *(f"us/token, positions {a}-{b - 1}" for a, b in buckets)],
                  *([LABELS[n], r, *(f"{np.median(timing[n, r][a:b]) * 1e6:.0f}" for a, b in buckets)]
                    for n in names for r in runtimes)]

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
    for name in names:
        left.plot(CUTS, losses[name], marker="o", label=LABELS[name])
        middle.plot(lengths, [state_bytes(manifests[name], n) for n in lengths], marker="o", label=LABELS[name])
        for runtime in runtimes[:1]:
            t = timing[name, runtime] * 1e6
            smooth = [np.median(t[i:i + 32]) for i in range(len(t) - 31)]  # a median: robust to a busy moment
            right.plot(np.arange(len(smooth)) + 16, smooth, label=f"{LABELS[name]} ({runtime})")
    left.set(xscale="log", xlabel="tokens of context (k)", ylabel="validation loss (nats/token)",
             title="loss with the context cut to the last k tokens")
    middle.set(xscale="log", yscale="log", xlabel="tokens read", ylabel="bytes of state per stream",
               title="state against context")
    right.set(xlabel="position", ylabel="µs per token (running median of 32)", title="edge sampling cost")
    for axis in (left, middle, right):
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    right.legend(fontsize=7)
    notes = (f"Loss: {args.positions} positions drawn at random from the validation tokens the runs validated on "
             f"(the first {VAL_TOKENS:,} of the split, from position {max(CUTS):,} on), the same for every k; "
             "an RNN reads the k tokens before each from its zero state, a GPT attends to them alone. The run's own "
             "validation averages over every position, each RNN stream carrying its state from batch to batch "
             "(from zeros at the start of each stream) and each GPT window of its training length starting empty.\n\n"
             "State bytes: the manifest's state tensors (float32); a GPT's keys and values of the positions it holds "
             "(at most its window; the exported step model allocates the whole window, so its cost per token is "
             "that of a full window from the first token). Edge timing: one thread, fp32, one token per call, median "
             "of each range of positions.\n\n" + table_md(state_table, "Bytes of state per stream") + "\n" +
             table_md(time_table, "Edge sampling time per token against position"))
    report(args, "context", "Context: a fixed state against a growing cache", command_line(args), table, figure, notes)


def markdown_table(table):
    header, *rows = table
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def table_md(table, title):
    return "\n".join([f"{title}:", "", *markdown_table(table), ""])


# -- length: training cost against sequence length ------------------------------------------------------------

LENGTHS = [32, 64, 128, 256, 512, 1024, 2048, 4096]
BATCH_TOKENS = 8192  # each length's batch: 8,192 tokens, B = 8,192 / T


def training_rate(model, vocab_size, batch, length, seconds):
    """Training tokens per second of `model` (compiled) on random batches of `batch` x `length` tokens: the
    best of three rounds of `seconds` / 3 each (on a shared machine, the round least disturbed)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab_size, (batch, length + 1)).astype(np.int32)
    inputs, targets = x[:, :-1], x[:, 1:]
    for _ in range(3):
        model.train_on_batch(inputs, targets)
    rates = []
    for _ in range(3):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3 or steps < 2:
            model.train_on_batch(inputs, targets)
            steps += 1
        rates.append(batch * length * steps / (time.perf_counter() - start))
    return max(rates)


def length_experiment(args):
    vocab_size = 100
    rnn, gpt, mingru = family("rnn"), family("gpt"), family("mingru")
    mingru_args = mingru.args(preset(MODELS["mingru"][0]))
    builders = {
        **{cell: lambda b, t, cell=cell: rnn.build(vocab_size, b, t, cell=cell, rnn_size=256, num_layers=1,
                                                   embedding_size=64) for cell in ("lstm", "gru", "rnn")},
        "mingru": lambda b, t: mingru.build(vocab_size, b, t, **mingru_args),
        "gpt": lambda b, t: gpt.build(vocab_size, b, t, num_layers=4, num_heads=4, width=128, context=t),
    }
    labels = {**LABELS, "lstm": "LSTM 1x256", "gru": "GRU 1x256", "rnn": "SimpleRNN 1x256",
              "gpt": "GPT 4x128, attending to all T"}
    rates = {}
    for name, build in builders.items():
        for length in LENGTHS:
            batch = BATCH_TOKENS // length
            model = build(batch, length)
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            rates[name, length] = training_rate(model, vocab_size, batch, length, args.time_per_point)
            print(f"{name} T={length}: {rates[name, length]:,.0f} tokens/s", flush=True)
    exponents = {}
    for name in builders:  # time per sequence ~ T^p: fitted over T >= 128
        ts = np.array([t for t in LENGTHS if t >= 128], float)
        per_sequence = np.array([t / rates[name, t] for t in ts])
        exponents[name] = np.polyfit(np.log(ts), np.log(per_sequence), 1)[0]
    table = [["T (batch 8,192 / T)", *(labels[n] for n in builders)],
             *([t, *(f"{rates[n, t]:,.0f}" for n in builders)] for t in LENGTHS),
             ["exponent p (time per sequence ~ T^p, T >= 128)", *(f"{exponents[n]:.2f}" for n in builders)]]
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for name in builders:
        axis.plot(LENGTHS, [rates[name, t] for t in LENGTHS], marker="o", label=f"{labels[name]} (p = {exponents[name]:.2f})")
    axis.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="training tokens per second",
             title=f"training cost against sequence length ({BATCH_TOKENS:,} tokens a batch)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    notes = ("Tokens per second of training steps (forward, backward, Adam; fp32) on random tokens, 8,192 a batch "
             f"(B = 8,192 / T), the best of three rounds of {args.time_per_point / 3:.1f} s after three warm-up "
             "steps. The recurrent cells step through T; the minGRU (the `mingru-tiny` preset's blocks) runs its "
             "products over all positions at once and its recurrence as a parallel scan; the GPT attends to all T "
             "positions (its window set to T), so its attention is T x T. O(T) is p = 1: a constant rate per "
             "token; O(T^2) is p = 2.")
    report(args, "length", "Training cost against sequence length", command_line(args), table, figure, notes)


# -- gradients: vanishing through the unroll ------------------------------------------------------------------

def input_gradient_norms(model, windows):
    """|d loss_T / d x_(T-k)|, k = 0 ... T-1, averaged over the windows: x the token embeddings, loss_T the
    loss of the token after each window (the RNN from its zero state)."""
    embedding, stack, logits_layer = model.get_layer("embedding"), core(model), model.get_layer("logits")
    inputs, targets = windows[:, :-1], windows[:, -1]
    reset_states(model)
    backend = keras.backend.backend()
    if backend == "torch":
        import torch
        x = embedding(inputs).detach().requires_grad_(True)
        logits = logits_layer(stack(x, training=False))[:, -1]
        torch.nn.functional.cross_entropy(logits, torch.as_tensor(targets, dtype=torch.long, device=x.device)).backward()
        grads = x.grad.cpu().numpy()
    elif backend == "tensorflow":
        import tensorflow as tf
        x = tf.convert_to_tensor(embedding(inputs))
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = logits_layer(stack(x, training=False))[:, -1]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
        grads = tape.gradient(loss, x).numpy()
    else:
        raise KerasrnnError(f"the gradients experiment runs on torch or tensorflow, not {backend}: "
                            "set KERAS_BACKEND=torch or tensorflow")
    return np.linalg.norm(grads * len(windows), axis=-1).mean(axis=0)[::-1]  # per window, k = 0 first


def gradients_experiment(args):
    cells, unroll, count = ["rnn", "gru", "lstm", "mingru"], 200, 32
    norms = {}
    for cell in cells:
        run = trained(args, cell)
        val = validation_ids(run, 100_000)
        starts = np.random.default_rng(0).choice(len(val) - unroll - 1, count, replace=False)
        windows = np.stack([val[s:s + unroll + 1] for s in starts])
        model = rebuild(run.model, count, unroll)
        norms[cell, "trained"] = input_gradient_norms(model, windows)
        keras.utils.set_random_seed(0)
        fresh = family(run.config.model).build(run.vocab.size, count, unroll, **build_args(run.model))
        norms[cell, "untrained"] = input_gradient_norms(fresh, windows)
    ks = [0, 1, 2, 5, 10, 20, 50, 100, 199]
    table = [["k", *(f"{LABELS[c]} {state}" for c in cells for state in ("trained", "untrained"))],
             *([k, *(f"{norms[c, s][k]:.2e}" for c in cells for s in ("trained", "untrained"))] for k in ks)]

    truncations = [4, 16, 64, 256]
    truncation_runs = {t: trained(args, f"lstm-T{t}", "tiny", seq_length=t) for t in truncations}
    truncation_table = [["BPTT length T", "steps in the budget", "best validation loss"],
                        *([t, f"{r.record['step']:,}", f"{r.record['val_loss']:.4f}"] for t, r in truncation_runs.items())]

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for cell, color in zip(cells, ("C0", "C1", "C2", "C3")):
        for state, style in (("trained", "-"), ("untrained", ":")):
            left.plot(np.arange(1, unroll + 1), norms[cell, state], style, color=color, label=f"{LABELS[cell]}, {state}")
    left.set(yscale="log", xscale="log", xlabel="k (steps back)", ylabel="|d loss_t / d x_(t-k)|",
             title="gradient reaching k steps back")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    right.plot(truncations, [r.record["val_loss"] for r in truncation_runs.values()], marker="o")
    right.set(xscale="log", xlabel="truncated BPTT length T", ylabel="best validation loss",
              title=f"{LABELS['lstm']}, {args.seconds:g} s each")
    right.grid(alpha=0.3)
    notes = (f"Gradients: {count} windows of {unroll} validation tokens, from the zero state; the norm of the "
             "gradient of the last token's loss with respect to each input embedding, mean over the windows. "
             "Untrained: the same architecture, freshly initialized.\n\n" +
             table_md(truncation_table, f"Truncation: the `tiny` LSTM trained {args.seconds:g} s at each T "
                                        "(batch 32; the state still carries across batches)"))
    report(args, "gradients", "Vanishing gradients, and what truncation costs", command_line(args), table,
           figure, notes)


# -- tokens: bytes, characters, subwords ----------------------------------------------------------------------

def tokens_experiment(args):
    runs = {}
    for name, label in (("lstm", "LSTM"), ("mingru", "minGRU")):
        preset_name = MODELS[name][0]
        runs.update({f"{label} byte": trained(args, f"{name}-byte", preset_name, tokens="byte"),
                     f"{label} char": trained(args, name),
                     f"{label} bpe 1024": trained(args, f"{name}-bpe", preset_name, tokens="bpe", vocab_size=1024)})
    rows = []
    for name, run in runs.items():
        val = validation_ids(run, run.config.val_tokens)
        loss, per_character = run.record["val_loss"], tokens_per_character(run.vocab, val)
        rows.append([name, run.vocab.size, run.record["step"], f"{loss:.4f}",
                     f"{per_character:.3f}", f"{loss * per_character / math.log(2):.3f}",
                     run.sample("", 160, temperature=0.8, seed=1).replace("\n", "⏎").replace("|", "\\|")])
    table = [["tokens", "vocabulary", "steps", "best val loss (nats/token)", "tokens per character",
              "bits per character", "sample (temperature 0.8, seed 1)"], *rows]
    figure, axis = plt.subplots(figsize=(5.5, 4))
    axis.bar([r[0] for r in rows], [float(r[5]) for r in rows])
    axis.set(ylabel="validation bits per character", title=f"{LABELS['lstm']} and {LABELS['mingru']}, "
                                                          f"{args.seconds:g} s each")
    axis.tick_params(axis="x", labelrotation=30)
    report(args, "tokens", "Byte, character and subword tokens at equal time", command_line(args), table, figure)


# -- finetune: style against knowledge -----------------------------------------------------------------------

def finetune_experiment(args):
    small = {"text": args.small_text, "max_epochs": FINETUNE_PASSES}
    rows, figure = [], plt.figure(figsize=(7, 4.2))
    axis = figure.add_subplot()
    for (name, prefix), color in zip(FINETUNED, ("C0", "C3")):
        base, preset_name, label = trained(args, name), MODELS[name][0], LABELS[name]
        variants = {
            "from scratch": trained(args, f"{prefix}small-scratch", preset_name, **small),
            "fine-tuned": trained(args, f"{prefix}small-finetuned", preset_name, init_from=base.run_dir, **small),
            "fine-tuned, --freeze 0": trained(args, f"{prefix}small-freeze", preset_name, init_from=base.run_dir,
                                              freeze="0", **small),
            "fine-tuned, --replay 0.25": trained(args, f"{prefix}small-replay", preset_name, init_from=base.run_dir,
                                                 replay=0.25, **small),
        }
        base_val = validation_ids(base, VAL_TOKENS)
        before = evaluate(base, base_val)
        rows.append([f"{label}: base run (before)", "-", "-", f"{before:.4f}", sample_of(base)])
        for variant, run in variants.items():
            forgotten = None if run.vocab.missing(base.vocab) else evaluate(run, run.vocab.recode(base_val, base.vocab))
            rows.append([f"{label}: {variant}", f"{run.record['step']:,} in {run.history[-1]['seconds']:.0f} s",
                         f"{run.record['val_loss']:.4f}",
                         f"{forgotten:.4f}" if forgotten is not None else "its vocabulary lacks the corpus's characters",
                         sample_of(run)])
            if forgotten is not None:
                axis.scatter(forgotten, run.record["val_loss"], s=50, color=color)
                axis.annotate(variant, (forgotten, run.record["val_loss"]), fontsize=7, xytext=(4, 4),
                              textcoords="offset points")
        axis.axvline(before, color=color, ls=":", label=f"{label}: the base run on the corpus")
        axis.axhline(variants["from scratch"].record["val_loss"], color=color, ls="--",
                     label=f"{label}: trained from scratch on the small text")
    table = [["run", "steps (best)", "small text: best val loss", "corpus: val loss", "sample (temperature 0.8, seed 1)"],
             *rows]
    axis.set(xlabel="corpus validation loss (what is forgotten: right is worse)",
             ylabel="small text validation loss (what is gained: lower is better)", title="style against knowledge")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the plot, off its points
    notes = (f"Bases: the `tiny` LSTM and the `mingru-tiny` minGRU on the corpus, {args.seconds:g} s each. Small text: "
             f"{os.path.relpath(args.small_text, REPO)} ({os.path.getsize(args.small_text):,} bytes), 90/10 split; each "
             f"variant trains on it for {args.seconds:g} s or {FINETUNE_PASSES} passes, whichever ends first. "
             "`--freeze 0` freezes the LSTM's one layer, the minGRU's first of three blocks. Corpus loss: the first "
             "100,000 tokens of the corpus's validation split (the base run's own validation).")
    report(args, "finetune", "Fine-tuning: style against knowledge", command_line(args), table, figure, notes)


def sample_of(run):
    return run.sample("", 200, temperature=0.8, seed=1).replace("\n", "⏎").replace("|", "\\|")


EXPERIMENTS = {"context": context_experiment, "length": length_experiment, "gradients": gradients_experiment,
               "tokens": tokens_experiment, "finetune": finetune_experiment}


def main():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="experiments:\n" + __doc__.split("\n\n")[2])
    parser.add_argument("experiment", choices=EXPERIMENTS)
    parser.add_argument("--seconds", type=positive(float), default=60, help="training time of each run (default 60)")
    parser.add_argument("--corpus", default="python-stdlib", help="a named corpus (default python-stdlib)")
    parser.add_argument("--text", help="a text file, directory or archive instead of --corpus")
    parser.add_argument("--small-text", default=SMALL_TEXT, help="finetune: the small text of another style")
    parser.add_argument("--runs", default="runs/rnn-to-llm", help="where the runs go, reused when there")
    parser.add_argument("--out", default="docs/rnn-to-llm", help="where the plots go")
    parser.add_argument("--doc", default="docs/rnn-to-llm.md", help="the page whose sections the tables replace")
    parser.add_argument("--positions", type=positive(int), default=512, help="context: validation positions per k")
    parser.add_argument("--time-per-point", type=positive(float), default=3.0, help="length: seconds timed per (model, T)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    EXPERIMENTS[args.experiment](args)


if __name__ == "__main__":
    with one_line_errors():
        main()
