"""The recurrent family (`--model rnn`): Embedding -> a stack of stateful recurrent layers (LSTM, GRU or SimpleRNN,
dropout after each) -> Dense logits, trained by truncated BPTT over stateful batches.

Each backend's faster ways to run the same math (the stack as one fused kernel call, torch's own training
steps) live in `kerasrnn/backends/`, behind the few calls this file makes to it. Its step graphs for the
writers (TFLite, ONNX, the SavedModel) are in recurrent_graphs.py.
"""
import keras
from keras import layers, ops

from kerasrnn_edge.errors import UserError, option

from .. import backends
from .family import Family
from .language_model import StateLayer

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}


@keras.saving.register_keras_serializable(package="kerasrnn")
class StatefulRecurrent(StateLayer):
    """`num_layers` recurrent layers whose final states become the next call's initial states.

    The state lives in `self.state_weights` (a `StateLayer`), [batch, units] each, in layer order: h (and c for
    an LSTM) of layer 0, then layer 1, ... Gradients stop at the batch boundary (truncated BPTT).
    Dropout follows each layer; `locked` dropout draws one mask per sequence, shared by all time steps.
    The layers `frozen` lists (indices) are not trained (`trainable=False`: fine-tuning's --freeze); the
    config carries them, so that a checkpoint loads with them frozen and its optimizer's variables match.

    Args:
        cell: "lstm", "gru" or "rnn" (Keras's LSTM, GRU or SimpleRNN).
        units: each layer's state width.
        num_layers: layers in the stack.
        dropout: the rate of the dropout after each layer.
        locked: one dropout mask per sequence (variational dropout).
        fused: whether a backend may run the stack as one fused kernel (`backends.fused_stack`).
        frozen: indices of the layers left untrained.

    Example:

        x = keras.Input(batch_shape=(32, 64, 16))
        y = StatefulRecurrent("lstm", units=128, num_layers=2)(x)   # [32, 64, 128]; the next call goes on from here
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
        self.add_state(input_shape[0], [(f"{name}_{i}", self.units) for i in range(self.num_layers) for name in names])

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
        self.carry(states)
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


class Recurrent(Family):
    """The recurrent stack: `--cell`, `--rnn-size`, `--num-layers`, `--embedding-size`, dropout on the layers and
    the embeddings, locked or not. It supports everything: inspect, the SavedModel, the microcontroller bundle.

    Example:

        family = kerasrnn.models.family("rnn")
        model = family.build(vocab_size=65, batch_size=32, seq_length=64, **family.args(kerasrnn.preset("tiny")))
    """

    name, preset, core_class = "rnn", "tiny", StatefulRecurrent
    options = ("cell", "rnn_size", "input_dropout", "locked_dropout", "fused")
    shape = ("cell", "rnn_size", "num_layers", "embedding_size")
    supports = frozenset({"inspect", "serving", "micro"})

    def check(self, config):
        if config.cell not in CELLS:
            raise UserError(f"{option('cell')} must be one of {', '.join(CELLS)} (got {config.cell!r})")

    def args(self, config):
        return {k: getattr(config, k) for k in ("cell", "rnn_size", "num_layers", "embedding_size", "dropout",
                                                 "input_dropout", "locked_dropout", "fused")}

    def logits(self, tokens, vocab_size, cell="lstm", rnn_size=128, num_layers=2, embedding_size=64, dropout=0.0,
               input_dropout=0.0, locked_dropout=False, fused=True):
        x = layers.Embedding(vocab_size, embedding_size, name="embedding")(tokens)
        if input_dropout:
            noise_shape = (None, 1, embedding_size) if locked_dropout else None
            x = layers.Dropout(input_dropout, noise_shape=noise_shape, name="input_dropout")(x)
        x = StatefulRecurrent(cell, rnn_size, num_layers, dropout, locked_dropout, fused, name="recurrent")(x)
        return layers.Dense(vocab_size, name="logits")(x)

    def core_layers(self, model):
        return self.core_of(model).rnns

    def step_graphs(self, model):
        from .recurrent_graphs import step_graphs
        return step_graphs(model)

    def recompute(self, model):
        from .recurrent_graphs import from_model
        return from_model(model)

    def legacy_args(self, model):
        """A checkpoint of kerasrnn before families: its stack's config and the embedding's width."""
        stack = self.core_of(model)
        if stack is None:
            raise UserError(f"{model.name} has no recurrent stack")
        input_dropout = next((layer.rate for layer in model.layers if layer.name == "input_dropout"), 0.0)
        return dict(cell=stack.cell, rnn_size=stack.units, num_layers=stack.num_layers,
                    embedding_size=model.get_layer("embedding").output_dim, dropout=stack.dropout,
                    input_dropout=input_dropout, locked_dropout=stack.locked, fused=stack.fused)


RECURRENT = Recurrent()


def build_model(vocab_size: int, batch_size: int, seq_length: "int | None" = None, cell: str = "lstm",
                rnn_size: int = 128, num_layers: int = 2, embedding_size: int = 64, dropout: float = 0.0,
                input_dropout: float = 0.0, locked_dropout: bool = False, fused: bool = True) -> keras.Model:
    """The recurrent language model, Embedding -> StatefulRecurrent -> Dense logits, at a fixed batch size (B
    streams); `seq_length=None` accepts any length. Compile it with a from-logits sparse cross-entropy.

    Example:

        model = kerasrnn.build_model(vocab_size=65, batch_size=32, seq_length=64, rnn_size=256)
    """
    return RECURRENT.build(vocab_size, batch_size, seq_length, cell=cell, rnn_size=rnn_size, num_layers=num_layers,
                           embedding_size=embedding_size, dropout=dropout, input_dropout=input_dropout,
                           locked_dropout=locked_dropout, fused=fused)
