"""write_micro (`kerasrnn export RUN --micro DIR`): a full-integer step model for TensorFlow Lite for Microcontrollers,
as a bundle (SPEC.md, "Micro bundle") and as C sources for a firmware (export/micro/, docs/micro.md).

TFLite Micro runs no dynamic-range ("hybrid") model, so this one is fully integer: int8 weights and int8
activations, their ranges calibrated on (token, state) pairs recorded while reading the run's training
text. Inputs and outputs stay float32 (the converter puts a QUANTIZE after each input and a DEQUANTIZE
before each output), so every runtime carries the states between steps as it does a float bundle's.
The step is tflite.py's StepModule over the family's step: the same ops, only quantized.

int16 activations (the converter's 16x8 mode) are not offered: their embedding is an int16 GATHER, which
TFLite Micro has no kernel for. The exporter measures what int8 costs (validation nats per character
against the float step) and writes it into the manifest.
"""
import hashlib
import importlib.util
import os

import numpy as np

from kerasrnn.files import Writes
from kerasrnn_edge.errors import UserError
from kerasrnn_edge.manifest import FORMAT, FORMAT_VERSION, MANIFEST, SAMPLING_CONTRACT
from kerasrnn_edge.micro import MicroStep, io_positions, smallest_arena

from . import tflite
from .bundle import start, tensors

MODEL_FILE = "step_micro.tflite"
C_DIR = "c"  # the C sources, inside the bundle
CALIBRATION = (8, 250)  # stretches of training text, tokens each (a sample per token)
MEASURED_TOKENS = 2000  # of the validation split: the int8 cost written into the manifest
ARENA_MARGIN = 1024  # bytes over the smallest arena that allocates on the host


class FloatStep:
    """The float step (the family's TensorFlow step, eagerly, one token at a time) driven as a step model is: what
    calibration records and what the int8 cost is measured against."""

    def __init__(self, graphs):
        self.graphs, self.core = graphs, graphs.tf_step(1)

    def states(self):
        return [np.asarray(s, np.float32)[None] for s in self.graphs.start_state]

    def step(self, token, states):
        logits, new = self.core.forward(np.asarray([token], np.int32), states)
        return np.asarray(logits[0], np.float64), [np.asarray(s) for s in new]


def recorded_inputs(graphs, ids, stretches=CALIBRATION[0], length=CALIBRATION[1]):
    """Step inputs met while reading `ids`: `stretches` stretches of `length` tokens spread over them, each
    read from the start state after the start token, as sampling begins; [{"token", state name: ...}]."""
    starts = np.linspace(0, max(len(ids) - length, 0), stretches).astype(int)
    float_step, samples = FloatStep(graphs), []
    for first in starts:
        states = float_step.states()
        for token in np.concatenate([[graphs.start_token], ids[first:first + length]]).astype(np.int32):
            samples.append({"token": np.array([token], np.int32), **dict(zip(graphs.state_names, states))})
            _, states = float_step.step(token, states)
    return samples


def convert(graphs, samples):
    """The .tflite bytes of the full-integer step model, calibrated on `samples` (recorded_inputs)."""
    import tensorflow as tf

    def full_integer(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: iter(samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

    return tflite.convert(graphs, full_integer)


def validation_loss(graphs, step, ids):
    """(float step, `step`) mean -log p(ids[t+1] | ids[:t+1]) in nats, one stream from the start state."""
    float_step = FloatStep(graphs)
    states, fp32 = float_step.states(), []
    for t in range(len(ids) - 1):
        logits, states = float_step.step(ids[t], states)
        fp32.append(np.logaddexp.reduce(logits) - logits[ids[t + 1]])
    step.reset()
    losses = [np.logaddexp.reduce(logits) - logits[ids[t + 1]]
              for t in range(len(ids) - 1) for logits in [step.feed(ids[t:t + 1]).astype(np.float64)]]
    return float(np.mean(fp32)), float(np.mean(losses))


def check_micro(vocab):
    """Refuses, in one line, what the micro bundle cannot take: a bpe vocabulary (the C sampler has no BPE
    encoder), or a machine without TFLite Micro's interpreter (which measures the model)."""
    if vocab.kind not in ("char", "byte"):
        raise UserError(f"--micro exports char and byte runs only, not {vocab.kind} tokens (the C sampler has no "
                        "BPE encoder)")
    if importlib.util.find_spec("tflite_micro") is None:
        raise UserError("--micro needs TensorFlow Lite for Microcontrollers' interpreter, to measure the model: "
                        "pip install tflite-micro (wheels for x86-64 Linux)")


def write_micro(graphs, vocab, source, train_ids, val_ids, out_dir):
    """Writes the micro bundle of `graphs` (a StepGraphs of a family supporting "micro"; `vocab` its Vocab) to
    `out_dir`, calibrated on `train_ids` and measured on `val_ids`; returns the manifest. `source` is the
    manifest's `source` field."""
    check_micro(vocab)
    model_bytes = convert(graphs, recorded_inputs(graphs, np.asarray(train_ids)))
    arena = smallest_arena(model_bytes) + ARENA_MARGIN
    val = np.asarray(val_ids[:MEASURED_TOKENS], np.int32)
    fp32, integer = validation_loss(graphs, MicroStep(model_bytes, arena, graphs.state_names, graphs.start_token,
                                                      [s[None] for s in graphs.start_state]), val)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "sampling_contract": SAMPLING_CONTRACT,
        "vocab": vocab.to_json(),
        "model": graphs.model,
        "state": [{"name": n, "shape": [1, w], "dtype": "float32"} for n, w in zip(graphs.state_names,
                                                                                  graphs.state_widths)],
        "start": start(graphs),
        "files": [{"path": MODEL_FILE, "format": "tflite", "precision": "integer", "batch": 1, "signature": "step",
                   **tensors(graphs, 1, 1),
                   "sha256": hashlib.sha256(model_bytes).hexdigest(), "bytes": len(model_bytes),
                   "min_runtime": MICRO_RUNTIMES, "subgraph": 0}],
        "micro": {"activations": "int8", "arena_bytes": arena,
                  "calibration": {"stretches": CALIBRATION[0], "tokens": CALIBRATION[1]},
                  "validation": {"tokens": len(val), "fp32": fp32, "integer": integer}},
        "source": source,
    }
    with Writes() as writes:
        writes.bytes(os.path.join(out_dir, MODEL_FILE), model_bytes)
        for name, text in c_sources(model_bytes, graphs, vocab, arena).items():
            writes.text(os.path.join(out_dir, C_DIR, name), text)
        writes.json(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


# The oldest versions the tests run the file on (the tflite-micro wheel is a dated development build).
MICRO_RUNTIMES = {"tflite-micro": "0.dev20261023182759", "ai-edge-litert": "2.3.0"}


def op_names(model_bytes):
    """The builtin ops of the model, sorted (what a firmware's op resolver must register)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return sorted({names[max(code.builtinCode, code.deprecatedBuiltinCode)] for code in model.operatorCodes})


def _c_floats(values):
    return ", ".join(f"{float(v)!r}f" if np.isfinite(v) else "0.0f" for v in np.asarray(values, np.float32).tolist())


def c_sources(model_bytes, graphs, vocab, arena):
    """kerasrnn_model.h and .c: the model as a byte array, its arena, input and output positions, ops,
    the vocabulary and the start state, for a firmware (export/micro/esp32s3/main/main.cc)."""
    inputs, outputs = io_positions(model_bytes)
    ops = op_names(model_bytes)
    resolver = " ".join(f"(resolver).Add{''.join(p.capitalize() for p in op.split('_'))}();" for op in ops)
    names = graphs.state_names
    if len(set(graphs.state_widths)) != 1:
        raise UserError("--micro's C sources hold states of one width: this model's differ")
    code_points = [ord(c) for c in vocab.chars] if vocab.kind == "char" else list(range(256))
    header = f"""/* Written by kerasrnn export --micro: the full-integer step model and what sampling needs (docs/micro.md). */
#ifndef KERASRNN_MODEL_H
#define KERASRNN_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define KERASRNN_ARENA_BYTES {arena}  /* TFLite Micro's tensor arena: measured on a 64-bit host, plus {ARENA_MARGIN} */
#define KERASRNN_VOCAB_SIZE {vocab.size}
#define KERASRNN_VOCAB_BYTES {int(vocab.kind == "byte")}  /* 1: ids are bytes (UTF-8); 0: ids are the code points below */
#define KERASRNN_START_TOKEN {graphs.start_token}
#define KERASRNN_NUM_STATES {len(names)}  /* {", ".join(names)} */
#define KERASRNN_STATE_SIZE {graphs.state_widths[0]}  /* float32 values per state */
#define KERASRNN_INPUT_TOKEN {inputs["token"]}  /* position of the int32 [1] token input */
#define KERASRNN_OUTPUT_LOGITS {outputs["logits"]}  /* position of the float32 [1, V] logits output */
#define KERASRNN_NUM_OPS {len(ops)}
/* Registers the model's ops ({", ".join(ops)}) on a tflite::MicroMutableOpResolver<KERASRNN_NUM_OPS>. */
#define KERASRNN_ADD_OPS(resolver) do {{ {resolver} }} while (0)

extern const unsigned char kerasrnn_model[];  /* the .tflite file, 16-byte aligned */
extern const unsigned int kerasrnn_model_len;
extern const int kerasrnn_state_input[KERASRNN_NUM_STATES];  /* input position of each state, in state order */
extern const int kerasrnn_state_output[KERASRNN_NUM_STATES];  /* output position of its next_ state */
extern const float kerasrnn_start_state[KERASRNN_NUM_STATES][KERASRNN_STATE_SIZE];
extern const uint32_t kerasrnn_vocab[KERASRNN_VOCAB_SIZE];  /* the code point of each id (bytes: the id) */

#ifdef __cplusplus
}}
#endif

#endif
"""
    rows = [", ".join(f"0x{b:02x}" for b in model_bytes[i:i + 16]) for i in range(0, len(model_bytes), 16)]
    source = f"""/* Written by kerasrnn export --micro (docs/micro.md). */
#include "kerasrnn_model.h"

#if defined(__GNUC__)
#define KERASRNN_ALIGNED __attribute__((aligned(16)))
#else
#define KERASRNN_ALIGNED
#endif

const unsigned char kerasrnn_model[] KERASRNN_ALIGNED = {{
{chr(10).join(f"    {row}," for row in rows)}
}};
const unsigned int kerasrnn_model_len = {len(model_bytes)};

const int kerasrnn_state_input[KERASRNN_NUM_STATES] = {{{", ".join(str(inputs[n]) for n in names)}}};
const int kerasrnn_state_output[KERASRNN_NUM_STATES] = {{{", ".join(str(outputs["next_" + n]) for n in names)}}};

const float kerasrnn_start_state[KERASRNN_NUM_STATES][KERASRNN_STATE_SIZE] = {{
{chr(10).join(f"    {{{_c_floats(s)}}},  /* {n} */" for n, s in zip(names, graphs.start_state))}
}};

const uint32_t kerasrnn_vocab[KERASRNN_VOCAB_SIZE] = {{{", ".join(str(c) for c in code_points)}}};
"""
    return {"kerasrnn_model.h": header, "kerasrnn_model.c": source}
