"""export_bundle: a run directory's checkpoint -> an edge bundle (SPEC.md, "Bundle").

    manifest.json      what is in the bundle and how to call it; renamed into place last
    step_fp32.tflite   signature "step", float32
    step_int8.tflite   the same with int8 weights (dynamic-range quantization)
    step.onnx          one graph; "step" is T = 1 token, "steps" any T (a prime in one run); a GPT's: "step" only

A GPT's step models take the cache as their states (gpt_step.py); its batch models are TFLite only.

and with `batch=N`, the batch models (manifest field `batch_files`) for many samples at once:

    step_bN_fp32.tflite, step_bN_int8.tflite   signature "step" at batch N: N streams, one token each
    step_batch.onnx                            token [B, T], states [B, H], B and T dynamic
"""
import hashlib
import os

import kerasrnn
from kerasrnn.files import Writes
from kerasrnn.run import load_run
from kerasrnn_edge.manifest import FORMAT, FORMAT_VERSION, MANIFEST, SAMPLING_CONTRACT

from kerasrnn.gpt import is_gpt

from . import gpt_step, onnx_graph, tflite
from .weights import from_model

# The oldest runtimes the files run on (the oldest with Python 3.11 wheels; tests/test_edge_venvs.py runs them).
TFLITE_RUNTIMES = {"ai-edge-litert": "1.0.1", "tflite-runtime": "2.14.0"}
ONNX_RUNTIMES = {"onnxruntime": "1.15.0"}


def export_bundle(run_dir: str, out_dir: str, which: str = "best", batch: "int | None" = None) -> dict:
    """Writes the bundle of `run_dir`'s `which` checkpoint (best or last) to `out_dir`; returns the manifest.
    `batch`: also the batch models (TFLite at `batch` streams, ONNX at any). Its files are renamed into
    place together once all are written: a failed write leaves the bundle that was there before."""
    model, vocab, config, record = load_run(run_dir, which)
    gpt = is_gpt(model)
    if gpt:
        weights = gpt_step.from_model(model)
        files = {"step_fp32.tflite": tflite.convert_module(gpt_step.step_module(weights), int8=False),
                 "step_int8.tflite": tflite.convert_module(gpt_step.step_module(weights), int8=True),
                 "step.onnx": gpt_step.build_onnx(weights)}
        if batch is not None:
            files.update({f"step_b{batch}_{p}.tflite": tflite.convert_module(gpt_step.step_module(weights, batch),
                                                                              int8=p == "int8")
                          for p in ("fp32", "int8")})
        info = gpt_step.model_info(weights)
    else:
        weights = from_model(model)
        files = {"step_fp32.tflite": tflite.convert(weights, int8=False),
                 "step_int8.tflite": tflite.convert(weights, int8=True),
                 "step.onnx": onnx_graph.build(weights)}
        if batch is not None:
            files.update({f"step_b{batch}_fp32.tflite": tflite.convert(weights, int8=False, batch=batch),
                          f"step_b{batch}_int8.tflite": tflite.convert(weights, int8=True, batch=batch),
                          "step_batch.onnx": onnx_graph.build(weights, batched=True)})
        info = {"cell": weights.cell, "num_layers": len(weights.layers), "rnn_size": weights.rnn_size,
                "embedding_size": weights.embedding.shape[1]}

    def entry(path, signature, tokens, rows=1, **extra):
        fmt = "onnx" if path.endswith(".onnx") else "tflite"
        return {"path": path, "format": fmt, "precision": "int8" if "int8" in path else "fp32", "batch": rows,
                "signature": signature, **_tensors(weights, vocab.size, tokens, rows),
                "sha256": hashlib.sha256(files[path]).hexdigest(), "bytes": len(files[path]),
                "min_runtime": ONNX_RUNTIMES if fmt == "onnx" else TFLITE_RUNTIMES, **extra}

    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "sampling_contract": SAMPLING_CONTRACT,
        "vocab": vocab.to_json(),
        "model": info,
        "state": [{"name": n, "shape": [1, w], "dtype": "float32"} for n, w in zip(weights.state_names,
                                                                                  weights.state_widths)],
        "start": {"token": weights.start_token,
                  "state": {n: s.tolist() for n, s in zip(weights.state_names, weights.start_state)}},
        "files": [entry("step_fp32.tflite", "step", 1, subgraph=0),
                  entry("step_int8.tflite", "step", 1, subgraph=0),
                  entry("step.onnx", "step", 1, opset=onnx_graph.OPSET),
                  *([] if gpt else [entry("step.onnx", "steps", -1, opset=onnx_graph.OPSET)])],
        "source": {"config": config.to_json(), "val_loss": record.get("val_loss"), "epoch": record.get("epoch"),
                   "step": record.get("step"), "checkpoint": which, "kerasrnn_version": kerasrnn.__version__},
    }
    if batch is not None:
        manifest["batch_files"] = [entry(f"step_b{batch}_fp32.tflite", "step", batch, batch, subgraph=0),
                                   entry(f"step_b{batch}_int8.tflite", "step", batch, batch, subgraph=0),
                                   *([] if gpt else [entry("step_batch.onnx", "steps", [-1, -1], -1,
                                                           opset=onnx_graph.OPSET)])]
    with Writes() as writes:
        for path, data in files.items():
            writes.bytes(os.path.join(out_dir, path), data)
        writes.json(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


def _tensors(weights, vocab_size, tokens, rows):
    """`tokens`: the token input's shape, or its one dimension; `rows`: the batch (-1: any)."""
    states = {n: {"shape": [rows, w], "dtype": "float32"} for n, w in zip(weights.state_names, weights.state_widths)}
    token = tokens if isinstance(tokens, list) else [tokens]
    return {"inputs": {"token": {"shape": token, "dtype": "int32"}, **states},
            "outputs": {"logits": {"shape": [rows, vocab_size], "dtype": "float32"},
                        **{f"next_{n}": spec for n, spec in states.items()}}}

