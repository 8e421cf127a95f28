"""The Python API (docs/python.md): a run to train, sample and export in a few lines (`Run`), and the
pieces for a Keras user's own `compile` and `fit` (`text_datasets`, `build_model`, `make_optimizer`,
`TBPTTSchedule`, `generate`). The command line is a thin layer over the same functions."""
from typing import Iterator, Optional

import keras

from kerasrnn_edge import beam as beams, sampling
from kerasrnn_edge.errors import KerasrnnError
from kerasrnn_edge.vocab import Vocab

from . import corpus, data
from .callbacks import read_history
from .config import Config
from .run import load_checkpoints, load_run, run_config
from .sample import step_model


def text_datasets(path: str, batch_size: int = 50, seq_length: int = 50, tokens: str = "char",
                  train_frac: float = 0.9, val_frac: float = 0.1, val_tokens: int = Config.val_tokens,
                  steps_per_chunk: Optional[int] = None, vocab_size: int = Config.vocab_size) -> "tuple[Vocab, data.StreamBatches, data.StreamBatches]":
    """(vocabulary, training batches, validation batches) of a text (a file, directory or archive: the
    corpus module), as `kerasrnn train` makes them (validation: at most `val_tokens` tokens, 0 for all).

    The batches are keras.utils.PyDataset objects of B streams x T steps, where row i of batch k+1
    continues row i of batch k. Fit them with `shuffle=False` and `TBPTTSchedule(training_batches)`
    among the callbacks; `steps_per_chunk` splits a pass over the text into Keras epochs of about that
    many batches, so that validation runs that often. `tokens="bpe"` learns `vocab_size` pieces from the
    training part (kerasrnn/subword.py).
    """
    vocab, ids = corpus.load_ids(path, tokens, vocab_size=vocab_size, train_frac=train_frac)
    return (vocab, *data.stream_batches(ids, batch_size, seq_length, train_frac, val_frac, val_tokens,
                                        steps_per_chunk))


def generate(model: keras.Model, vocab: Vocab, prime: str = "", length: int = 500, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, seed: int = 0, argmax: bool = False) -> str:
    """`length` tokens of text sampled from a trained kerasrnn model (any batch size) after `prime`, by
    the sampling contract (export/SPEC.md): the same text as `kerasrnn sample` and every exported runtime
    for the same weights, prime, settings and seed. The prime is not included."""
    pieces = sampling.generate(step_model(model), vocab, prime, length, temperature, top_k, top_p,
                               seed, argmax)
    return "".join(pieces)


class Run:
    """A run directory (config.json, vocab.json, best.keras, last.keras, history.csv; see kerasrnn.run)
    and one of its checkpoints, loaded: train it, sample it, export it.

        run = kerasrnn.Run.train("runs/shakes", text="input.txt", preset="tiny", max_seconds=300)
        print(run.sample("ROMEO:", 200, temperature=0.8, seed=1))
        run.export("bundle/")
    """

    def __init__(self, run_dir: str, which: str = "best"):
        self.run_dir, self.which = run_dir, which
        self.model, self.vocab, self.config, self.record = load_run(run_dir, which)
        self._step_model = None

    @classmethod
    def train(cls, run_dir: str, text: Optional[str] = None, preset: Optional[str] = None, resume: bool = False,
              verbose="auto", **options) -> "Run":
        """Trains a new run into `run_dir` (or continues it with `resume=True`) and returns it loaded at its
        best checkpoint. `preset` is `kerasrnn train --preset` (None: `tiny`, or `gpt-tiny` for a GPT); `options`
        are Config fields (`max_seconds=300`, `rnn_size=512`, ...), as the command line's options override the
        preset; another keyword is a KerasrnnError. With `init_from`, the model, shape and tokens are its run's.
        `verbose`: 1 for a progress bar, 2 for a line per validation, 0 for silence."""
        from .train import train
        config = run_config(run_dir, preset, resume, {**({"text": text} if text else {}), **options})
        train(config, run_dir, resume=resume, verbose=verbose)
        return cls(run_dir)

    @classmethod
    def load(cls, run_dir: str, which: str = "best") -> "Run":
        """The run in `run_dir` at its `best` (lowest validation loss) or `last` checkpoint."""
        return cls(run_dir, which)

    @property
    def history(self) -> "list[dict]":
        """One dict per validation: epoch, learning_rate, loss, seconds, step, val_loss."""
        last = load_checkpoints(self.run_dir).get("last", {})
        return read_history(self.run_dir, last.get("step", 0))

    def generate(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int = 0, argmax: bool = False, stop=()) -> Iterator[str]:
        """Yields the sampled text piece by piece (one token each; with `stop` strings, what is safe to print
        before the first of them), to stream it; the prime is not yielded."""
        if self._step_model is None:
            self._step_model = step_model(self.model)
        return sampling.generate(self._step_model, self.vocab, prime, length, temperature, top_k, top_p, seed,
                                 argmax, stop)

    def sample(self, prime: str = "", length: int = 500, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, seed: int = 0, argmax: bool = False, stop=(), beam: Optional[int] = None,
               length_penalty: float = 0.0) -> str:
        """The prime and `length` sampled tokens of text: what `kerasrnn sample` prints (without its final
        newline), ending before the first `stop` string; `beam=N`: the likeliest text beam search finds with N
        beams (`kerasrnn sample --beam N`; no temperature, top_k, top_p or argmax with it)."""
        if beam is None:
            return prime + "".join(self.generate(prime, length, temperature, top_k, top_p, seed, argmax, stop))
        if (temperature, top_k, top_p, argmax) != (1.0, 0, 1.0, False):
            raise KerasrnnError("beam search draws nothing: drop temperature, top_k, top_p and argmax, or beam")
        beams.check_beam(beam, length_penalty, length)
        found = beams.beam_search(step_model(self.model, beam), self.vocab, prime, length, beam,
                                  length_penalty, stop)
        return prime + found[0].text

    def export(self, out_dir: str) -> dict:
        """Writes this checkpoint's edge bundle (TFLite fp32/int8, ONNX, manifest.json); returns the manifest.
        `kerasrnn_edge.EdgeSampler.load(out_dir)` samples it without TensorFlow."""
        from .export import export_bundle
        return export_bundle(self.run_dir, out_dir, which=self.which)

    def export_serving(self, base_dir: str, name: str = "kerasrnn") -> str:
        """Writes this checkpoint as a TF Serving SavedModel, BASE_DIR/NAME/VERSION; returns that path."""
        from .export import export_serving
        return export_serving(self.run_dir, base_dir, name=name, which=self.which)

    def __repr__(self):
        loss = self.record.get("val_loss")
        return (f"Run({self.run_dir!r}, {self.which}: step {self.record.get('step')}, "
                f"val_loss {loss:.4f})" if loss is not None else f"Run({self.run_dir!r}, {self.which})")
