"""One step model per runtime, each with `start_token`, `reset()` (to the bundle's start state) and
`feed(ids) -> logits after the last id`; or, opened with `batch=N`, a batched step model of `batch` rows
whose `feed` takes ids [batch, k] and returns logits [batch, V] (sampling.generate_batch).

Runtimes, in the order they are picked when none is named: ai-edge-litert, tflite-runtime (same
Python API, TFLite files), onnxruntime (the ONNX file); tflite-micro (micro.py) first for the full-integer
file of a micro bundle. None of them needs TensorFlow.
"""
import contextlib
import importlib
import importlib.metadata
import os
import re

import numpy as np

from .errors import UserError
from .micro import RUNTIME as MICRO, MicroStep

RUNTIMES = {  # name (the pip package) -> (module, file format)
    "ai-edge-litert": ("ai_edge_litert.interpreter", "tflite"),
    "tflite-runtime": ("tflite_runtime.interpreter", "tflite"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "tflite-micro": ("tflite_micro.python.tflite_micro.runtime", "tflite"),
}
ONNX_TYPES = {"tensor(float)": "float32", "tensor(int32)": "int32"}  # onnxruntime's names -> the manifest's


def installed_version(runtime):
    try:
        return importlib.metadata.version(runtime)
    except importlib.metadata.PackageNotFoundError:
        return None


def _version_tuple(version):
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def open_step_model(manifest, runtime=None, precision="fp32", threads=1, batch=None):
    """The step model of `manifest` on `runtime` (None: the first one installed that can run it).

    `batch=N`: a batched step model for N streams, from the manifest's `batch_files` (SPEC.md, "Batch
    models"): the smallest fixed batch >= N, else ONNX's dynamic-batch graph at N rows, else the largest
    (several runs); without batch files, the batch-1 file (one stream per run: the same texts, slower)."""
    if runtime is not None and runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    problems = []
    # a micro bundle's file is for TFLite Micro first: on a PC, what the board writes
    default = sorted(RUNTIMES, key=lambda name: name != MICRO) if precision == "integer" else RUNTIMES
    for name in [runtime] if runtime else default:
        fmt = RUNTIMES[name][1]
        entries = manifest.find("step", precision, fmt)
        if batch is not None and entries:
            entries = [_batch_entry(entries + manifest.find_batch(precision, fmt), batch)]
        version = installed_version(name)
        if not entries:
            problems.append(f"the bundle has no {precision} {fmt} file for {name}")
        elif version is None:
            problems.append(f"{name} is not installed (pip install {name})")
        elif name not in entries[0]["min_runtime"]:
            needs = ", ".join(f"{k} >= {v}" for k, v in entries[0]["min_runtime"].items())
            problems.append(f"{entries[0]['path']} cannot run on {name}; it needs {needs}")
        elif _version_tuple(version) < _version_tuple(entries[0]["min_runtime"][name]):
            problems.append(f"{entries[0]['path']} needs {name} >= {entries[0]['min_runtime'][name]} "
                            f"(installed: {version}): pip install -U {name}")
        else:
            step_model = _micro_step if name == MICRO else TFLiteStep if fmt == "tflite" else OnnxStep
            return step_model(name, manifest, entries[0], threads, batch)
    raise UserError("; ".join(problems))


def _batch_entry(entries, rows):
    """The file to run `rows` streams with: the smallest fixed batch >= rows, else a dynamic batch (-1),
    else the largest fixed batch (run several times)."""
    fixed = sorted((e for e in entries if e["batch"] > 0), key=lambda e: e["batch"])
    return (next((e for e in fixed if e["batch"] >= rows), None)
            or next((e for e in entries if e["batch"] == -1), fixed[-1]))


def _micro_step(runtime, manifest, entry, threads, batch=None):
    """A micro bundle's file on TFLite Micro, in the arena its manifest names (one thread, always)."""
    path = manifest.verified_path(entry)
    with open(path, "rb") as f:
        model_bytes = f.read()
    with _load_errors(path, runtime):
        return MicroStep(model_bytes, manifest.doc["micro"]["arena_bytes"], [s["name"] for s in manifest.state],
                         manifest.start_token, manifest.start_state, batched=batch is not None)


class TFLiteStep:
    """The file's one signature, "step", is subgraph 0, so each token is a plain set_tensor / invoke /
    get_tensor (measured faster than a SignatureRunner, which resizes and reallocates on every call).
    A file of batch B takes B tokens per invoke, one per row."""

    def __init__(self, runtime, manifest, entry, threads, batch=None):
        path = manifest.verified_path(entry)
        with _load_errors(path, runtime), native_stderr_silenced():  # LiteRT logs "INFO: Created ... delegate"
            litert = importlib.import_module(RUNTIMES[runtime][0])
            self.interpreter = litert.Interpreter(model_path=path, num_threads=threads)
            self.interpreter.allocate_tensors()
        if "step" not in self.interpreter.get_signature_list():
            raise UserError(f"{path} has no signature 'step' (it has {sorted(self.interpreter.get_signature_list())}),"
                            f" but {manifest.path} lists one: the bundle is inconsistent, export it again "
                            "(kerasrnn export)")
        runner = self.interpreter.get_signature_runner("step")
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        del runner  # a live SignatureRunner makes Interpreter.invoke() refuse to run
        own = [{name: ([None if d < 0 else int(d) for d in t["shape_signature"]], np.dtype(t["dtype"]).name)
                for name, t in side.items()} for side in (inputs, outputs)]  # -1 in shape_signature: any size
        manifest.check_file_tensors(entry, path, *own)
        self.names = [s["name"] for s in manifest.state]
        self.token, self.logits = inputs["token"]["index"], outputs["logits"]["index"]
        self.state_pairs = [(inputs[n]["index"], outputs[f"next_{n}"]["index"]) for n in self.names]
        self.batched, self.batch = batch is not None, entry["batch"]
        self.start_token = manifest.start_token
        self.start = [np.ascontiguousarray(np.broadcast_to(s, (self.batch, s.shape[1]))) for s in manifest.start_state]

    def reset(self):
        for (index, _), start in zip(self.state_pairs, self.start):
            self.interpreter.set_tensor(index, start)

    def select(self, rows):
        """Row r takes the state of row rows[r] (beam search)."""
        for index, _ in self.state_pairs:
            self.interpreter.set_tensor(index, np.ascontiguousarray(self.interpreter.get_tensor(index)[rows]))

    def feed(self, ids):
        """ids [k] -> logits [V]; batched: ids [batch, k] -> logits [batch, V]."""
        ids = np.asarray(ids, np.int32)
        columns = ids.T if self.batched else ids[:, None]
        set_tensor, get_tensor, invoke = self.interpreter.set_tensor, self.interpreter.get_tensor, self.interpreter.invoke
        for column in columns:
            set_tensor(self.token, np.ascontiguousarray(column))
            invoke()
            for state_in, state_out in self.state_pairs:
                set_tensor(state_in, get_tensor(state_out))
        logits = get_tensor(self.logits)
        return logits if self.batched else logits[0]


class OnnxStep:
    """The ONNX graph with a "steps" signature takes any number of tokens, so a prime is one run; one
    without (a GPT's) one token per run. The batch graph (batch -1) takes token [rows, T] and states
    [rows, H] for any number of rows: opened with `batch=N`, it runs N; the batch-1 graph opened so runs
    the N rows one after the other, holding their states."""

    def __init__(self, runtime, manifest, entry, threads, batch=None):
        path = manifest.verified_path(entry)
        with _load_errors(path, runtime):
            ort = importlib.import_module(RUNTIMES[runtime][0])
            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = threads
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        own = [{t.name: ([d if isinstance(d, int) else None for d in t.shape], ONNX_TYPES.get(t.type, t.type))
                for t in side} for side in (self.session.get_inputs(), self.session.get_outputs())]  # "T": any size
        for described in manifest.files + manifest.batch_files:  # a "step" and a "steps" entry describe one graph
            if described["path"] == entry["path"]:
                manifest.check_file_tensors(described, path, *own)
        self.names = [s["name"] for s in manifest.state]
        self.outputs = ["logits", *(f"next_{n}" for n in self.names)]
        self.batched, self.rows_input = batch is not None, entry["batch"] == -1
        self.one_token = not any(e["path"] == entry["path"] for e in manifest.find("steps") + manifest.batch_files
                                 if e["signature"] == "steps")
        self.batch = batch if self.batched else 1
        self.start_token = manifest.start_token
        self.start = [np.ascontiguousarray(np.broadcast_to(s, (self.batch, s.shape[1]))) for s in manifest.start_state]
        self.reset()

    def reset(self):
        self.states = dict(zip(self.names, self.start))

    def select(self, rows):
        """Row r takes the state of row rows[r] (beam search)."""
        self.states = {name: np.ascontiguousarray(state[rows]) for name, state in self.states.items()}

    def feed(self, ids):
        """ids [k] -> logits [V]; batched: ids [batch, k] -> logits [batch, V]."""
        ids = np.asarray(ids, np.int32)
        if self.batched and not self.rows_input:  # the batch-1 graph takes [T]: one row at a time
            rows = [self._run(row, {n: s[r:r + 1] for n, s in self.states.items()}) for r, row in enumerate(ids)]
            self.states = {n: np.concatenate([states[n] for _, states in rows]) for n in self.names}
            return np.concatenate([logits for logits, _ in rows])
        logits, self.states = self._run(ids, self.states)
        return logits if self.batched else logits[0]

    def _run(self, token, states):
        for run in (token[:, None] if self.one_token else [token]):
            logits, *outputs = self.session.run(self.outputs, {"token": run, **states})
            states = dict(zip(self.names, outputs))
        return logits, states


@contextlib.contextmanager
def _load_errors(path, runtime):
    """A runtime that cannot import, or cannot load the file (too old, damaged), is a user error."""
    try:
        yield
    except Exception as e:  # the runtimes raise ValueError, RuntimeError or their own types
        reason = " ".join(str(e).split())[:300]
        raise UserError(f"{runtime} {installed_version(runtime)} cannot load {path} ({reason}): "
                        f"upgrade it (pip install -U {runtime}) or export the bundle again") from None


@contextlib.contextmanager
def native_stderr_silenced():
    """Silences what native code writes to file descriptor 2 (Python's own sys.stderr is untouched)."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
