"""What every family's model shares: the Keras model class (`LanguageModel`), the layer that carries state between
calls (`StateLayer`), and the functions that read and set that state, the start of sampling and the random
generators.

Truncated BPTT needs each batch to start from the state the previous batch ended in. Keras's own
`stateful=True` keeps that state in untracked variables: under JAX's stateless `fit` it silently stays zero,
and it is not saved. A `StateLayer` holds it in tracked, non-trainable weights instead, so every backend carries
it through `fit`, and checkpoints save it.

A trained model also carries the state sampling starts from (`start_weights`, `start_token`): the state after
reading a stretch of training text up to a paragraph break, so that a sample begins where text begins, in a state
the model knows, rather than in the zero state it meets only when a pass over the text begins (with zeros, the
first ~100 sampled characters were noise; docs/benchmarks.md).
"""
import keras
import numpy as np
from keras import layers, ops

from .. import backends
from ..distribute import gather, read, tiled


class StateLayer(layers.Layer):
    """A layer that carries state from call to call: `state_weights` ([batch, width] each, non-trainable: the
    running state, in the order of the step graphs' state names), `start_weights` ([width] each, same order) and
    `start_token`, where sampling starts: set that state, feed that token, then the prime (export/SPEC.md,
    "Generating text"). A family whose batches are independent (the GPT) has no running state: empty lists.

    Args:
        (those of keras.layers.Layer)

    Example:

        def build(self, input_shape):
            ...  # the layer's own weights first
            self.add_state(input_shape[0], [("h_0", 64)])
    """

    def add_state(self, batch_size, widths):
        """Creates the state and start weights, `widths` as [(name, width)] in state order, then the start token.
        They stay float32 under a mixed precision policy (autocast=False: read as they are)."""
        self.state_weights = [self.add_weight(shape=(batch_size, width), initializer="zeros", trainable=False,
                                              autocast=False, name=name) for name, width in widths]
        self.start_weights = [self.add_weight(shape=(width,), initializer="zeros", trainable=False, autocast=False,
                                              name=f"start_{name}") for name, width in widths]
        self.start_token = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                                           name="start_token")

    def carry(self, states):
        """Keeps `states` (the call's final states, in state order) for the next call, with no gradient into them."""
        for weight, state in zip(self.state_weights, states):
            weight.assign(ops.stop_gradient(ops.cast(state, weight.dtype)))


@keras.saving.register_keras_serializable(package="kerasrnn")
class LanguageModel(keras.Model):
    """A family's model (`Family.build`): a functional chain of layers, token ids in, logits out, that knows its
    family and its builder's arguments, so that it rebuilds at another batch size from its own config.

    Its training and validation steps are Keras's, or on torch the same math with PyTorch's own function
    for each layer (`backends.torch.train_step`). Its compile config names the optimizer by Keras's public
    class (`keras.optimizers.Adam`), not the backend's own subclass, so that a checkpoint loads on every
    backend without importing another backend's modules.

    Args:
        (those of a functional keras.Model: inputs, outputs, name)

    Example:

        model = kerasrnn.models.family("rnn").build(vocab_size=65, batch_size=32, seq_length=64, cell="lstm",
                                                    rnn_size=128, num_layers=2, embedding_size=64)
    """

    family_name = None  # set by Family.build, or read from the config; None in a checkpoint saved before
    family_args = None

    def train_step(self, *args):  # JAX's steps take (state, data)
        return backends.train_step(self, super().train_step, args)

    def test_step(self, *args):
        return backends.test_step(self, super().test_step, args)

    def get_config(self):
        args = None if self.family_args is None else dict(self.family_args)
        return {**super().get_config(), "family": self.family_name, "family_args": args}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        name, args = config.pop("family", None), config.pop("family_args", None)
        model = super().from_config(config, custom_objects)
        model.family_name, model.family_args = name, args
        return model

    def get_compile_config(self):
        config = super().get_compile_config()
        optimizer = config.get("optimizer")
        if isinstance(optimizer, dict) and hasattr(keras.optimizers, optimizer.get("class_name", "")):
            config["optimizer"] = {**optimizer, "module": "keras.optimizers", "registered_name": None}
        return config


def numpy(variable):
    """A weight's value as a float32 numpy array: what the step graphs and the inspector read."""
    return np.asarray(ops.convert_to_numpy(variable), dtype=np.float32)


def core(model):
    """The model's `StateLayer`."""
    return next(layer for layer in model.layers if isinstance(layer, StateLayer))


def get_states(model):
    """Every state weight as numpy arrays, in state order; all B streams', also when they are spread over several
    processes (every process must call it then)."""
    return [gather(w.value) for w in core(model).state_weights]


def set_states(model, states):
    for weight, value in zip(core(model).state_weights, states):
        weight.assign(value)


def reset_states(model):
    for weight in core(model).state_weights:
        weight.assign(ops.zeros_like(weight.value))


def get_start(model):
    """(start token, start state as [width] numpy arrays in state order): where sampling starts."""
    layer = core(model)
    return (int(ops.convert_to_numpy(layer.start_token.value)),
            [ops.convert_to_numpy(w.value) for w in layer.start_weights])


def set_start(model, token, states):
    layer = core(model)
    layer.start_token.assign(token)
    for weight, value in zip(layer.start_weights, states):
        weight.assign(value)


def reset_to_start(model):
    """Every stream's state to the start state (sampling's reset; training resets to zeros)."""
    for weight, start in zip(core(model).state_weights, core(model).start_weights):
        weight.assign(ops.broadcast_to(start.value, weight.shape))


def compute_start(model, context, token):
    """Sets the start state to the state after reading `context` (token ids) from zeros, and the start
    token to `token`, leaving the model's own state as it was. Every stream reads the context, so the
    training model itself serves, in chunks of its fixed sequence length, through its compiled
    predict function (eager calls took seconds)."""
    if not core(model).state_weights:  # no running state (a GPT starts from an empty context): only the token
        set_start(model, token, [])
        return
    saved = get_states(model)
    reset_states(model)
    batch, length = model.input_shape
    length = length or max(1, len(context))
    if len(context) % length:
        raise ValueError(f"the start context ({len(context)} tokens) is not a whole number of {length}-token chunks")
    read(model, [tiled(np.asarray(context[i:i + length], np.int32), batch) for i in range(0, len(context), length)])
    set_start(model, token, [state[0] for state in get_states(model)])
    set_states(model, saved)


def get_rng_states(model):
    """The random generators' states, which Keras's .keras format does not save, so that checkpoint.json
    carries them and a resumed run draws the same dropout masks as one that never stopped: each dropout
    layer's seed generator, and the backend's own generators where Keras's dropout draws from them (torch,
    unless a seed or a noise shape is given: `backends.rng_states`)."""
    seed_generators = [ops.convert_to_numpy(v.value).tolist() for v in model.non_trainable_variables
                       if "seed_generator" in v.path]
    return {"seed_generators": seed_generators, **backends.rng_states(model)}


def set_rng_states(model, states):
    """Puts back what `get_rng_states` gave (from a checkpoint written before PyTorch's generators were
    saved: the list of the seed generators' states)."""
    if isinstance(states, list):
        states = {"seed_generators": states}
    seed_generators = [v for v in model.non_trainable_variables if "seed_generator" in v.path]
    for variable, value in zip(seed_generators, states["seed_generators"]):
        variable.assign(value)
    backends.set_rng_states(model, states)


def learned_weights(model):
    """The weights training learns, in `trainable_weights`' order, those of frozen layers (--freeze) too, which
    `trainable_weights` leaves out: what copying a model's weights copies."""
    layer = core(model)
    carried = {id(w) for w in [*layer.state_weights, *layer.start_weights, layer.start_token]}
    return [w for w in model.weights if id(w) not in carried]


def copy_weights(source, target):
    """Copies the trained weights and the start state (not the running state) between models of
    different batch sizes. Copies, not shared buffers: JAX's training and evaluation donate a model's buffers,
    which would delete the source's."""
    for src, dst in zip(learned_weights(source), learned_weights(target)):
        dst.assign(ops.copy(src.value))
    set_start(target, *get_start(source))


class KerasStepModel:
    """The step model of the sampling contract over a model whose state layer carries its whole state (the recurrent
    stack's), built for sampling (`Family.rebuild`: any length, batch 1; or at B rows, the batched step model of
    sampling.generate_batch, B streams in one call per token)."""

    def __init__(self, model):
        self.model, self.batch = model, model.input_shape[0]
        self.start_token = get_start(self.model)[0]

    def reset(self):
        reset_to_start(self.model)

    def select(self, rows):
        """Row r takes the state of row rows[r] (beam search: each beam continues its parent)."""
        set_states(self.model, [state[rows] for state in get_states(self.model)])

    def feed(self, ids):
        """Feeds the ids in one call (the prime is not one round trip per character); returns the last
        logits: ids [k] -> [V] at batch 1, ids [batch, k] -> [batch, V]."""
        ids = np.asarray(ids, np.int32)
        logits = self.model(ids if ids.ndim == 2 else ids[None, :], training=False)
        logits = keras.ops.convert_to_numpy(logits[:, -1]).astype(np.float32)
        return logits if ids.ndim == 2 else logits[0]
