"""The optimizer on torch (`backends.torch.adapt_optimizer`): PyTorch's multi-tensor kernels give what Keras's
own clipping and Adam give."""
import keras
import numpy as np
import pytest

from conftest import only_on

pytestmark = only_on("torch", "the optimizer's torch kernels")
if keras.backend.backend() == "torch":
    from kerasrnn.backends import torch as fast
SHAPES = [(7, 5), (5,), (4, 3, 2)]


@pytest.mark.parametrize("options", [dict(global_clipnorm=1.0), dict(global_clipnorm=1e3), dict(clipnorm=1.0),
                                     dict(clipvalue=0.1), {}], ids=["clipped", "unclipped", "clipnorm", "clipvalue",
                                                                    "none"])
@pytest.mark.parametrize("finite", [True, False], ids=["finite", "inf"])
def test_the_torch_optimizer_clips_as_keras_does(options, finite):
    """It clips by global norm with PyTorch's foreach ops, and clips as Keras does with any other setting:
    either way, Keras's clipped gradients (NaN everywhere when the norm is not finite)."""
    import torch
    rng = np.random.default_rng(6)
    grads = [torch.from_numpy(rng.normal(0, 3, shape).astype("float32")) for shape in SHAPES]
    if not finite:
        grads[1][2] = float("inf")
    optimizer = keras.optimizers.Adam(**options)
    want = optimizer._clip_gradients(grads)
    fast.adapt_optimizer(optimizer)
    got = optimizer._clip_gradients(grads)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6)
    if "global_clipnorm" in options and finite:
        clipped = np.sqrt(sum(float((g ** 2).sum()) for g in got))
        np.testing.assert_allclose(clipped, min(options["global_clipnorm"], np.sqrt(sum(float((g ** 2).sum())
                                                                                        for g in grads))), rtol=1e-6)


@pytest.mark.parametrize("layout", ["alike", "unlike"])
@pytest.mark.parametrize("options", [dict(), dict(weight_decay=0.1), dict(amsgrad=True), dict(use_ema=True)],
                         ids=["adam", "adamw", "amsgrad", "averaged"])
def test_the_torch_adam_updates_as_keras_does(options, layout):
    """Adam's and AdamW's update is one call of PyTorch's fused kernel, with Keras's epsilon (gradients of
    1e-8 are where its place tells), and weight decay and weight averaging as Keras makes them; with
    amsgrad, or a weight lying in memory unlike its gradient and moments, Keras's own update runs. Either
    way, five steps give Keras's weights and moments."""
    import torch
    rng = np.random.default_rng(7)
    initial = [rng.normal(0, 1, shape).astype("float32") for shape in SHAPES]
    steps = [[rng.normal(0, scale, shape).astype("float32") for shape, scale in zip(SHAPES, (1.0, 1e-8, 1e-3))]
             for _ in range(5)]
    kind = keras.optimizers.AdamW if "weight_decay" in options else keras.optimizers.Adam

    def train(adapted):
        variables = [keras.Variable(value) for value in initial]
        optimizer = kind(1e-2, **options)
        optimizer.build(variables)
        if adapted:
            fast.adapt_optimizer(optimizer)
        fast.transposed_in_memory([variables[0]])  # as the fused LSTM's kernels lie, their gradients too
        if layout == "alike":
            fast.transposed_in_memory([optimizer._momentums[0], optimizer._velocities[0]])
        for grads in steps:
            grads = [torch.from_numpy(g) for g in grads]
            grads[0] = grads[0].t().contiguous().t()
            with torch.no_grad():
                optimizer.apply(grads, variables)
        fused_steps = getattr(optimizer._parallel_update_step, "fused_steps", None)  # None: not installed
        return [keras.ops.convert_to_numpy(v) for v in variables + optimizer.variables], fused_steps

    want, _ = train(adapted=False)
    got, fused_steps = train(adapted=True)
    assert fused_steps == (None if "amsgrad" in options else (layout == "alike") * len(steps))
    for g, w in zip(got, want):  # Keras's bias corrections are float32's, PyTorch's float64's: 6e-6 of a step
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
