"""What `kerasrnn inspect` reads of a model over a text, recomputed in numpy from its weights: each layer's state
after every step and its gates, which Keras's layers keep inside them. A family that supports "inspect" gives its
numpy weights (`Family.recompute`) a `forward` that returns a `Trace`."""
import dataclasses

import numpy as np


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))  # no overflow for large negative x


def gelu(x):
    """The exact GELU, x Φ(x), with erf by Abramowitz and Stegun's 7.1.26 (within 1.5e-7: numpy has no erf)."""
    u = np.abs(x) / np.sqrt(2)
    t = 1 / (1 + 0.3275911 * u)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1 - poly * np.exp(-u * u))
    return 0.5 * x * (1 + erf)


@dataclasses.dataclass
class Trace:
    h: list        # per layer, [B, T, H]: the hidden state after each step
    c: list        # per layer, [B, T, H]: an LSTM's cell state (empty for the other cells)
    gates: dict    # gate name -> per layer [B, T, H]; empty unless asked for
    logits: np.ndarray  # [B, T, V]: the prediction of the next token after each step
    states: list   # the final states, in the weights' `state_names` order, [B, H] each
