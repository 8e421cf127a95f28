"""EdgeSampler: a bundle on a TFLite or ONNX runtime, sampled by the contract (SPEC.md, "Sampling").

    sampler = EdgeSampler.load("bundle/")           # picks ai-edge-litert, tflite-runtime, onnxruntime
    print("".join(sampler.generate("ROMEO:", 200, temperature=0.8, seed=1)))
    sampler.reset(); sampler.feed("To be"); sampler.distribution()   # next-character probabilities
    sampler.generate_batch("", 20, num_samples=100, seed=1, until="\n")   # 100 lines, computed as batches
    sampler.beam_search("ROMEO:", 200, width=4)[0].text      # the likeliest continuation beam search finds
"""
import numpy as np

from . import sampling
from .beam import beam_search
from .manifest import read_manifest
from .runtimes import open_step_model


class EdgeSampler:
    """An exported bundle on a TFLite or ONNX runtime, sampled by the contract; no TensorFlow needed."""

    def __init__(self, manifest, model, open_batch_model=None):
        self.manifest, self.model, self.vocab = manifest, model, manifest.vocab
        self.open_batch_model = open_batch_model  # rows -> a batched step model (runtimes.open_step_model)
        self.batch_models = {}  # rows -> the batched step model opened for them
        self.reset()

    @classmethod
    def load(cls, bundle_dir, runtime=None, precision=None, threads=1):
        """`runtime`: ai-edge-litert | tflite-runtime | onnxruntime | tflite-micro | None (the first installed);
        `precision`: fp32 | int8 | integer | None (integer for a micro bundle, else fp32)."""
        manifest = read_manifest(bundle_dir)
        precision = precision or ("integer" if manifest.find("step", "integer") else "fp32")
        return cls(manifest, open_step_model(manifest, runtime, precision, threads),
                   lambda rows: open_step_model(manifest, runtime, precision, threads, batch=rows))

    def reset(self):
        """Back to the start of a text: the start state, with the start token read."""
        self.model.reset()
        self.logits = self.model.feed([self.model.start_token])

    def feed(self, text):
        """Reads `text` (continuing from the current state)."""
        ids = self.vocab.encode(text)
        if len(ids):
            self.logits = self.model.feed(ids)

    def distribution(self, temperature=1.0):
        """Probabilities of each next token (index = token id; `vocab.chars` names them in char mode)."""
        x = self.logits.astype(np.float64) / temperature
        p = np.exp(x - x.max())
        return p / p.sum()

    def generate(self, prime="", length=100, temperature=1.0, top_k=0, top_p=1.0, seed=0, argmax=False, stop=()):
        """Yields `length` pieces of text after `prime`, starting from a reset state (the contract's generate),
        up to the first stop string.

        Generating moves the model's state; call reset() before using feed() and distribution() again.
        """
        return sampling.generate(self.model, self.vocab, prime, length, temperature, top_k, top_p, seed, argmax,
                                 stop)

    def generate_batch(self, prime="", length=100, temperature=1.0, top_k=0, top_p=1.0, seed=0, argmax=False,
                       num_samples=1, until="", stop=()):
        """The texts of `num_samples` streams computed as batches (the bundle's batch models, SPEC.md "Many
        samples"): stream i is what generate() gives with seed `sampling.stream_seed(seed, i)`, cut after
        the first `until`. The batch model is opened on the first call for `num_samples` streams and kept;
        the state of feed() is untouched."""
        seeds = [sampling.stream_seed(seed, i) for i in range(num_samples)]
        return sampling.generate_batch(self.batch_model(num_samples), self.vocab, prime, length, temperature,
                                       top_k, top_p, seeds, argmax, until, stop)

    def beam_search(self, prime="", length=100, width=4, length_penalty=0.0, stop=()):
        """The `width` best sequences beam search finds (beam.beam_search), best first, each a row of the
        batch model opened for `width` rows."""
        return beam_search(self.batch_model(width), self.vocab, prime, length, width, length_penalty, stop)

    def batch_model(self, rows):
        """The batched step model for `rows` streams, opened on first use and kept."""
        if rows not in self.batch_models:
            self.batch_models[rows] = self.open_batch_model(rows)
        return self.batch_models[rows]
