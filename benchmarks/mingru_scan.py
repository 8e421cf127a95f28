"""The candidate scans of minGRU's linear recurrence h_t = a_t h_{t-1} + b_t, forward and backward, on this backend.

    KERAS_BACKEND=torch python benchmarks/mingru_scan.py [--repeats 5] [--hidden 288]
    KERAS_BACKEND=torch python benchmarks/mingru_scan.py --block [--repeats 5]

One JSON line per candidate and shape: ms for the forward and backward of sum(h * w) over [B, T, H] in float32
(the fastest and the median of `--repeats` after a warm-up, the candidates taking turns; JAX's step jitted,
TensorFlow's a tf.function, torch's eager), and the largest difference from a float64 sequential loop's h, relative
where |h| > 1 (also with the gates saturated: a_t drawn near 0 and near 1). "reference" is minGRU's input projection
at the same width, forward and backward, for scale. The shapes are
B32 T128 and B*T = 8192 at T = 1024 and 4096. docs/mingru-scan.md has the figures and the choice.

`--block` weighs one MinBlock of `mingru-tiny`'s width (192, the recurrence 1.5 times wider: 288) at B*T = 8192,
T = 64 to 4096: the forward and backward of the scan it runs (`parallel`, this backend's form in `SCANS`, from the
gate and candidate pre-activations) against those of its four matrix products alone (the input's projection to
gate and candidate, the output's, the MLP's two; weights' gradients included), the two taking turns. One JSON
line per T, then whether the scan took no longer than the products at every T (by the fastest of `--repeats`).
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

from kerasrnn.models.mingru import SCANS, linear_scan, pairwise_scan, parallel  # noqa: E402

BACKEND = keras.backend.backend()
SHAPES = [(32, 128), (8, 1024), (2, 4096)]
BLOCK_SHAPES = [(8192 // t, t) for t in (64, 256, 1024, 4096)]
WIDTH, EXPANSION, MLP_RATIO = 192, 1.5, 4  # mingru-tiny's block


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


def loss_and_grads(f):
    """f(*inputs) -> h becomes run(*inputs, w) -> (h, the gradients of sum(h * w) as to every input), compiled as
    the backend runs a step."""
    if BACKEND == "torch":
        import torch

        def run(*args):
            inputs, w = [x.detach().requires_grad_() for x in args[:-1]], args[-1]
            h = f(*inputs)
            return (h.detach(), *torch.autograd.grad((h * w).sum(), inputs))
        return run
    if BACKEND == "jax":
        import jax

        def loss(*args):
            h = f(*args[:-1])
            return (h * args[-1]).sum(), h

        @jax.jit
        def run(*args):
            (_, h), grads = jax.value_and_grad(loss, argnums=tuple(range(len(args) - 1)), has_aux=True)(*args)
            return (h, *grads)
        return lambda *args: jax.block_until_ready(run(*args))
    import tensorflow as tf

    @tf.function
    def run(*args):
        inputs, w = list(args[:-1]), args[-1]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            h = f(*inputs)
            loss = tf.reduce_sum(h * w)
        return (h, *tape.gradient(loss, inputs))
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
    parser.add_argument("--block", action="store_true", help="one MinBlock's scan against its matrix products")
    args = parser.parse_args()
    if args.block:
        return block(args.repeats)
    runs = {name: loss_and_grads(scan) for name, scan in candidates(args.hidden).items()
            if not args.only or args.only in name}
    for batch, length in SHAPES:
        log_a, log_b, w = inputs(batch, length, args.hidden, saturated=False)
        times = take_turns({name: (run, (log_a, log_b, w)) for name, run in runs.items()}, args.repeats)
        for name, run in runs.items():
            errors = ["-", "-"] if name.startswith("reference") else [error(run, batch, length, args.hidden, saturated)
                                                                      for saturated in (False, True)]
            print(json.dumps({"backend": BACKEND, "scan": name, "B": batch, "T": length, "H": args.hidden,
                              **times[name], "max_rel_error": errors[0], "max_rel_error_saturated": errors[1]}),
                  flush=True)


def take_turns(runs, repeats):
    """{name: (run, its inputs)} -> {name: {ms, median_ms, cpu_ms}} of `repeats` calls each after a warm-up, the runs
    taking turns, so that the machine's drift meets each alike. cpu_ms is the fastest call's CPU time, all threads:
    on a shared machine, less moved by the others' load than the wall time (though a thread spinning counts)."""
    times = {name: [] for name in runs}
    for run, args in runs.values():
        run(*args)
    for _ in range(repeats):
        for name, (run, args) in runs.items():
            start, cpu = time.perf_counter(), time.process_time()
            run(*args)
            times[name].append((1000 * (time.perf_counter() - start), 1000 * (time.process_time() - cpu)))
    return {name: dict(ms=round(min(t)[0], 2), median_ms=round(float(np.median([w for w, _ in t])), 2),
                       cpu_ms=round(min(c for _, c in t), 2)) for name, t in times.items()}


def block_parts(batch, length):
    """One MinBlock's parts as {name: (f, its inputs and w)}: the scan (`parallel` from the gate's and candidate's
    pre-activations, h0 = 0) and its four matrix products, x @ kernel (gate and candidate), the candidate's half
    @ out, then the MLP's fc and fc_proj (no elementwise step between: the products alone)."""
    inner, rng = int(WIDTH * EXPANSION), np.random.default_rng(3)

    def tensor(*shape, scale=1.0):
        return ops.convert_to_tensor(rng.normal(0, scale, shape).astype("float32"))

    def scan(k, pre_candidate):
        return parallel(k, pre_candidate, ops.zeros_like(k[:, 0]))

    def products(x, kernel, out, fc, fc_proj):
        y = ops.matmul(ops.matmul(x, kernel)[..., :inner], out)
        return ops.matmul(ops.matmul(y, fc), fc_proj)

    weights = [tensor(*shape, scale=0.05) for shape in ((WIDTH, 2 * inner), (inner, WIDTH), (WIDTH, MLP_RATIO * WIDTH),
                                                        (MLP_RATIO * WIDTH, WIDTH))]
    return {"scan": (scan, [tensor(batch, length, inner, scale=2.0), tensor(batch, length, inner),
                            tensor(batch, length, inner)]),
            "products": (products, [tensor(batch, length, WIDTH), *weights, tensor(batch, length, WIDTH)])}


def block(repeats):
    """`--block`: a line per T, then whether the scan took no longer than the products at every T."""
    ratios = {"ms": {}, "cpu_ms": {}}
    for batch, length in BLOCK_SHAPES:
        parts = block_parts(batch, length)
        times = take_turns({name: (loss_and_grads(f), args) for name, (f, args) in parts.items()}, repeats)
        for clock, by_length in ratios.items():
            by_length[length] = round(times["scan"][clock] / times["products"][clock], 2)
        print(json.dumps({"backend": BACKEND, "form": SCANS[BACKEND], "B": batch, "T": length, "width": WIDTH,
                          "inner": int(WIDTH * EXPANSION), **{f"{name}_{k}": v for name, t in times.items()
                                                              for k, v in t.items()},
                          "scan/products": ratios["ms"][length], "scan/products_cpu": ratios["cpu_ms"][length]}),
              flush=True)
    for clock, by_length in ratios.items():
        worst = max(by_length, key=by_length.get)
        print(json.dumps({"backend": BACKEND, "clock": clock, "scan no longer than the products at every T":
                          by_length[worst] <= 1, "largest scan/products": by_length[worst], "at T": worst}), flush=True)


if __name__ == "__main__":
    main()
