"""The one seam between the models and each Keras backend's fast paths (`backends/torch.py`,
`backends/jax.py`). The model families (kerasrnn/models/) call only the functions here; each imports its
backend's module on first use, so TensorFlow's path never imports torch or JAX, and the fast paths' private
attributes stay fenced (`kerasrnn.compat`). TensorFlow has none: Keras's own layers and steps run there. What
the steps keep between them for a model is its `TrainingState`, held here, never on the model."""
import base64
import dataclasses
import functools
import importlib
import os
import re
import weakref

import keras
from keras import ops

from kerasrnn_edge.errors import UserError, option


@dataclasses.dataclass
class TrainingState:
    """What a model's training steps keep between steps, outside the model: attributes set on a Keras model
    would be tracked, and walked when it is saved."""
    precision: str = "fp32"        # the training steps' arithmetic, fp32 or bf16 (`set_precision`)
    plan: object = None            # torch: the steps' `backends.torch.Plan`, laid out on the first step
    generator_state: object = None  # torch: the model's stream of PyTorch's CPU generator (`rng_states`)


_training_states = weakref.WeakKeyDictionary()  # a model's state goes with the model


def training_state(model):
    """The model's `TrainingState`, made on first use."""
    state = _training_states.get(model)
    if state is None:
        state = _training_states[model] = TrainingState()
    return state


def fast_paths():
    """The current backend's module of fast paths, or None (TensorFlow)."""
    backend = keras.backend.backend()
    return importlib.import_module(f"{__name__}.{backend}") if backend in ("torch", "jax") else None


def prepare_stack(stack):
    """After a StatefulRecurrent stack is built: its weights laid out for the fused kernel (torch)."""
    if keras.backend.backend() == "torch":
        fast_paths().prepare_stack(stack)


def fused_stack(stack):
    """The function running `stack`'s layers as one fused kernel call (`fn(cell, inputs, states, weights,
    training)` → (outputs, final states)), or None where `stack` takes Keras's per-layer path."""
    if not stack.fused:
        return None
    backend = fast_paths()
    return backend.fused_stack if backend is not None and backend.runs_fused(stack) else None


def train_step(model, keras_step, args):
    """The model's training step: on torch, `backends.torch.train_step`; elsewhere Keras's own."""
    if keras.backend.backend() == "torch":
        return fast_paths().train_step(model, keras_step, args)
    return keras_step(*args)


def test_step(model, keras_step, args):
    if keras.backend.backend() == "torch":
        return fast_paths().test_step(model, keras_step, args)
    return keras_step(*args)


def cpu_has_bf16():
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX), by /proc/cpuinfo's flags;
    KERASRNN_CPU_BF16=1 or 0 says yes or no instead (tests)."""
    forced = os.environ.get("KERASRNN_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    return cpuinfo_has_bf16()


@functools.cache
def cpuinfo_has_bf16():
    """/proc/cpuinfo's answer, read once: the steps ask every time they run."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return re.search(r"\b(avx512_bf16|amx_bf16)\b", f.read()) is not None
    except OSError:
        return False


def set_precision(model, precision):
    """Sets the precision of the model's training and validation steps (`--precision`: auto, fp32 or bf16)
    and returns the one taken, fp32 or bf16. bf16 (mixed, `backends.torch.precision_taken`) runs on torch
    only; TensorFlow and JAX train in fp32 (README, "Backends")."""
    if keras.backend.backend() == "torch":
        precision = fast_paths().precision_taken(precision)
    elif precision == "bf16":
        raise UserError(f"{option('precision', 'bf16')} runs on the torch backend only (this is "
                        f"{keras.backend.backend()}): set KERAS_BACKEND=torch, or take {option('precision', 'auto')}")
    else:
        precision = "fp32"
    training_state(model).precision = precision
    return precision


def rng_states(model):
    """The backend's own random generators that Keras's layers draw from (torch: PyTorch's, whose CPU stream
    the model keeps), base64 text for checkpoint.json; {} elsewhere."""
    if keras.backend.backend() != "torch":
        return {}
    return {"torch": [base64.b64encode(state).decode("ascii") for state in fast_paths().rng_states(model)]}


def set_rng_states(model, states):
    if keras.backend.backend() == "torch" and "torch" in states:
        fast_paths().set_rng_states(model, [base64.b64decode(state) for state in states["torch"]])


def pytorch_weights(cell, kernel, recurrent_kernel, bias):
    """One Keras layer's weights in PyTorch's (and cuDNN's) layout: W_ih [gates * H, inputs], W_hh, b_ih, b_hh.

    LSTM: Keras's gates i, f, c, o are PyTorch's i, f, g, o; Keras has one bias, so b_hh is zero.
    GRU (reset_after=True, Keras's default): Keras's z, r, h become PyTorch's r, z, n, and the two
    Keras biases (input, recurrent) are b_ih and b_hh. SimpleRNN (tanh): one gate, one bias, as the LSTM's.
    """
    if cell == "gru":
        units = recurrent_kernel.shape[0]

        def reorder(w):
            return ops.concatenate([w[..., units:2 * units], w[..., :units], w[..., 2 * units:]], axis=-1)
        kernel, recurrent_kernel, bias = reorder(kernel), reorder(recurrent_kernel), reorder(bias)
        b_ih, b_hh = bias[0], bias[1]
    else:
        b_ih, b_hh = bias, ops.zeros_like(bias)
    return [ops.transpose(kernel), ops.transpose(recurrent_kernel), b_ih, b_hh]
