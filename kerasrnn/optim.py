"""The optimizer and its learning-rate schedule (registered, so checkpoints restore them on resume). On torch,
its passes over the weights run as PyTorch's multi-tensor kernels (`backends.torch.adapt_optimizer`)."""
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


def slot_name(weight, slot: str) -> str:
    """The name Keras gives an optimizer's per-weight variable ("momentum", "velocity", "average"):
    `add_variable_from_reference` names it "{weight path with _ for /}_{slot}"."""
    return weight.path.replace("/", "_") + "_" + slot


def optimizer_slots(optimizer, weights, slot: str) -> list:
    """Each weight's `slot` variable of `optimizer`, found by its public name; None where it has none."""
    named = {v.name: v for v in optimizer.variables}
    return [named.get(slot_name(w, slot)) for w in weights]


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
