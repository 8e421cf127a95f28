"""The full-integer step model (`kerasrnn export RUN --micro DIR`, SPEC.md "Micro bundle") on TensorFlow
Lite for Microcontrollers' own interpreter (the `tflite-micro` package: the real runtime and its reference
kernels, built for the host), so a PC writes what a board running the same file with those kernels writes.

TFLite Micro addresses inputs and outputs by their position in the subgraph, not by name: `io_positions`
reads the names from the file's "step" signature (also what the exporter writes into the C header).
"""
import importlib
import os

import numpy as np

RUNTIME = "tflite-micro"


def io_positions(model_bytes):
    """({input name: position}, {output name: position}) of the "step" signature in subgraph 0."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    subgraph, (signature,) = model.subgraphs[0], model.signatureDefs
    inputs, outputs = list(subgraph.inputs), list(subgraph.outputs)
    return ({t.name.decode(): inputs.index(t.tensorIndex) for t in signature.inputs},
            {t.name.decode(): outputs.index(t.tensorIndex) for t in signature.outputs})


def interpreter(model_bytes, arena_bytes):
    """A TFLite Micro interpreter of the model with an arena of `arena_bytes` (raises if it does not fit)."""
    runtime = importlib.import_module("tflite_micro.python.tflite_micro.runtime")
    return runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_bytes)


def smallest_arena(model_bytes, step=64):
    """The smallest arena (a multiple of `step` bytes) in which TFLite Micro allocates the model on this host.
    Each try runs in a process of its own: the runtime can crash, not fail, on an arena too small."""
    import subprocess
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.tflite")
        with open(path, "wb") as f:
            f.write(model_bytes)
        try_ = ("import sys; from tflite_micro.python.tflite_micro import runtime; "
                "runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))")

        def fits(size):
            return subprocess.run([sys.executable, "-c", try_, path, str(size)], capture_output=True).returncode == 0

        low, high = 0, 1 << 12
        while not fits(high):
            low, high = high, high * 2
        while high - low > step:  # low does not fit, high does
            middle = (low + high) // 2 // step * step
            low, high = (low, middle) if fits(middle) else (middle, high)
        return high


class MicroStep:
    """The step model on TFLite Micro: one token per invoke, float32 states carried from each `next_`
    output to its input (the rule of SPEC.md "Micro bundle", as LiteRT's TFLiteStep carries them)."""

    def __init__(self, model_bytes, arena_bytes, state_names, start_token, start_state, batched=False):
        self.interpreter = interpreter(model_bytes, arena_bytes)
        inputs, outputs = io_positions(model_bytes)
        self.token, self.logits = inputs["token"], outputs["logits"]
        self.state_pairs = [(inputs[n], outputs[f"next_{n}"]) for n in state_names]
        self.batched, self.batch = batched, 1  # one stream per invoke: a batch runs row by row
        self.start_token, self.start = start_token, start_state
        self.reset()

    def reset(self):
        self.states = [np.array(s, np.float32) for s in self.start]

    def feed(self, ids):
        """ids [k] -> logits [V]; batched (one row): ids [1, k] -> logits [1, V]."""
        ids = np.asarray(ids, np.int32)
        run = self.interpreter
        logits = None
        for token in (ids[0] if self.batched else ids):
            run.set_input(np.array([token], np.int32), self.token)
            for (position, _), state in zip(self.state_pairs, self.states):
                run.set_input(state, position)
            run.invoke()
            self.states = [run.get_output(out) for _, out in self.state_pairs]
            logits = run.get_output(self.logits)
        return logits if self.batched else logits[0]
