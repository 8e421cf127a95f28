"""The torch backend's fast paths: the recurrent stack as one call of PyTorch's own LSTM, GRU or RNN kernel
(oneDNN's fused RNN on a CPU, cuDNN on a GPU), the model's training and validation steps with PyTorch's
own functions for each layer, and the optimizer's passes over all the weights as PyTorch's multi-tensor
kernels. Each gives what Keras's own path gives (tests/test_model.py, tests/test_optim.py); those that
rest on a private attribute run only where `compat` found it working.

Why each is here: Keras runs every torch step eagerly, so what it wraps around PyTorch's functions
(`Layer.__call__`'s conversions, scopes and hooks, the compiled loss's reshapes, Keras's metric and
optimizer ops) costs a share of a small model's step that PyTorch's own loop does not pay
(docs/benchmarks.md, "Training throughput")."""
import contextlib
import inspect
import math
import sys
import warnings

import keras
import torch
import torch.nn.functional as F
from keras import layers

from .. import compat
from ..optim import optimizer_slots, slot_name
from . import cpu_has_bf16, pytorch_weights, training_state


# -- the recurrent stack -------------------------------------------------------------------------------------

def fused_rnn_works():
    """compat's check of `torch._VF`: PyTorch's kernel, called as `call_fused_kernel` calls it, computes what
    nn.LSTM, nn.GRU and nn.RNN compute. The modules initialize from PyTorch's default generator, which dropout draws
    from: the probe forks it, so that a process's first run trains as its later ones do."""
    def probe():
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(2, 3, 4, generator=generator)
        with torch.random.fork_rng(devices=[]):
            modules = (("lstm", torch.nn.LSTM(4, 5, 2, batch_first=True)),
                       ("gru", torch.nn.GRU(4, 5, 2, batch_first=True)),
                       ("rnn", torch.nn.RNN(4, 5, 2, batch_first=True)))
        for cell, module in modules:
            h = torch.randn(2, 2, 5, generator=generator)
            state = (h, torch.randn(2, 2, 5, generator=generator)) if cell == "lstm" else h
            with torch.no_grad():
                want, _ = module(x, state)
                got = call_fused_kernel(cell, x, state, list(module.parameters()), 2, training=False)[0]
            if not torch.allclose(got, want, atol=1e-6):
                return f"torch._VF's {cell} kernel computed another result than nn.{cell.upper()}"
        return None
    return compat.enabled("torch-fused-rnn", probe)


def runs_fused(stack):
    return fused_rnn_works()  # every cell: lstm, gru and rnn (SimpleRNN: PyTorch's tanh RNN)


def prepare_stack(stack):
    """A fused LSTM's kernels are stored transposed in memory: PyTorch's layout (`transposed_in_memory`)."""
    if stack.fused and stack.cell == "lstm" and fused_rnn_works() and transposed_layout_works():
        transposed_in_memory([w for rnn in stack.rnns for w in (rnn.cell.kernel, rnn.cell.recurrent_kernel)])


def transposed_in_memory(variables):
    """Stores each torch variable's 2-D matrix transposed in memory, its shape and values unchanged, by
    swapping the tensor under its Parameter (where `transposed_layout_works`). A fused LSTM's kernels then
    are contiguous in PyTorch's layout (`pytorch_weights`), and their gradients arrive in their own layout:
    without it, three transposing copies of each recurrent kernel a step (their cost: docs/benchmarks.md,
    "Training throughput")."""
    data = compat.attribute("torch-transposed-layout", "data")
    for variable in variables:
        setattr(variable.value, data, getattr(variable.value, data).t().contiguous().t())


def transposed_layout_works():
    """compat's check of `Tensor.data`: swapping it under a keras.Variable's Parameter keeps the Variable's
    shape and values, lays it out transposed in memory, and `assign` and gradients still reach it."""
    def probe():
        values = torch.arange(6.0).reshape(2, 3)
        variable = keras.Variable(values)
        transposed_in_memory([variable])
        value = variable.value
        if tuple(value.shape) != (2, 3) or not torch.equal(value.detach().cpu(), values):
            return "the swap changed a variable's shape or values"
        if value.stride() != (1, 2):
            return "the swap did not lay the variable out transposed in memory"
        variable.assign(values * 2)
        if variable.value is not value or not torch.equal(value.detach().cpu(), values * 2) or value.stride() != (1, 2):
            return "assign did not write into the swapped tensor"
        (value * values.to(value.device)).sum().backward()
        if value.grad is None or not torch.equal(value.grad.cpu(), values):
            return "the swapped tensor's gradient is wrong"
        return None
    return compat.enabled("torch-transposed-layout", probe)


def fused_stack(cell, inputs, states, weights, training):
    """Runs a stack of LSTM, GRU or SimpleRNN layers, given their Keras (kernel, recurrent_kernel, bias) in `weights`,
    as one call of PyTorch's own kernel. Returns the last layer's outputs and the final states in `states`'
    order (h0, c0, h1, c1, ... for an LSTM; h0, h1, ... for a GRU or a SimpleRNN)."""
    flat = [w for layer in weights for w in pytorch_weights(cell, *layer)]
    num_layers = len(weights)
    if cell == "lstm":
        initial = (torch.stack(states[0::2]), torch.stack(states[1::2]))
        outputs, h, c = call_fused_kernel(cell, inputs, initial, flat, num_layers, training)
        finals = [s for i in range(num_layers) for s in (h[i], c[i])]
    else:
        outputs, h = call_fused_kernel(cell, inputs, torch.stack(states), flat, num_layers, training)
        finals = list(h)
    return outputs, [s.float() for s in finals]  # under autocast, bf16: the carried state stays fp32


def call_fused_kernel(cell, inputs, state, flat_weights, num_layers, training):
    """`torch._VF.lstm`, `.gru` or `.rnn_tanh` as nn.LSTM, nn.GRU and nn.RNN call it (batch first, with biases,
    no dropout, one direction); `state` is (h, c) for an LSTM, h otherwise, each [layers, batch, units]."""
    kernel = compat.get("torch-fused-rnn", cell)
    return kernel(inputs, tuple(state) if cell == "lstm" else state, flat_weights, has_biases=True,
                  num_layers=num_layers, dropout=0.0, train=training, bidirectional=False, batch_first=True)


# -- the precision of the steps -----------------------------------------------------------------------------

def precision_taken(precision):
    """`auto` takes bf16 on a CPU with bfloat16 instructions (`cpu_has_bf16`), fp32 elsewhere (on a GPU, not
    yet measured); an explicit bf16 on a CPU without them runs, slower, with one warning line."""
    on_cpu = not torch.cuda.is_available()
    if precision == "auto":
        precision = "bf16" if on_cpu and cpu_has_bf16() else "fp32"
    elif precision == "bf16" and on_cpu and not cpu_has_bf16():
        print("kerasrnn: warning: this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16): --precision bf16 "
              "runs emulated, slower than fp32", file=sys.stderr)
    return precision


def bf16_autocast(device):
    """PyTorch's autocast to bfloat16 on `device` ("cpu" or "cuda"). oneDNN's bf16 LSTM needs the CPU's bf16
    instructions: on a CPU without them, PyTorch's own LSTM runs in its place, emulated."""
    if device == "cpu" and not cpu_has_bf16():
        return emulated_bf16_autocast()
    return torch.autocast(device, dtype=torch.bfloat16)


@contextlib.contextmanager
def emulated_bf16_autocast():
    with contextlib.ExitStack() as stack:
        with warnings.catch_warnings():  # its flags set oneDNN's TF32 too, which a CPU build warns about once
            warnings.simplefilter("ignore", UserWarning)
            stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
        stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        yield


def autocast(model, training):
    """Mixed bfloat16 for the forward pass of a training step where the model trains in bf16 (`backends.set_precision`): the
    fused LSTM kernel and the logits' `F.linear` run in bf16 while the weights, their gradients and the
    optimizer's state stay fp32 (`scored` takes the loss in fp32, `fused_stack` keeps the carried state fp32),
    so checkpoints stay fp32 and a resumed run computes what a run never stopped does. It covers the steps
    that call the layers directly (`calls_layers_directly`, every step of `kerasrnn train`); Keras's own run fp32.
    Validation runs fp32, so the loss a run records is what its fp32 checkpoint scores."""
    if not training or training_state(model).precision != "bf16":
        return contextlib.nullcontext()
    return bf16_autocast(model.trainable_weights[0].value.device.type)


# -- the model's steps ---------------------------------------------------------------------------------------

def train_step(model, keras_step, args):
    """A training step with the model's own stream of PyTorch's CPU generator (`own_generator`); where
    `calls_layers_directly`, each layer's own call in turn and the loss scored on flattened logits."""
    with own_generator(model):
        if not calls_layers_directly(model, args):
            return keras_step(*args)
        (data,) = args
        laid_out(model)
        model.zero_grad()
        loss, y, logits = scored(model, *data, training=True)
        model.optimizer.scale_loss(loss).backward()
        weights = model.trainable_weights[:]
        with torch.no_grad():
            model.optimizer.apply([w.value.grad for w in weights], weights)
        return metrics_result(model, data[0], y, logits)


def test_step(model, keras_step, args):
    if not calls_layers_directly(model, args):
        return keras_step(*args)
    (data,) = args
    laid_out(model)  # a validation before any training step (evaluate) lays out as the first step would
    _, y, logits = scored(model, *data, training=False)
    return metrics_result(model, data[0], y, logits)


def calls_layers_directly(model, args):
    """Whether a step takes the direct path: an (x, y) batch, and no mixed-precision policy (which
    `Layer.__call__` applies)."""
    return isinstance(args[0], (tuple, list)) and len(args[0]) == 2 and model.dtype_policy.name == "float32"


@contextlib.contextmanager
def own_generator(model):
    """PyTorch's default CPU generator holds the model's own random stream during a training step. Keras's
    dropout draws from that generator on torch (its fast path), and so does the data loading between steps,
    a different number of times in a run that resumed; with the stream swapped in for the steps alone, the
    masks follow from the steps, and checkpoints save it (`rng_states`)."""
    outside = torch.get_rng_state()
    torch.set_rng_state(generator_state(model))
    try:
        yield
    finally:
        training_state(model).generator_state = torch.get_rng_state()
        torch.set_rng_state(outside)


def generator_state(model):
    """The model's stream of PyTorch's CPU generator; before its first step, the generator's state."""
    state = training_state(model)
    if state.generator_state is None:
        state.generator_state = torch.get_rng_state()
    return state.generator_state


def rng_states(model):
    """The model's stream of the CPU generator and each GPU's generator, as byte strings."""
    gpus = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return [g.numpy().tobytes() for g in [generator_state(model), *gpus]]


def set_rng_states(model, states):
    cpu, *gpus = [torch.frombuffer(bytearray(g), dtype=torch.uint8) for g in states]
    training_state(model).generator_state = cpu
    if gpus and torch.cuda.is_available() and len(gpus) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(gpus)


class Plan:
    """What `lay_out` found once for the steps (kept in the model's `TrainingState`): the optimizer's id,
    whether the loss is kerasrnn's own (`plain_cross_entropy`), whether metrics are compiled, the loss
    tracker, and which layers' calls take `training`."""

    def __init__(self, optimizer, plain_loss, metrics_compiled, loss_tracker, takes_training):
        self.optimizer, self.plain_loss, self.metrics_compiled = optimizer, plain_loss, metrics_compiled
        self.loss_tracker, self.takes_training = loss_tracker, takes_training


def laid_out(model):
    """The model's `Plan`, laid out (`lay_out`) on the first step with its optimizer."""
    state = training_state(model)
    if state.plan is None or state.plan.optimizer != id(model.optimizer):
        state.plan = lay_out(model)
    return state.plan


def lay_out(model):
    """Before the first step with an optimizer: the weights that `call_layer` passes to `F.linear` in
    nn.Linear's memory layout, the optimizer adapted (`adapt_optimizer`) and built, as its first `apply`
    would build it, and its per-weight variables laid out as their weights. Returns the steps' `Plan`."""
    weights = model.trainable_weights[:]
    transposed = transposed_layout_works()  # off: every weight keeps Keras's layout (slower, the same math)
    if transposed:
        transposed_in_memory([layer.kernel for layer in model.layers if runs_as_linear(layer)
                              and layer.kernel.value.is_contiguous()])
    optimizer = model.optimizer
    if not optimizer.built:
        with keras.name_scope(optimizer.name, caller=optimizer):
            optimizer.build(weights)
    adapt_optimizer(optimizer)
    if transposed:
        prefixes = tuple(slot_name(w, "") for w in weights if not w.value.is_contiguous())
        transposed_in_memory([v for v in optimizer.variables if v.name.startswith(prefixes)
                              and v.value.is_contiguous()])
    compiled = model.get_compile_config()
    return Plan(id(optimizer), plain_cross_entropy(model, compiled),
                bool(compiled.get("metrics") or compiled.get("weighted_metrics")),
                next(m for m in model.metrics if m.name == "loss"),
                {id(layer): "training" in inspect.signature(layer.call).parameters for layer in model.layers})


def plain_cross_entropy(model, compiled):
    """Whether the compiled loss is the one kerasrnn compiles, the mean from-logits sparse cross-entropy with
    no loss weights, and the layers add no losses: then it is one call of PyTorch's `cross_entropy`, where
    Keras wraps that call in its `Loss` conversions and reduction. Any other loss goes through `compute_loss`."""
    loss = model.loss
    return (type(loss) is keras.losses.SparseCategoricalCrossentropy and compiled.get("loss_weights") is None
            and {k: v for k, v in loss.get_config().items() if k != "name"}
            == {"reduction": "sum_over_batch_size", "from_logits": True, "ignore_class": None}
            and not model.losses)


def scored(model, x, y, training):
    """The loss, targets and logits of a batch, the last two flattened to one row per token, the logits in
    fp32 (the forward pass may run in bf16: `autocast`). The loss tracker takes the loss
    (`track_loss`)."""
    plan, logits = training_state(model).plan, x
    with autocast(model, training):
        for layer in model.layers[1:]:  # after the Input: build_model's chain, in order
            logits = call_layer(layer, logits, training, plan.takes_training[id(layer)])
    y, logits = y.reshape(-1), logits.reshape(-1, logits.shape[-1]).float()
    if plan.plain_loss:
        loss = F.cross_entropy(logits, y.long())
    else:
        loss = model.compute_loss(x=x, y=y, y_pred=logits, training=training)
    track_loss(plan.loss_tracker, loss, x.shape[0])
    return loss, y, logits


def track_loss(tracker, loss, batch):
    """`tracker.update_state(loss, sample_weight=batch)` (a Keras `Mean`, as Keras's steps call it): where
    `loss_tracker_works`, as two in-place additions to its total and count, where `update_state` makes a
    dozen ops."""
    with torch.no_grad():
        if loss_tracker_works():
            total, count = tracker_sums(tracker)
            total.value.add_(loss.detach() * batch)
            count.value.add_(batch)
        else:
            tracker.update_state(loss.detach(), sample_weight=batch)


def tracker_sums(tracker):
    """A Keras `Mean`'s total and count variables."""
    return [getattr(tracker, compat.attribute("torch-loss-tracker", name)) for name in ("total", "count")]


def loss_tracker_works():
    """compat's check of `Mean.total` and `Mean.count`: a Mean has them, and `track_loss`'s two additions
    leave its variables as `update_state` does."""
    def probe():
        added, updated = keras.metrics.Mean(), keras.metrics.Mean()
        if problem := compat.missing_on(added, "torch-loss-tracker"):
            return problem
        total, count = tracker_sums(added)
        for loss, batch in ((2.5, 3), (0.75, 5)):
            loss = torch.tensor(loss, device=total.value.device)
            updated.update_state(loss, sample_weight=batch)
            total.value.add_(loss * batch)
            count.value.add_(batch)
        if not all(torch.equal(a.value, u.value) for a, u in zip(added.variables, updated.variables, strict=True)):
            return "adding to Mean's total and count gave another result than update_state"
        return None
    return compat.enabled("torch-loss-tracker", probe)


def metrics_result(model, x, y, logits):
    """`compute_metrics`; with no compiled metrics (kerasrnn compiles none), the loss tracker's mean alone,
    which is what `compute_metrics` returns then, without walking the layers for metrics and dividing by
    Keras's ops (where `loss_tracker_works`; else the tracker's `result`)."""
    plan = training_state(model).plan
    if plan.metrics_compiled:
        return model.compute_metrics(x, y, logits)
    if not loss_tracker_works():
        return {"loss": plan.loss_tracker.result()}
    total, count = tracker_sums(plan.loss_tracker)
    return {"loss": total.value / count.value}


def runs_as_linear(layer):
    """Whether `call_layer` runs `layer` as `F.linear`: a plain Dense layer (no activation, LoRA or
    quantization)."""
    return (type(layer) is layers.Dense and layer.activation is keras.activations.linear and not layer.lora_enabled
            and layer.quantization_mode is None)


def call_layer(layer, x, training, takes_training):
    """`layer.call(x)`, as PyTorch's own function where Keras's call wraps one in conversions: a plain
    Embedding as `F.embedding` (Keras's adds casts and a pass for negative ids), a plain Dense as `F.linear`
    on its kernel transposed in memory, as nn.Linear holds it (`lay_out`; Keras's matmul and add on its own
    layout are slower). What each saves: docs/benchmarks.md, "Training throughput"."""
    if type(layer) is layers.Embedding and not layer.lora_enabled and layer.quantization_mode is None:
        return F.embedding(x, layer.embeddings.value)
    if runs_as_linear(layer):
        return F.linear(x, layer.kernel.value.t(), layer.bias.value if layer.use_bias else None)
    return layer.call(x, training=training) if takes_training else layer.call(x)


# -- the optimizer -------------------------------------------------------------------------------------------

def adapt_optimizer(optimizer):
    """Has a Keras optimizer make its passes over all the weights as torch.optim makes them, where `compat`
    found the private hooks working: clipping by global norm as foreach ops, and Adam's and AdamW's update
    on a CPU as one call of PyTorch's fused Adam kernel. Any other setting runs as Keras runs it; so do
    AdamW's weight decay and weight averaging, passes of their own around the update."""
    if compat.enabled("torch-foreach-clip", probe_foreach_clip):
        install_foreach_clip(optimizer)
    if compat.enabled("torch-fused-adam", probe_fused_adam):
        install_fused_adam(optimizer)


def probe_foreach_clip():
    """Keras's optimizer clips through the method `install_foreach_clip` replaces, and the foreach clip gives
    Keras's result."""
    grads = [torch.full((2, 3), 3.0)]
    optimizer = keras.optimizers.Adam(global_clipnorm=1.0)
    clip = compat.attribute("torch-foreach-clip", "clip")
    want = getattr(optimizer, clip)(grads)[0]
    install_foreach_clip(optimizer)
    got = getattr(optimizer, clip)(grads)[0]
    return None if torch.allclose(got, want, rtol=1e-6) else "the foreach clip gave another result than Keras's"


def probe_fused_adam():
    """Keras's torch Adam calls the update `install_fused_adam` puts in, and it gives Keras's result."""
    values = torch.linspace(-1, 1, 6).reshape(2, 3)
    results = []
    for fused in (False, True):
        weight = keras.Variable(values.clone())
        optimizer = keras.optimizers.Adam(0.1)
        optimizer.build([weight])
        update = install_fused_adam(optimizer) if fused else None
        for _ in range(2):
            optimizer.apply([values * 0.5], [weight])
        if fused and (update is None or update.fused_steps != 2):
            return "Keras's Adam did not call the fused update"
        results.append(weight.value.detach().clone())
    return None if torch.allclose(*results, atol=1e-5) else "the fused update gave another result than Keras's"


def install_foreach_clip(optimizer):
    name = compat.attribute("torch-foreach-clip", "clip")
    keras_clip = getattr(type(optimizer), name)

    def clip(grads):  # Keras clips by `clipnorm` first, then by `global_clipnorm`
        clipnorm, global_clipnorm = optimizer.clipnorm or 0, optimizer.global_clipnorm or 0
        if clipnorm > 0 or global_clipnorm <= 0 or any(g is None for g in grads):
            return keras_clip(optimizer, grads)
        return clip_by_global_norm(grads, global_clipnorm)
    setattr(optimizer, name, clip)


def clip_by_global_norm(grads, clip_norm):
    """Keras's `clip_by_global_norm` (the same formula, NaN for a non-finite norm) as PyTorch's foreach ops:
    one norm kernel over all the gradients, where Keras makes three ops per gradient."""
    norm = torch.linalg.vector_norm(torch.stack(compat.get("torch-foreach-clip", "norm")(grads)))
    scale = clip_norm * torch.clamp(1 / norm, max=1 / clip_norm) + (norm - norm)
    return compat.get("torch-foreach-clip", "mul")(grads, scale)


def install_fused_adam(optimizer):
    """Replaces the torch backend's Adam (or AdamW) update of `optimizer` by `fused_adam_update` wherever
    that can run. Returns the update installed (its `fused_steps` counts the steps the kernel made), or
    None for another optimizer or amsgrad."""
    name = compat.attribute("torch-fused-adam", "update")
    keras_update = compat.get("torch-fused-adam", "update")
    if getattr(type(optimizer), name, None) is not keras_update or optimizer.amsgrad:
        return None

    def update(grads, variables, learning_rate):
        if fused_adam_update(optimizer, grads, variables, learning_rate, update.slots):
            update.fused_steps += 1
        else:
            keras_update(optimizer, grads, variables, learning_rate)
    update.fused_steps, update.slots = 0, {}
    setattr(optimizer, name, update)
    return update


def fused_adam_update(optimizer, grads, variables, learning_rate, slots) -> bool:
    """Keras's Adam update (no amsgrad) of `variables` as one call of PyTorch's fused Adam kernel, where
    Keras's makes ten foreach ops. The formulas differ
    in one place: PyTorch adds epsilon after dividing the second moment's root by its bias correction
    sqrt(1 - beta_2^t), Keras before, so Keras's epsilon is PyTorch's times that correction. It runs on a
    CPU only (that epsilon needs the step count on the host: on a GPU, a wait for the device every step),
    and only where every weight lies in memory as its gradient and moments do: the kernel walks each
    tensor's memory in order, so a mismatch would silently pair the wrong elements. `slots` caches each
    weight's (momentum, velocity) variables, found by their names. Returns whether it ran."""
    key = tuple(id(v) for v in variables)
    if key not in slots:
        slots[key] = list(zip(optimizer_slots(optimizer, variables, "momentum"),
                              optimizer_slots(optimizer, variables, "velocity")))
    if any(m is None or v is None for m, v in slots[key]):
        return False
    params = [v.value for v in variables]
    momentums, velocities = [m.value for m, _ in slots[key]], [v.value for _, v in slots[key]]
    if not all(p.device.type == "cpu" and p.stride() == g.stride() == m.stride() == v.stride()
               for p, g, m, v in zip(params, grads, momentums, velocities)):
        return False
    step = int(optimizer.iterations.value) + 1  # Keras counts steps after the update
    compat.get("torch-fused-adam", "kernel")(
        params, list(grads), momentums, velocities, [], [torch.tensor(float(step))] * len(params),
        lr=float(learning_rate), beta1=optimizer.beta_1, beta2=optimizer.beta_2, weight_decay=0.0,
        eps=optimizer.epsilon / math.sqrt(1 - optimizer.beta_2 ** step), amsgrad=False, maximize=False)
    return True
