"""The inspector's numpy model: the start state, the log-probabilities, and the sampling contract's step model on
a family's numpy weights (`Family.recompute`, whose `forward` gives a kerasrnn.models.trace.Trace).

Keras returns h (and only the final states), and the gates exist only inside its cells, so the inspector runs the
model itself; tests/test_inspect.py holds each family's recomputation to its Keras layers.
"""
import numpy as np

def start_states(weights, batch=1):
    """The start state (where sampling and the inspector begin) for `batch` streams."""
    return [np.tile(s, (batch, 1)) for s in weights.start_state]


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class NumpyStepModel:
    """The sampling contract's step model (kerasrnn_edge.sampling.generate) on the numpy recomputation:
    samples without building a Keras model (the report's temperature gallery, samples during training)."""

    def __init__(self, weights):
        self.weights, self.start_token = weights, weights.start_token
        self.reset()

    def reset(self):
        self.states = start_states(self.weights)

    def feed(self, ids):
        trace = self.weights.forward(np.asarray(ids, np.int64)[None, :], self.states)
        self.states = trace.states
        return trace.logits[0, -1].astype(np.float32)
