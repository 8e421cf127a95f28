"""write_bundle: a family's step graphs -> an edge bundle (SPEC.md, "Bundle").

    manifest.json      what is in the bundle and how to call it; renamed into place last
    step_fp32.tflite   signature "step", float32
    step_int8.tflite   the same with int8 weights (dynamic-range quantization)
    step.onnx          one graph; "step" is T = 1 token, and where the graph reads any T (StepGraphs.onnx_steps),
                       "steps" (a prime in one run)

and with `batch=N`, the batch models (manifest field `batch_files`) for many samples at once:

    step_bN_fp32.tflite, step_bN_int8.tflite   signature "step" at batch N: N streams, one token each
    step_batch.onnx                            token [B, T], states [B, H], B and T dynamic (where onnx_steps)
"""
import hashlib
import os

from kerasrnn.files import Writes
from kerasrnn_edge.manifest import FORMAT, FORMAT_VERSION, MANIFEST, SAMPLING_CONTRACT

from . import tflite
from .onnx_graph import OPSET

# The oldest runtimes the files run on (the oldest with Python 3.11 wheels; tests/test_edge_venvs.py runs them).
TFLITE_RUNTIMES = {"ai-edge-litert": "1.0.1", "tflite-runtime": "2.14.0"}
ONNX_RUNTIMES = {"onnxruntime": "1.15.0"}


def write_bundle(graphs, vocab, source, out_dir, int8, batch=None):
    """Writes the bundle of `graphs` (a StepGraphs) to `out_dir`; returns the manifest. `vocab` is the manifest's
    vocabulary (Vocab.to_json), `source` its `source` field (where the weights come from), `int8(converter)` sets
    the TFLite converter's int8 weights. `batch`: also the batch models (TFLite at `batch` streams, ONNX at any).
    Its files are renamed into place together once all are written: a failed write leaves the bundle that was
    there before."""
    files = {"step_fp32.tflite": tflite.convert(graphs),
             "step_int8.tflite": tflite.convert(graphs, int8),
             "step.onnx": graphs.onnx_step(False)}
    if batch is not None:
        files.update({f"step_b{batch}_fp32.tflite": tflite.convert(graphs, batch=batch),
                      f"step_b{batch}_int8.tflite": tflite.convert(graphs, int8, batch=batch)})
        if graphs.onnx_steps:
            files["step_batch.onnx"] = graphs.onnx_step(True)

    def entry(path, signature, tokens, rows=1, **extra):
        fmt = "onnx" if path.endswith(".onnx") else "tflite"
        return {"path": path, "format": fmt, "precision": "int8" if "int8" in path else "fp32", "batch": rows,
                "signature": signature, **tensors(graphs, tokens, rows),
                "sha256": hashlib.sha256(files[path]).hexdigest(), "bytes": len(files[path]),
                "min_runtime": ONNX_RUNTIMES if fmt == "onnx" else TFLITE_RUNTIMES, **extra}

    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "sampling_contract": SAMPLING_CONTRACT,
        "vocab": vocab,
        "model": graphs.model,
        "state": [{"name": n, "shape": [1, w], "dtype": "float32"} for n, w in zip(graphs.state_names,
                                                                                  graphs.state_widths)],
        "start": start(graphs),
        "files": [entry("step_fp32.tflite", "step", 1, subgraph=0),
                  entry("step_int8.tflite", "step", 1, subgraph=0),
                  entry("step.onnx", "step", 1, opset=OPSET),
                  *([entry("step.onnx", "steps", -1, opset=OPSET)] if graphs.onnx_steps else [])],
        "source": source,
    }
    if batch is not None:
        manifest["batch_files"] = [entry(f"step_b{batch}_fp32.tflite", "step", batch, batch, subgraph=0),
                                   entry(f"step_b{batch}_int8.tflite", "step", batch, batch, subgraph=0),
                                   *([entry("step_batch.onnx", "steps", [-1, -1], -1, opset=OPSET)]
                                     if graphs.onnx_steps else [])]
    with Writes() as writes:
        for path, data in files.items():
            writes.bytes(os.path.join(out_dir, path), data)
        writes.json(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


def start(graphs):
    """The manifest's `start` field: the start token and state."""
    return {"token": graphs.start_token,
            "state": {n: s.tolist() for n, s in zip(graphs.state_names, graphs.start_state)}}


def tensors(graphs, tokens, rows):
    """A file's `inputs` and `outputs`. `tokens`: the token input's shape, or its one dimension; `rows`: the batch
    (-1: any)."""
    states = {n: {"shape": [rows, w], "dtype": "float32"} for n, w in zip(graphs.state_names, graphs.state_widths)}
    token = tokens if isinstance(tokens, list) else [tokens]
    return {"inputs": {"token": {"shape": token, "dtype": "int32"}, **states},
            "outputs": {"logits": {"shape": [rows, graphs.vocab_size], "dtype": "float32"},
                        **{f"next_{n}": spec for n, spec in states.items()}}}
