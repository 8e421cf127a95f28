"""The optimizer and its learning-rate schedule (registered, so checkpoints restore them on resume), and on
torch, the optimizer's passes over all the weights as PyTorch's own multi-tensor kernels (`adapt_to_torch`)."""
import math
from typing import TYPE_CHECKING

import keras

if TYPE_CHECKING:
    from .config import Config


@keras.saving.register_keras_serializable(package="kerasrnn")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then char-rnn's per-epoch exponential decay, a cosine to 10%, or a constant."""

    def __init__(self, learning_rate, kind, steps_per_epoch, total_steps, warmup_steps=0, decay=0.97,
                 decay_after=10):
        self.learning_rate, self.kind, self.steps_per_epoch, self.total_steps = learning_rate, kind, steps_per_epoch, total_steps
        self.warmup_steps, self.decay, self.decay_after = warmup_steps, decay, decay_after

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rate = self.learning_rate * keras.ops.minimum(1.0, (step + 1) / max(1, self.warmup_steps))
        if self.kind == "exponential":
            epochs_past = keras.ops.maximum(0.0, keras.ops.floor(step / self.steps_per_epoch) - self.decay_after + 1)
            return rate * self.decay ** epochs_past
        if self.kind == "cosine":
            progress = keras.ops.minimum(1.0, step / self.total_steps)
            return rate * (0.1 + 0.45 * (1 + keras.ops.cos(math.pi * progress)))
        return rate

    def get_config(self):
        return dict(learning_rate=self.learning_rate, kind=self.kind, steps_per_epoch=self.steps_per_epoch,
                    total_steps=self.total_steps, warmup_steps=self.warmup_steps, decay=self.decay,
                    decay_after=self.decay_after)


def make_optimizer(config: "Config", steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer `kerasrnn train` compiles with: `config`'s optimizer, learning-rate schedule (warmup,
    then decay by epochs of `steps_per_epoch` steps), gradient clipping and weight averaging."""
    schedule = WarmupDecay(config.learning_rate, config.lr_schedule, steps_per_epoch,
                           steps_per_epoch * config.max_epochs, config.warmup_steps, config.lr_decay,
                           config.lr_decay_after)
    options = dict(global_clipnorm=config.grad_clip) if config.grad_clip else {}
    if config.ema:
        options.update(use_ema=True, ema_momentum=config.ema)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **options)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(schedule, rho=config.rmsprop_decay, **options)
    return keras.optimizers.Adam(schedule, **options)


def adapt_to_torch(optimizer: keras.optimizers.Optimizer):
    """Has a Keras optimizer on torch make its passes over all the weights as torch.optim makes them: clipping
    by global norm as foreach ops (`clip_by_global_norm`), and Adam's and AdamW's update on a CPU as one call
    of PyTorch's fused Adam kernel (`fused_adam_update`). Any other setting runs as Keras runs it; so do
    AdamW's weight decay and weight averaging, passes of their own around the update."""
    keras_clip = type(optimizer)._clip_gradients

    def clip(grads):  # Keras's `_clip_gradients` takes `clipnorm` first, then `global_clipnorm`
        clipnorm, global_clipnorm = optimizer.clipnorm or 0, optimizer.global_clipnorm or 0
        if clipnorm > 0 or global_clipnorm <= 0 or any(g is None for g in grads):
            return keras_clip(optimizer, grads)
        return clip_by_global_norm(grads, global_clipnorm)
    optimizer._clip_gradients = clip

    from keras.src.backend.torch.optimizers.torch_adam import Adam
    keras_update = Adam._parallel_update_step
    if getattr(type(optimizer), "_parallel_update_step", None) is keras_update and not optimizer.amsgrad:
        def update(grads, variables, learning_rate):
            if not fused_adam_update(optimizer, grads, variables, learning_rate):
                keras_update(optimizer, grads, variables, learning_rate)
        optimizer._parallel_update_step = update


def clip_by_global_norm(grads, clip_norm):
    """Keras's `clip_by_global_norm` (the same formula, NaN for a non-finite norm) as PyTorch's foreach ops:
    one norm kernel over all the gradients, where Keras makes three ops per gradient (0.5 ms of a 13-ms
    step at 1x128, docs/benchmarks.md)."""
    import torch
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    scale = clip_norm * torch.clamp(1 / norm, max=1 / clip_norm) + (norm - norm)
    return torch._foreach_mul(grads, scale)


def fused_adam_update(optimizer, grads, variables, learning_rate) -> bool:
    """Keras's Adam update (no amsgrad) of `variables` as one call of PyTorch's fused Adam kernel, where
    Keras's makes ten foreach ops (0.6 ms against 0.2 at 1x128, docs/benchmarks.md). The formulas differ
    in one place: PyTorch adds epsilon after dividing the second moment's root by its bias correction
    sqrt(1 - beta_2^t), Keras before, so Keras's epsilon is PyTorch's times that correction. It runs on a
    CPU only (that epsilon needs the step count on the host: on a GPU, a wait for the device every step),
    and only where every weight lies in memory as its gradient and moments do: the kernel walks each
    tensor's memory in order, so a mismatch would silently pair the wrong elements. Returns whether it
    ran."""
    import torch
    params = [v.value for v in variables]
    momentums = [optimizer._momentums[optimizer._get_variable_index(v)].value for v in variables]
    velocities = [optimizer._velocities[optimizer._get_variable_index(v)].value for v in variables]
    if not all(p.device.type == "cpu" and p.stride() == g.stride() == m.stride() == v.stride()
               for p, g, m, v in zip(params, grads, momentums, velocities)):
        return False
    step = int(optimizer.iterations.value) + 1  # Keras counts steps after the update
    torch._fused_adam_(params, list(grads), momentums, velocities, [], [torch.tensor(float(step))] * len(params),
                       lr=float(learning_rate), beta1=optimizer.beta_1, beta2=optimizer.beta_2, weight_decay=0.0,
                       eps=optimizer.epsilon / math.sqrt(1 - optimizer.beta_2 ** step), amsgrad=False,
                       maximize=False)
    return True
