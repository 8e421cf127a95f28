"""The command line: kerasrnn train | sample | export | inspect | serve-web | corpus | demo. User errors are one line,
exit code 2; a training stopped by a signal says how to resume in one line, exit code 128 + the signal's
number."""
import argparse
import contextlib
import dataclasses
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off stderr

from kerasrnn_edge.beam import add_beam_options  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, UserError, one_line_errors  # noqa: E402
from kerasrnn_edge.samples import add_many_samples_options  # noqa: E402

from .config import PRESETS, Config  # noqa: E402
from .run import check_run_dir  # noqa: E402
from .startup import choose_backend, import_keras_quietly  # noqa: E402

TRAIN_HELP = {
    "text": "train on this file, or the files of this directory or .tar, .tar.gz, .tar.xz or .zip archive, "
            "joined in sorted path order with a line break between two files (any text; any file in byte mode)",
    "include": "repeatable: take only the files of --text matching this glob (one without / matches the file "
               "name, one with / the path inside the directory or archive), e.g. --include '*.c' --include '*.h'",
    "corpus": "without --text, a named corpus (kerasrnn corpus list): python-stdlib (embedded, offline), "
              "shakespeare (downloaded once), linux (apt-get install linux-source-6.1), names (pip install names)",
    "tokens": "char: Unicode code points of UTF-8 text; byte: the 256 byte values; bpe: subword pieces "
              "(SentencePiece BPE, byte fallback: lossless) learned from the training part of UTF-8 text",
    "vocab_size": "bpe: how many pieces to learn, 256 byte pieces and an unknown piece included",
    "train_frac": "fraction of the text for training (from the start)",
    "val_frac": "fraction for validation (after the training part); the rest is the test split",
    "val_tokens": "validate on at most this many tokens (the start of the validation part), so that validation "
                  "costs the same on a corpus of any size; 0: all of it",
    "model": "rnn: the stateful recurrent stack; gpt: a decoder-only transformer (--num-layers blocks, "
             "--embedding-size wide, --num-heads, --context); mingru, minlstm: minimal GRU or LSTM blocks, parallel "
             "over time in training (--num-layers blocks, --embedding-size wide, --expansion, --conv)",
    "expansion": "mingru, minlstm: the recurrence's width, a multiple of --embedding-size",
    "conv": "mingru, minlstm: true: a causal depthwise convolution of width 3 before each block's recurrence",
    "num_heads": "gpt: attention heads", "context": "gpt: the attention window in tokens: each position sees the "
                                                    "last CONTEXT ones, and the exported step model caches them",
    "cell": "recurrent cell: lstm, gru or rnn", "rnn_size": "units per recurrent layer",
    "num_layers": "recurrent layers", "embedding_size": "token embedding size",
    "dropout": "dropout after each recurrent layer", "input_dropout": "dropout on the token embeddings",
    "locked_dropout": "true: one dropout mask per sequence for all its steps (variational dropout)",
    "fused": "run the stack as one call of a fused kernel: torch (LSTM, GRU), JAX on a GPU (LSTM); false: one call per layer",
    "ema": "average the weights (this momentum, e.g. 0.999) for validation, best.keras and export; 0: off",
    "batch_size": "parallel streams (B)", "seq_length": "steps of backprop through time per batch (T)",
    "optimizer": "adam, adamw or rmsprop", "learning_rate": "peak learning rate",
    "lr_schedule": "exponential (char-rnn), cosine (to 10%%) or constant",
    "lr_decay": "exponential schedule: factor per epoch", "lr_decay_after": "exponential schedule: first epoch to decay",
    "warmup_steps": "linear warmup steps", "weight_decay": "adamw weight decay",
    "rmsprop_decay": "rmsprop moving-average decay", "grad_clip": "clip the global gradient norm (0: off)",
    "max_epochs": "passes over the training text", "max_seconds": "stop after this much wall time (0: no limit)",
    "eval_every": "validate and checkpoint about every N steps",
    "patience": "early stopping: validations without improvement (0: off)", "seed": "random seed",
    "init_from": "fine-tune: start from the best weights of this run directory (same model shape); the text "
                 "may hold new characters: the vocabulary grows, old ids kept",
    "freeze": "fine-tune: leave these layers untrained, comma-separated: embedding, a recurrent layer's index "
              "(0, 1, ...), output; e.g. embedding,0",
    "replay": "fine-tune: this fraction of the training batches (0 <= f < 1) from --init-from's own text, "
              "interleaved, each from the zero state (so that the model keeps what it knew)",
    "steps_per_execution": "training steps per compiled call (faster on GPU; torch runs one step per call)",
    "sample_every": "save a 200-character sample every N steps to samples.jsonl and TensorBoard (0: never)",
    "precision": "the training steps' arithmetic: bf16 (mixed; torch only), fp32, or auto: bf16 on torch on a CPU "
                 "with bfloat16 instructions (avx512_bf16, amx_bf16), fp32 elsewhere; checkpoints stay fp32",
}


def add_train_options(parser):
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        kind = {bool: parse_bool, type(None): str}.get(type(field.default), type(field.default))
        repeatable = {"action": "append"} if field.name == "include" else {}
        parser.add_argument(flag, type=kind, default=None, metavar=field.name.upper(), **repeatable,
                            help=f"{TRAIN_HELP[field.name]} (default: from the preset; tiny: "
                                 f"{PRESETS['tiny'].get(field.name, field.default)})")


def parse_bool(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_sample_options(parser):
    parser.add_argument("--prime", default="", help="text to start from (default: none)")
    parser.add_argument("--length", type=int, default=500, help="tokens to generate (default 500)")
    parser.add_argument("--temperature", type=float, default=1.0, help="> 0; lower is more conservative (default 1)")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens (0: all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="sample within this probability mass (1: all)")
    parser.add_argument("--argmax", action="store_true", help="always take the likeliest token")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same text")


def make_parser():
    parser = ArgumentParser(prog="kerasrnn", description="Character-level RNN language models with Keras.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a model (or resume a run)",
        description="Trains a model, or resumes a run, on the Keras backend KERAS_BACKEND names: tensorflow, jax or "
                    "torch. Unset, torch where PyTorch is installed (pip install \"kerasrnn[torch]\") on a Linux "
                    "machine with no GPU, as the fastest there: its LSTM, GRU or SimpleRNN stack runs as PyTorch's own fused "
                    "kernel, faster than TensorFlow on a CPU (docs/benchmarks.md); otherwise Keras's default, "
                    "tensorflow. On a CPU busy with other work, OMP_WAIT_POLICY=PASSIVE or "
                    "KERAS_BACKEND=tensorflow is faster.")
    train.add_argument("--preset", help=f"base settings: {', '.join(PRESETS)} (default tiny; for a GPT, gpt-tiny); "
                                        "--init-from takes its run's model, shape and tokens unless given")
    train.add_argument("--run-dir", default="runs/default", help="where checkpoints and logs go (default runs/default)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from last.keras")
    add_train_options(train)
    parallel = train.add_argument_group("data-parallel training on JAX (docs/scaling.md)")
    parallel.add_argument("--devices", help="split the streams across all (or this many) of each process's devices")
    parallel.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, to train as several "
                          "processes (default: KERAS_DISTRIBUTION_JOB_ADDRESSES or JAX_COORDINATOR_ADDRESS)")
    parallel.add_argument("--num-processes", type=int, help="processes in the run (default: KERAS_DISTRIBUTION_NUM_PROCESSES)")
    parallel.add_argument("--process-id", type=int, help="this process's number, 0 writes the run directory "
                                                         "(default: KERAS_DISTRIBUTION_PROCESS_ID)")

    sample = commands.add_parser("sample", help="generate text from a trained run")
    sample.add_argument("run_dir", help="a run directory made by kerasrnn train")
    sample.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which weights (default best)")
    add_sample_options(sample)
    add_many_samples_options(sample)  # kerasrnn-edge sample has the same
    add_beam_options(sample)
    sample.add_argument("--novel", action="store_true",
                        help="print only samples not found in the run's training text (with --until: not a whole "
                             "piece of it, e.g. a whole line for \"\\n\"; without: not anywhere in it); the count "
                             "of novel samples goes to stderr")

    export = commands.add_parser("export", help="write an edge bundle (TFLite, ONNX), a web sampler and/or a "
                                                 "TF Serving SavedModel")
    export.add_argument("run_dir", help="a run directory made by kerasrnn train")
    export.add_argument("--out", help="edge bundle directory to write")
    export.add_argument("--batch", type=int, metavar="N",
                        help="also write batch models for kerasrnn-edge sample --num-samples: TFLite at N streams, "
                             "ONNX at any number (default: none; the batch-1 files then run the streams one by one)")
    export.add_argument("--web", metavar="DIR", help="write a static web sampler (onnxruntime-web) to DIR")
    export.add_argument("--micro", metavar="DIR", help="write a full-integer model for TensorFlow Lite for "
                                                      "Microcontrollers, as a bundle and C sources, to DIR (docs/micro.md)")
    export.add_argument("--serving", metavar="BASE_DIR", help="write a SavedModel to BASE_DIR/NAME/VERSION (TF Serving)")
    export.add_argument("--name", default="kerasrnn", help="the served model's name (default kerasrnn)")
    export.add_argument("--max-length-cap", type=int, default=1000, help="largest max_length a request may ask for")
    export.add_argument("--unknown", choices=("error", "skip"), default="error",
                        help="prompt characters outside the vocabulary: reject the request, or drop them")
    export.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which weights (default best)")

    serve_web = commands.add_parser("serve-web", help="serve a web sampler (kerasrnn export --web) on 127.0.0.1")
    serve_web.add_argument("dir", help="the site directory written by kerasrnn export RUN --web DIR")
    serve_web.add_argument("--port", type=int, default=8000, help="default 8000 (0: any free port)")

    inspect = commands.add_parser("inspect", help="an HTML report of what the network learned")
    inspect.add_argument("run_dir", help="a run directory made by kerasrnn train")
    source = inspect.add_mutually_exclusive_group()
    source.add_argument("--text", metavar="FILE", help="read this text (default: the run's validation split)")
    source.add_argument("--split", choices=("train", "val", "test"), default="val", help="read this part of the run's text")
    inspect.add_argument("--chars", type=int, default=2000, help="characters to read (default 2000)")
    inspect.add_argument("--out", help="the report's path (default RUN_DIR/report.html)")
    inspect.add_argument("--lstmvis", metavar="DIR", help="also write the states for LSTMVis to DIR")
    inspect.add_argument("--skip-unknown", action="store_true", help="leave out characters outside the vocabulary")
    inspect.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which weights (default best)")

    corpus = commands.add_parser("corpus", help="the named corpora: list them, get one's text")
    corpus_commands = corpus.add_subparsers(dest="corpus_command", required=True)
    corpus_commands.add_parser("list", help="each named corpus: what it is, where it comes from, whether it is here")
    get = corpus_commands.add_parser("get", help="write a named corpus's text to a file, or say where it is")
    get.add_argument("name", help="a name kerasrnn corpus list prints")
    get.add_argument("--out", metavar="FILE", help="write the text here (default: print where it is)")

    demo = commands.add_parser("demo", help="train a small model on Python's own source code, then sample")
    demo.add_argument("--run-dir", default="runs/demo", help="where the run goes (default runs/demo)")
    demo.add_argument("--seconds", type=float, default=120, help="training time budget (default 120)")
    return parser


RUN = "a run directory made by kerasrnn train"
FOLDERS = {  # each command's arguments that name a directory: what to pass there (not a file)
    "train": {"--run-dir": "a directory for the run (made if missing)", "--init-from": RUN},
    "demo": {"--run-dir": "a directory for the run (made if missing)"},
    "sample": {"RUN_DIR": RUN},
    "export": {"RUN_DIR": RUN, "--out": "a directory for the bundle (made if missing)",
               "--web": "a directory for the web sampler (made if missing)",
               "--micro": "a directory for the micro bundle (made if missing)",
               "--serving": "a base directory for the SavedModel (made if missing)"},
    "inspect": {"RUN_DIR": RUN, "--lstmvis": "a directory for LSTMVis's files (made if missing)"},
    "serve-web": {"DIR": "the directory kerasrnn export RUN --web DIR wrote"},
}


def check_folders(args):
    """An argument that names a directory may not name a file, nor a path inside one: refused before
    anything is read or written."""
    for label, what in FOLDERS.get(args.command, {}).items():
        path = getattr(args, label.lstrip("-").replace("-", "_").lower())
        if not path:
            continue
        existing = os.path.abspath(path)
        while not os.path.exists(existing):  # the nearest part of the path that exists ("/" does)
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            named = f"{label} {path}" if label.startswith("--") else path
            where = "is a file" if existing == os.path.abspath(path) else f"is inside {existing}, a file"
            raise UserError(f"{named} {where}: pass {what}")


def train_config(args):
    """The preset (or, resuming, the saved config) overridden by the options given explicitly."""
    from .run import run_config
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    return run_config(args.run_dir, args.preset, args.resume, overrides)


def run(args):
    check_folders(args)
    if args.command == "serve-web":  # needs neither Keras nor TensorFlow
        from .serve_web import serve
        return serve(args.dir, args.port)
    if args.command == "train":
        return train_command(args)
    if args.command == "corpus":  # needs no Keras (but shakespeare's download)
        from . import corpus
        if args.corpus_command == "list":
            print("\n".join(corpus.list_corpora()))
        else:
            print(corpus.get_corpus(args.name, args.out))
        return
    if args.command in ("sample", "export", "inspect"):
        check_run_dir(args.run_dir)  # a mistyped directory says so at once, before Keras loads
    import_keras_quietly(tensorflow_too=args.command in ("export", "demo"))
    if args.command == "sample":
        sample_command(args)
    elif args.command == "export":
        export(args)
    elif args.command == "inspect":
        if args.chars < 2:
            raise UserError(f"--chars must be at least 2 (got {args.chars})")
        from .inspect.main import inspect_run
        inspect_run(args.run_dir, args.text, args.split, args.chars, args.out, args.lstmvis, args.skip_unknown,
                    args.checkpoint)
    elif args.command == "demo":
        demo(args.run_dir, args.seconds)


def sample_command(args):
    """One sample streams as it is made; several (or --until, --novel) are one batch, printed at the end."""
    from kerasrnn_edge.beam import check_beam_args
    from kerasrnn_edge.samples import parse_until
    from kerasrnn_edge.sampling import check_stop
    if args.num_samples < 1:
        raise UserError(f"--num-samples must be >= 1 (got {args.num_samples})")
    until = parse_until(args.until)
    stop = check_stop([parse_until(s, "--stop") for s in args.stop])
    check_beam_args(args, until, args.novel)

    from .sample import sample, sample_beam, sample_many
    if args.beam is not None:
        return sample_beam(args.run_dir, args.prime, args.length, args.beam, args.length_penalty, stop,
                           args.show_beams, which=args.checkpoint)
    if args.num_samples == 1 and not until and not args.novel:
        return sample(args.run_dir, args.prime, args.length, args.temperature, args.top_k, args.top_p, args.seed,
                      args.argmax, which=args.checkpoint, stop=stop)
    sample_many(args.run_dir, args.prime, args.length, args.temperature, args.top_k, args.top_p, args.seed,
                args.argmax, which=args.checkpoint, num_samples=args.num_samples, until=until, novel=args.novel,
                stop=stop)


def train_command(args):
    """A run directory that exists may be in use: its lock (which train() takes too) is taken before the
    slow import of Keras, so that a second writer is refused at once (not by a process of a distributed run:
    only process 0 takes it, once the processes have joined)."""
    from .distribute import Launch
    from .run import locked
    launch = Launch(args.devices, args.coordinator, args.num_processes, args.process_id)
    with locked(args.run_dir) if os.path.isdir(args.run_dir) and not launch.requested else contextlib.nullcontext():
        import_keras_quietly(tensorflow_too=True)
        from .train import train
        train(train_config(args), args.run_dir, resume=args.resume, launch=launch)


def export(args):
    if not (args.out or args.web or args.serving or args.micro):
        raise UserError("say what to write: --out BUNDLE_DIR (edge bundle), --web DIR (web sampler), "
                        "--serving BASE_DIR (TF Serving), --micro DIR (microcontrollers), or several")
    if args.batch is not None and not (args.batch >= 1 and args.out):
        raise UserError(f"--batch must be >= 1 and goes with --out (got --batch {args.batch})")
    if args.web:
        from kerasrnn_export.web import runtime_dir
        runtime_dir()  # npm's problems before the conversions
    if args.out or args.web:
        from .export import export_bundle
        with tempfile.TemporaryDirectory() as tmp:
            export_bundle(args.run_dir, args.out or tmp, which=args.checkpoint, batch=args.batch)
            if args.out:
                print(f"kerasrnn: wrote the edge bundle to {args.out}")
            if args.web:
                from kerasrnn_export.web import write_site
                write_site(args.out or tmp, args.web)
                print(f"kerasrnn: wrote the web sampler to {args.web}; try it: kerasrnn serve-web {args.web}")
    if args.serving:
        from .export import export_serving
        path = export_serving(args.run_dir, args.serving, name=args.name, which=args.checkpoint,
                              max_length_cap=args.max_length_cap, unknown=args.unknown)
        print(f"kerasrnn: wrote the SavedModel to {path}")
    if args.micro:
        from .export import export_micro
        micro = export_micro(args.run_dir, args.micro, which=args.checkpoint)["micro"]
        loss = micro["validation"]
        print(f"kerasrnn: wrote the micro bundle to {args.micro} (C sources in {os.path.join(args.micro, 'c')}): "
              f"arena {micro['arena_bytes']:,} bytes; validation {loss['integer']:.4f} nats/token full-integer, "
              f"{loss['fp32']:.4f} float, over {loss['tokens']:,} tokens")


def demo(run_dir, seconds):
    """The README's first command: a small model on Python's standard library, a sample from it, then
    the same model exported to an edge bundle and sampled there without TensorFlow's help."""
    from kerasrnn_edge import cli as edge_cli

    from .export import export_bundle
    from .config import preset
    from .sample import sample
    from .train import train
    config = dataclasses.replace(preset("tiny"), corpus="python-stdlib", max_seconds=seconds)
    train(config, run_dir, resume=os.path.exists(os.path.join(run_dir, "last.keras")))
    settings = dict(prime="def ", length=300, temperature=0.7, seed=1)
    print("\nkerasrnn: a sample from the best checkpoint (Keras):\n")
    sample(run_dir, **settings)
    bundle = os.path.join(run_dir, "bundle")
    export_bundle(run_dir, bundle)
    print(f"\nkerasrnn: exported the edge bundle to {bundle}; the same sample from its TFLite model:\n")
    edge_cli.main(["sample", bundle, "--prime", settings["prime"], "--length", str(settings["length"]),
                   "--temperature", str(settings["temperature"]), "--seed", str(settings["seed"])])


def main(argv=None):
    args = make_parser().parse_args(argv)
    choose_backend(args.command)
    if args.command == "inspect":
        # before numpy loads: the recurrence is thousands of small matrix-vector products, which BLAS threads
        # slow down (30x measured on a busy 2-core machine) rather than speed up
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with one_line_errors("kerasrnn"):
        run(args)
