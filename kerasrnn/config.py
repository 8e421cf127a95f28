"""Training configuration: plain values, presets, and the checks that turn bad values into one line."""
import dataclasses
import json

from kerasrnn_edge.errors import MissingPath, UserError, option


@dataclasses.dataclass
class Config:
    """Every training setting, one field per `kerasrnn train` option (saved as a run's config.json).

    Example:

        config = dataclasses.replace(kerasrnn.preset("tiny"), text="input.txt", max_seconds=300).check()
    """

    # data
    text: str = None              # the training text: a file, directory or archive; None: `corpus`
    include: list = None          # globs choosing the files of a `text` directory or archive
    corpus: str = "python-stdlib"  # a named corpus (corpus.NAMED): python-stdlib, shakespeare, linux, names
    tokens: str = "char"          # "char": Unicode code points; "byte": 256 byte values, any file;
                                  # "bpe": subword pieces learned from the training part (kerasrnn/subword.py)
    vocab_size: int = 1024        # bpe: the pieces to learn (256 byte pieces and the unknown one included)
    train_frac: float = 0.9
    val_frac: float = 0.1         # the rest after train and val is the test split
    val_tokens: int = 500_000     # validation reads at most this many tokens of its split (0: all)
    # model
    model: str = "rnn"            # the model family (kerasrnn/models/): rnn, the stateful recurrent stack; gpt, a
                                  # decoder-only transformer; mingru or minlstm, recurrences parallel over time;
                                  # or one registered (models.register)
    cell: str = "lstm"            # lstm | gru | rnn
    rnn_size: int = 128
    num_layers: int = 2
    embedding_size: int = 64
    dropout: float = 0.0          # after each recurrent layer
    input_dropout: float = 0.0    # on the token embeddings
    locked_dropout: bool = False  # one dropout mask per sequence, shared by its time steps (variational)
    fused: bool = True            # JAX + GPU: one cuDNN call for the whole LSTM stack
    num_heads: int = 4            # gpt: attention heads (embedding_size is the width, num_layers the blocks)
    context: int = 64             # gpt: the attention window, the step model's cache (export/SPEC.md)
    expansion: float = 1.5        # mingru, minlstm: the recurrence's width over embedding_size
    conv: bool = False            # mingru, minlstm: a causal depthwise convolution (width 3) before each block
    # truncated BPTT
    batch_size: int = 50          # parallel streams
    seq_length: int = 50          # steps per batch
    # optimisation
    optimizer: str = "adam"       # adam | adamw | rmsprop
    learning_rate: float = 2e-3
    lr_schedule: str = "exponential"  # exponential (char-rnn) | cosine | constant
    lr_decay: float = 0.97        # exponential: factor per epoch once past lr_decay_after
    lr_decay_after: int = 10      # epochs
    warmup_steps: int = 0
    weight_decay: float = 0.0     # adamw only
    rmsprop_decay: float = 0.95   # rmsprop only
    grad_clip: float = 5.0        # global gradient norm; 0 turns clipping off
    ema: float = 0.0              # weight averaging: momentum of the weights' moving average, which
                                  # validation, best.keras and export use; 0 turns it off
    # schedule
    max_epochs: int = 50
    max_seconds: float = 0.0      # 0: no time budget
    eval_every: int = 1000        # validate and checkpoint every N steps (at most once per epoch)
    patience: int = 0             # stop after N validations without improvement; 0: never
    seed: int = 123
    init_from: str = None         # run directory whose best weights start this run (kerasrnn/finetune.py)
    freeze: str = None            # fine-tuning: layers left untrained, comma-separated: embedding, 0, 1, ..., output
    replay: float = 0.0           # fine-tuning: this fraction of the training batches from init_from's text
    steps_per_execution: int = 1
    sample_every: int = 0         # save a sample every N steps (samples.jsonl, TensorBoard); 0: never
    precision: str = "auto"       # auto | fp32 | bf16: the training steps' (backends.set_precision)

    def check(self):
        from .corpus import NAMED  # corpus imports run, which imports this module
        from .models import family, names
        positive = ["rnn_size", "num_layers", "num_heads", "context", "embedding_size", "batch_size", "seq_length",
                    "expansion", "max_epochs", "eval_every", "steps_per_execution"]
        for name in positive:
            if not getattr(self, name) > 0:
                raise UserError(f"{option(name)} must be positive (got {getattr(self, name)})")
        for name in ["learning_rate", "train_frac", "val_frac"]:
            if not getattr(self, name) > 0:
                raise UserError(f"{option(name)} must be > 0 (got {getattr(self, name)})")
        for name in ["max_seconds", "patience", "warmup_steps", "weight_decay", "grad_clip", "lr_decay_after",
                     "sample_every", "val_tokens"]:
            if getattr(self, name) < 0:
                raise UserError(f"{option(name)} must be >= 0 (got {getattr(self, name)})")
        for name in ["dropout", "input_dropout", "ema", "replay"]:
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"{option(name)} must be in [0, 1) (got {getattr(self, name)})")
        if self.include and not self.text:
            raise UserError(f"{option('include')} chooses files of {option('text')}: pass a directory or an archive "
                            f"as {option('text')} with it")
        if self.train_frac + self.val_frac > 1 + 1e-9:
            raise UserError(f"{option('train_frac')} + {option('val_frac')} must be at most 1 "
                            f"(got {self.train_frac + self.val_frac})")
        if self.tokens == "bpe" and self.vocab_size <= 257:
            raise UserError(f"{option('vocab_size')} must be more than 257, the byte pieces and the unknown "
                            f"piece (got {self.vocab_size})")
        choices = {"model": names(), "tokens": ("char", "byte", "bpe"),
                   "optimizer": ("adam", "adamw", "rmsprop"), "lr_schedule": ("exponential", "cosine", "constant"),
                   "corpus": tuple(NAMED), "precision": ("auto", "fp32", "bf16")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"{option(name)} must be one of {', '.join(allowed)} "
                                f"(got {getattr(self, name)!r})")
        family(self.model).check(self)
        for name in ("freeze", "replay"):
            if getattr(self, name) and not self.init_from:
                raise UserError(f"{option(name)} goes with fine-tuning: pass {option('init_from', 'RUN_DIR')} too")
        self.frozen()
        if self.replay and self.steps_per_execution > 1:
            raise UserError(f"{option('replay')} swaps the recurrent state around each replay batch, between steps: "
                            f"pass {option('steps_per_execution', 1)}")
        return self

    def frozen(self):
        """The layers `freeze` names, checked: "embedding", the core's layer indices (int), "output"."""
        from .models import family
        if not self.freeze:
            return []
        valid = ["embedding", *family(self.model).layer_names(self), "output"]
        names = [name.strip() for name in self.freeze.split(",")]
        unknown = [name for name in names if name not in valid]
        if unknown:
            raise UserError(f"{option('freeze')} names layers among {', '.join(valid)} "
                            f"(got {', '.join(map(repr, unknown))})")
        if set(valid) <= set(names):
            raise UserError(f"{option('freeze', self.freeze)} leaves nothing to train: leave a layer out")
        return [int(name) if name.isdigit() else name for name in dict.fromkeys(names)]

    def model_args(self):
        """The builder's arguments of the model family `model` names (Family.args)."""
        from .models import family
        return family(self.model).args(self)

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in known})


def check_unread_options(given, config):
    """Refuses, in one line, options `given` (those set explicitly) that the run's `config` would not read: those
    only another model family reads (`--num-heads` for an RNN, `--cell` for a GPT), `--vocab-size` without bpe."""
    from .models import families
    own = next((f.options for f in families() if f.name == config.model), ())
    stray = list(dict.fromkeys(name for f in families() if f.name != config.model for name in f.options
                               if name in given and name not in own))
    if stray:
        raise UserError(f"{', '.join(option(name) for name in stray)} {'is' if len(stray) == 1 else 'are'} not "
                        f"read by {option('model', config.model)}: leave {'it' if len(stray) == 1 else 'them'} out")
    if "vocab_size" in given and config.tokens != "bpe":
        raise UserError(f"{option('vocab_size')} is read with {option('tokens', 'bpe')} only: leave it out, or pass "
                        f"{option('tokens', 'bpe')}")


PRESETS = {
    # Five minutes on a 2-core CPU: ten passes over tiny-shakespeare, the cosine's span, in bf16. Dropout, weight
    # decay and weight averaging let a wider LSTM than fits the text train that long without overfitting
    # (the settings tried: docs/benchmarks.md, "Training quality").
    "tiny": dict(cell="lstm", rnn_size=352, num_layers=1, embedding_size=64, dropout=0.35, ema=0.99, batch_size=32,
                 seq_length=64, optimizer="adamw", weight_decay=0.1, learning_rate=4e-3, lr_schedule="cosine",
                 warmup_steps=50, max_epochs=10, eval_every=400),
    # char-rnn's defaults (train.lua): 2x128 LSTM, batch 50, seq 50, RMSprop 2e-3, decay 0.97 after
    # epoch 10, clip 5, 50 epochs, 95/5 split, validation every 1000 steps, seed 123.
    "char-rnn": dict(cell="lstm", rnn_size=128, num_layers=2, embedding_size=64, dropout=0.0, batch_size=50,
                     seq_length=50, optimizer="rmsprop", learning_rate=2e-3, rmsprop_decay=0.95,
                     lr_schedule="exponential", lr_decay=0.97, lr_decay_after=10, grad_clip=5.0, max_epochs=50,
                     train_frac=0.95, val_frac=0.05, eval_every=1000, seed=123),
    # For one GPU: the PyTorch reference's 3x1024 (1.430 there with plain dropout 0.35), with the
    # regularizers that measured best on the CPU proxy (docs/benchmarks.md): locked dropout, dropout on
    # the embeddings, weight averaging. Not yet measured with kerasrnn on a GPU.
    "shakespeare": dict(cell="lstm", rnn_size=1024, num_layers=3, embedding_size=256, dropout=0.35,
                        input_dropout=0.2, locked_dropout=True, ema=0.99,
                        batch_size=128, seq_length=128, optimizer="adamw", learning_rate=2e-3, weight_decay=0.1,
                        lr_schedule="cosine", warmup_steps=200, grad_clip=1.0, max_epochs=60, eval_every=100,
                        patience=8, steps_per_execution=16),
    # A small GPT for the same minutes on a 2-core CPU, beside `tiny` (docs/benchmarks.md, "GPT").
    "gpt-tiny": dict(model="gpt", num_layers=4, num_heads=4, embedding_size=128, context=64, dropout=0.0,
                     batch_size=32, seq_length=64, optimizer="adamw", learning_rate=2e-3, weight_decay=0.1,
                     lr_schedule="cosine", warmup_steps=100, grad_clip=1.0, ema=0.99, max_epochs=5,
                     eval_every=250),
    # minGRU blocks for the same minutes on a 2-core CPU, beside `tiny` and `gpt-tiny` (docs/benchmarks.md, "minGRU");
    # --model minlstm takes it too.
    "mingru-tiny": dict(model="mingru", num_layers=3, embedding_size=128, expansion=1.5, conv=False, dropout=0.0,
                        batch_size=32, seq_length=128, optimizer="adamw", learning_rate=3e-3, weight_decay=0.1,
                        lr_schedule="cosine", warmup_steps=100, grad_clip=1.0, ema=0.99, max_epochs=5,
                        eval_every=250),
    # For one GPU: minGRU blocks of nanoGPT's shakespeare-char size (about 12M weights), long windows (the scan is
    # parallel over T), the convolution, dropout. Not yet measured on a GPU.
    "mingru-gpu": dict(model="mingru", num_layers=6, embedding_size=384, expansion=1.5, conv=True, dropout=0.2,
                       batch_size=64, seq_length=512, optimizer="adamw", learning_rate=1e-3, weight_decay=0.1,
                       lr_schedule="cosine", warmup_steps=200, grad_clip=1.0, ema=0.999, max_epochs=30, eval_every=100,
                       patience=8, steps_per_execution=16),
}


def preset(name: str) -> Config:
    """The Config of a preset: tiny, char-rnn, shakespeare, gpt-tiny, mingru-tiny or mingru-gpu (`kerasrnn train
    --preset`)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return Config(**PRESETS[name])


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise MissingPath(f"{path} is missing: is this a kerasrnn run directory?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}): the {what} is corrupt") from None
