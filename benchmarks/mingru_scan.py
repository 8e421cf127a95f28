"""The candidate scans of minGRU's linear recurrence h_t = a_t h_{t-1} + b_t, forward and backward, on this backend.

    KERAS_BACKEND=torch python benchmarks/mingru_scan.py [--repeats 5] [--hidden 288]

One JSON line per candidate and shape: ms for the forward and backward of sum(h * w) over [B, T, H] in float32
(the fastest and the median of `--repeats` after a warm-up, the candidates taking turns; JAX's step jitted,
TensorFlow's a tf.function, torch's eager), and the largest difference from a float64 sequential loop's h, relative
where |h| > 1 (also with the gates saturated: a_t drawn near 0 and near 1). "reference" is minGRU's input projection
at the same width, forward and backward, for scale. The shapes are
B32 T128 and B*T = 8192 at T = 1024 and 4096. docs/mingru-scan.md has the figures and the choice.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
from keras import ops  # noqa: E402

from kerasrnn.models.mingru import linear_scan, pairwise_scan  # noqa: E402

BACKEND = keras.backend.backend()
SHAPES = [(32, 128), (8, 1024), (2, 4096)]


def heinsen(log_a, log_b):
    """Heinsen's (the paper's appendix B): exp(cumsum(log a) + logcumsumexp(log b - cumsum(log a)))."""
    a_star = ops.cumsum(log_a, axis=1)
    return ops.exp(a_star + logcumsumexp(log_b - a_star))


def log_scan(log_a, log_b):
    """kerasrnn's `linear_scan` in log space: (log A_t, log H_t), every step a logaddexp."""
    def combine(earlier, later):
        (a1, b1), (a2, b2) = earlier, later
        return a1 + a2, ops.logaddexp(a2 + b1, b2)
    return ops.associative_scan(combine, (log_a, log_b), axis=1)


def logcumsumexp(x):
    if BACKEND == "torch":
        import torch
        return torch.logcumsumexp(x, dim=1)
    if BACKEND == "jax":
        import jax
        return jax.lax.cumlogsumexp(x, axis=1)
    import tensorflow as tf
    return tf.math.cumulative_logsumexp(x, axis=1)


def candidates(hidden):
    """The scans by name, (log a, log b) -> h, and for scale minGRU's input projection at the same width,
    [B, T, H] @ [H, 2H] (not a scan)."""
    projection = ops.convert_to_tensor(np.random.default_rng(2).normal(0, 0.05, (hidden, 2 * hidden)).astype("float32"))
    return {
        "associative_scan(a, b)": lambda log_a, log_b: linear_scan(ops.exp(log_a), ops.exp(log_b))[1],
        "pairwise_scan(a, b)": lambda log_a, log_b: pairwise_scan(ops.exp(log_a), ops.exp(log_b))[1],
        "associative_scan(log a, log b)": lambda log_a, log_b: ops.exp(log_scan(log_a, log_b)[1]),
        "cumsum+logcumsumexp (Heinsen)": heinsen,
        "reference: the projection x @ W": lambda log_a, log_b: ops.matmul(log_a + log_b, projection)[..., :hidden],
    }


def loss_and_grads(scan):
    """f(log_a, log_b, w) -> (h, gradients of sum(h * w) as to log_a and log_b), compiled as the backend runs a step."""
    if BACKEND == "torch":
        import torch

        def run(log_a, log_b, w):
            log_a, log_b = log_a.detach().requires_grad_(), log_b.detach().requires_grad_()
            h = scan(log_a, log_b)
            return (h.detach(), *torch.autograd.grad((h * w).sum(), [log_a, log_b]))
        return run
    if BACKEND == "jax":
        import jax

        def loss(log_a, log_b, w):
            h = scan(log_a, log_b)
            return (h * w).sum(), h
        step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))

        def run(log_a, log_b, w):
            (_, h), grads = step(log_a, log_b, w)
            return (h, *grads)
        return lambda *args: jax.block_until_ready(run(*args))
    import tensorflow as tf

    @tf.function
    def run(log_a, log_b, w):
        with tf.GradientTape() as tape:
            tape.watch([log_a, log_b])
            h = scan(log_a, log_b)
            loss = tf.reduce_sum(h * w)
        return (h, *tape.gradient(loss, [log_a, log_b]))
    return run


def inputs(batch, length, hidden, saturated, seed=0):
    """log a_t, log b_t, w: a_t = 1 - z_t and b_t = z_t * g(h~_t) as minGRU makes them, from gates drawn
    N(0, 2^2), or saturated (N(0, 1) +- 12: a_t within 6e-6 of 0 or 1)."""
    rng = np.random.default_rng(seed)
    gate = rng.normal(0, 1, (batch, length, hidden)) + (rng.choice([-12, 12], (batch, length, hidden))
                                                         if saturated else rng.normal(0, 1, (1, 1, 1)))
    hidden_ = rng.normal(0, 1, (batch, length, hidden))
    log_a = -np.logaddexp(0, gate)  # log(1 - sigmoid(gate))
    log_b = -np.logaddexp(0, -gate) + np.where(hidden_ >= 0, np.log(np.maximum(hidden_, 0) + 0.5),
                                               -np.logaddexp(0, -hidden_))
    w = rng.normal(0, 1, (batch, length, hidden))
    return [ops.convert_to_tensor(v.astype("float32")) for v in (log_a, log_b, w)]


def sequential(log_a, log_b):
    a, b = np.exp(np.float64(log_a)), np.exp(np.float64(log_b))
    h, out = np.zeros_like(a[:, 0]), np.empty_like(a)
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out[:, t] = h
    return out


def error(run, batch, length, hidden, saturated):
    """The largest difference of the candidate's h from the float64 loop's, relative where |h| > 1, or "nan/inf"
    where h or a gradient is not finite."""
    log_a, log_b, w = inputs(batch, length, hidden, saturated, seed=1)
    h, *grads = run(log_a, log_b, w)
    h, want = ops.convert_to_numpy(h), sequential(ops.convert_to_numpy(log_a), ops.convert_to_numpy(log_b))
    if not all(np.isfinite(ops.convert_to_numpy(x)).all() for x in (h, *grads)):
        return "nan/inf"
    return float(np.max(np.abs(h - want) / np.maximum(1, np.abs(want))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=288)
    parser.add_argument("--only", help="the candidates whose name contains this")
    args = parser.parse_args()
    runs = {name: loss_and_grads(scan) for name, scan in candidates(args.hidden).items()
            if not args.only or args.only in name}
    for batch, length in SHAPES:
        log_a, log_b, w = inputs(batch, length, args.hidden, saturated=False)
        times = {name: [] for name in runs}
        for name, run in runs.items():
            run(log_a, log_b, w)
        for _ in range(args.repeats):  # the candidates take turns, so that the machine's drift meets each alike
            for name, run in runs.items():
                start = time.perf_counter()
                run(log_a, log_b, w)
                times[name].append(time.perf_counter() - start)
        for name, run in runs.items():
            errors = ["-", "-"] if name.startswith("reference") else [error(run, batch, length, args.hidden, saturated)
                                                                      for saturated in (False, True)]
            ms = [1000 * t for t in times[name]]
            print(json.dumps({"backend": BACKEND, "scan": name, "B": batch, "T": length, "H": args.hidden,
                              "ms": round(min(ms), 2), "median_ms": round(float(np.median(ms)), 2),
                              "max_rel_error": errors[0], "max_rel_error_saturated": errors[1]}), flush=True)


if __name__ == "__main__":
    main()
