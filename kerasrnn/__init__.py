"""kerasrnn: character-level recurrent language models with Keras 3, from training to the edge.

The public API (docs/python.md), loaded on first use so that `import kerasrnn` stays light and the
command line can still choose the Keras backend before Keras is imported:

- `Run`: a run directory to train, load, sample and export (`Run.train`, `Run.load`).
- For your own `compile` and `fit`: `text_datasets`, `build_model`, `make_optimizer`, `TBPTTSchedule`,
  `generate`, and `Config` / `preset` for kerasrnn's settings.
- `models`: the model families (`models.family("rnn")`, `models.register` for your own: kerasrnn/models/).
- `StatefulRecurrent` (the recurrent stack layer), `Vocab`, `EdgeSampler` (a bundle without
  TensorFlow), `export_bundle`.
- `KerasrnnError`, what they raise for bad input: a ValueError (a FileNotFoundError too for a missing path).
"""
import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off stderr

__version__ = "0.1.0"

_EXPORTS = {
    "Run": "kerasrnn.api", "text_datasets": "kerasrnn.api", "generate": "kerasrnn.api",
    "build_model": "kerasrnn.models.recurrent", "StatefulRecurrent": "kerasrnn.models.recurrent",
    "make_optimizer": "kerasrnn.optim", "TBPTTSchedule": "kerasrnn.callbacks",
    "Config": "kerasrnn.config", "preset": "kerasrnn.config", "KerasrnnError": "kerasrnn_edge.errors",
    "Vocab": "kerasrnn_edge.vocab", "EdgeSampler": "kerasrnn_edge.sampler", "export_bundle": "kerasrnn.export",
}
__all__ = sorted([*_EXPORTS, "models"])


def __getattr__(name):
    if name in _EXPORTS or name == "models":
        from .startup import import_keras_quietly
        import_keras_quietly()
        if name == "models":
            return importlib.import_module("kerasrnn.models")
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kerasrnn' has no attribute {name!r}")


def __dir__():
    return __all__ + ["__version__"]
