"""The model: Embedding -> a stack of stateful recurrent layers (dropout after each) -> Dense logits.

Truncated BPTT needs each batch to start from the state the previous batch ended in. Keras's own
`stateful=True` keeps that state in untracked variables: under JAX's stateless `fit` it silently
stays zero, and it is not saved. `StatefulRecurrent` holds the state in tracked, non-trainable
weights instead, so every backend carries it through `fit`, and checkpoints save it.

A trained model also carries the state sampling starts from (`start_weights`, `start_token`): the
state after reading a stretch of training text up to a paragraph break, so that a sample begins where
text begins, in a state the model knows, rather than in the zero state it meets only when a pass over
the text begins (with zeros, the first ~100 sampled characters were noise; docs/benchmarks.md).

Each backend's faster ways to run the same math (the stack as one fused kernel call, torch's own
training steps) live in `kerasrnn/backends/`, behind the few calls this file makes to it.
"""
import keras
import numpy as np
from keras import layers, ops

from . import backends
from .distribute import gather, read, tiled

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}


@keras.saving.register_keras_serializable(package="kerasrnn")
class StatefulRecurrent(layers.Layer):
    """`num_layers` recurrent layers whose final states become the next call's initial states.

    The state lives in `self.state_weights`, [batch, units] each, in layer order: h (and c for an
    LSTM) of layer 0, then layer 1, ... Gradients stop at the batch boundary (truncated BPTT).
    `self.start_weights` ([units] each, same order) and `self.start_token` are where sampling starts:
    set that state, feed that token, then the prime (export/SPEC.md, "Generating text").
    Dropout follows each layer; `locked` dropout draws one mask per sequence, shared by all time steps.
    The layers `frozen` lists (indices) are not trained (`trainable=False`: fine-tuning's --freeze); the
    config carries them, so that a checkpoint loads with them frozen and its optimizer's variables match.
    """

    def __init__(self, cell="lstm", units=128, num_layers=1, dropout=0.0, locked=False, fused=True, frozen=(),
                 **kwargs):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}: use one of {', '.join(CELLS)}")
        self.cell, self.units, self.num_layers, self.dropout, self.locked, self.fused = (
            cell, units, num_layers, dropout, locked, fused)
        self.rnns = [CELLS[cell](units, return_sequences=True, return_state=True, name=f"{cell}_{i}")
                     for i in range(num_layers)]
        noise_shape = (None, 1, units) if locked else None
        self.dropouts = [layers.Dropout(dropout, noise_shape=noise_shape, name=f"dropout_{i}")
                         for i in range(num_layers)] if dropout else []
        for i in frozen:
            self.rnns[i].trainable = False

    def build(self, input_shape):
        if input_shape[0] is None:
            raise ValueError("StatefulRecurrent needs a fixed batch size (keras.Input(batch_shape=...))")
        shape = input_shape
        for rnn in self.rnns:
            rnn.build(shape)
            shape = (*shape[:-1], self.units)
        backends.prepare_stack(self)
        names = ("h", "c") if self.cell == "lstm" else ("h",)
        self.state_weights = [
            self.add_weight(shape=(input_shape[0], self.units), initializer="zeros", trainable=False,
                            name=f"{name}_{i}")
            for i in range(self.num_layers) for name in names]
        self.start_weights = [
            self.add_weight(shape=(self.units,), initializer="zeros", trainable=False, name=f"start_{name}_{i}")
            for i in range(self.num_layers) for name in names]
        self.start_token = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                                           name="start_token")

    def call(self, inputs, training=None):
        fused = backends.fused_stack(self)
        if fused:
            weights = [(r.cell.kernel.value, r.cell.recurrent_kernel.value, r.cell.bias.value) for r in self.rnns]
        if fused and not (training and self.dropout and self.num_layers > 1):  # the whole stack, one kernel call
            outputs, states = fused(self.cell, inputs, [w.value for w in self.state_weights], weights,
                                    training=bool(training))  # (the kernels take the states stacked, a copy)
            if self.dropouts:
                outputs = self.dropouts[-1](outputs, training=training)
        else:  # layer by layer, Keras's dropout between: the fused kernels draw none of their own
            # a copy: torch's autograd keeps the initial state for the backward pass, and the assign below
            # overwrites the weight in place
            initial = [ops.copy(w.value) for w in self.state_weights]
            outputs, states, per_layer = inputs, [], len(initial) // self.num_layers
            for i, rnn in enumerate(self.rnns):
                layer_initial = initial[i * per_layer:(i + 1) * per_layer]
                if fused:
                    outputs, layer_states = fused(self.cell, outputs, layer_initial, weights[i:i + 1], training=True)
                else:
                    outputs, *layer_states = rnn(outputs, initial_state=layer_initial, training=training)
                states += layer_states
                if self.dropouts:
                    outputs = self.dropouts[i](outputs, training=training)
        for weight, state in zip(self.state_weights, states):
            weight.assign(ops.stop_gradient(state))
        return outputs

    def runs_fused(self):
        """Whether a call takes a fused kernel (`backends.fused_stack`): an LSTM, GRU or SimpleRNN on torch, an LSTM on
        JAX with a GPU."""
        return backends.fused_stack(self) is not None

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "units": self.units, "num_layers": self.num_layers,
                "dropout": self.dropout, "locked": self.locked, "fused": self.fused,
                "frozen": [i for i, rnn in enumerate(self.rnns) if not rnn.trainable]}


@keras.saving.register_keras_serializable(package="kerasrnn")
class LanguageModel(keras.Model):
    """The language model `build_model` makes: a functional chain of layers, token ids in, logits out.

    Its training and validation steps are Keras's, or on torch the same math with PyTorch's own function
    for each layer (`backends.torch.train_step`). Its compile config names the optimizer by Keras's public
    class (`keras.optimizers.Adam`), not the backend's own subclass, so that a checkpoint loads on every
    backend without importing another backend's modules."""

    def train_step(self, *args):  # JAX's steps take (state, data)
        return backends.train_step(self, super().train_step, args)

    def test_step(self, *args):
        return backends.test_step(self, super().test_step, args)

    def get_compile_config(self):
        config = super().get_compile_config()
        optimizer = config.get("optimizer")
        if isinstance(optimizer, dict) and hasattr(keras.optimizers, optimizer.get("class_name", "")):
            config["optimizer"] = {**optimizer, "module": "keras.optimizers", "registered_name": None}
        return config


def build_model(vocab_size: int, batch_size: int, seq_length: "int | None" = None, cell: str = "lstm",
                rnn_size: int = 128, num_layers: int = 2, embedding_size: int = 64, dropout: float = 0.0,
                input_dropout: float = 0.0, locked_dropout: bool = False, fused: bool = True) -> keras.Model:
    """The language model, Embedding -> StatefulRecurrent -> Dense logits, at a fixed batch size (B streams);
    `seq_length=None` accepts any length. Compile it with a from-logits sparse cross-entropy."""
    tokens = keras.Input(batch_shape=(batch_size, seq_length), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, embedding_size, name="embedding")(tokens)
    if input_dropout:
        noise_shape = (None, 1, embedding_size) if locked_dropout else None
        x = layers.Dropout(input_dropout, noise_shape=noise_shape, name="input_dropout")(x)
    x = StatefulRecurrent(cell, rnn_size, num_layers, dropout, locked_dropout, fused, name="recurrent")(x)
    logits = layers.Dense(vocab_size, name="logits")(x)
    return LanguageModel(tokens, logits, name="kerasrnn")


def model_args(model):
    """The `build_model` arguments (besides vocabulary and batch) that rebuild `model`, e.g. at batch 1."""
    stack = recurrent(model)
    input_dropout = next((layer.rate for layer in model.layers if layer.name == "input_dropout"), 0.0)
    return dict(cell=stack.cell, rnn_size=stack.units, num_layers=stack.num_layers,
                embedding_size=model.get_layer("embedding").output_dim, dropout=stack.dropout,
                input_dropout=input_dropout, locked_dropout=stack.locked, fused=stack.fused)


def recurrent(model):
    """The model's StatefulRecurrent stack; of a GPT, its Decoder, which has the same start token and no
    running state (kerasrnn/gpt.py)."""
    return model.get_layer("decoder" if "decoder" in {layer.name for layer in model.layers} else "recurrent")


def get_states(model):
    """Every layer's state as numpy arrays, in layer order (h, then c for an LSTM); all B streams', also
    when they are spread over several processes (every process must call it then)."""
    return [gather(w.value) for w in recurrent(model).state_weights]


def set_states(model, states):
    for weight, value in zip(recurrent(model).state_weights, states):
        weight.assign(value)


def reset_states(model):
    for weight in recurrent(model).state_weights:
        weight.assign(ops.zeros_like(weight.value))


def get_start(model):
    """(start token, start state as [units] numpy arrays in layer order): where sampling starts."""
    stack = recurrent(model)
    return (int(ops.convert_to_numpy(stack.start_token.value)),
            [ops.convert_to_numpy(w.value) for w in stack.start_weights])


def set_start(model, token, states):
    stack = recurrent(model)
    stack.start_token.assign(token)
    for weight, value in zip(stack.start_weights, states):
        weight.assign(value)


def reset_to_start(model):
    """Every stream's state to the start state (sampling's reset; training resets to zeros)."""
    for weight, start in zip(recurrent(model).state_weights, recurrent(model).start_weights):
        weight.assign(ops.broadcast_to(start.value, weight.shape))


def compute_start(model, context, token):
    """Sets the start state to the state after reading `context` (token ids) from zeros, and the start
    token to `token`, leaving the model's own state as it was. Every stream reads the context, so the
    training model itself serves, in chunks of its fixed sequence length, through its compiled
    predict function (eager calls took seconds)."""
    if not recurrent(model).state_weights:  # a GPT starts from an empty context: only the token
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
    stack = recurrent(model)
    carried = {id(w) for w in [*stack.state_weights, *stack.start_weights, stack.start_token]}
    return [w for w in model.weights if id(w) not in carried]


def copy_weights(source, target):
    """Copies the trained weights and the start state (not the running state) between models of
    different batch sizes."""
    for src, dst in zip(learned_weights(source), learned_weights(target)):
        dst.assign(src.value)
    set_start(target, *get_start(source))
