"""The model: Embedding -> N stateful recurrent layers (dropout between) -> Dense logits.

Truncated BPTT needs each batch to start from the state the previous batch ended in. Keras's own
`stateful=True` keeps that state in untracked variables: under JAX's stateless `fit` it silently
stays zero, and it is not saved. `StatefulRecurrent` holds the state in tracked, non-trainable
weights instead, so every backend carries it through `fit`, and checkpoints save it.
"""
import keras
from keras import layers, ops

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}


@keras.saving.register_keras_serializable(package="kerasrnn")
class StatefulRecurrent(layers.Layer):
    """A recurrent layer whose final state becomes the next call's initial state.

    The state lives in `self.state_weights` ([batch, units] each: h, and c for an LSTM). Gradients
    stop at the batch boundary (truncated backprop through time).
    """

    def __init__(self, cell="lstm", units=128, **kwargs):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}: use one of {', '.join(CELLS)}")
        self.cell, self.units = cell, units
        self.rnn = CELLS[cell](units, return_sequences=True, return_state=True, name=cell)

    def build(self, input_shape):
        if input_shape[0] is None:
            raise ValueError("StatefulRecurrent needs a fixed batch size (keras.Input(batch_shape=...))")
        self.rnn.build(input_shape)
        names = ("h", "c") if self.cell == "lstm" else ("h",)
        self.state_weights = [
            self.add_weight(shape=(input_shape[0], self.units), initializer="zeros", trainable=False, name=n)
            for n in names]

    def call(self, inputs, training=None):
        outputs, *states = self.rnn(inputs, initial_state=[w.value for w in self.state_weights], training=training)
        for weight, state in zip(self.state_weights, states):
            weight.assign(ops.stop_gradient(state))
        return outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "units": self.units}


def build_model(vocab_size, batch_size, seq_length=None, cell="lstm", rnn_size=128, num_layers=2,
                embedding_size=64, dropout=0.0, **_ignored):
    """The language model at a fixed batch size (streams); `seq_length=None` accepts any length."""
    tokens = keras.Input(batch_shape=(batch_size, seq_length), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, embedding_size, name="embedding")(tokens)
    for i in range(num_layers):
        x = StatefulRecurrent(cell, rnn_size, name=f"recurrent_{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    logits = layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(tokens, logits, name="kerasrnn")


def recurrent_layers(model):
    return [layer for layer in model.layers if isinstance(layer, StatefulRecurrent)]


def get_states(model):
    """Every layer's state as numpy arrays, in layer order (h, then c for an LSTM)."""
    return [ops.convert_to_numpy(w.value) for layer in recurrent_layers(model) for w in layer.state_weights]


def set_states(model, states):
    for weight, value in zip([w for layer in recurrent_layers(model) for w in layer.state_weights], states):
        weight.assign(value)


def reset_states(model):
    for layer in recurrent_layers(model):
        for weight in layer.state_weights:
            weight.assign(ops.zeros_like(weight.value))


def get_rng_states(model):
    """The dropout random generators' states. Keras's .keras format does not save them, so checkpoint.json
    carries them, and a resumed run draws the same dropout masks as one that never stopped."""
    return [ops.convert_to_numpy(v.value).tolist() for v in model.non_trainable_variables
            if "seed_generator" in v.path]


def set_rng_states(model, states):
    for variable, value in zip([v for v in model.non_trainable_variables if "seed_generator" in v.path], states):
        variable.assign(value)


def copy_weights(source, target):
    """Copies the trained weights (not the state) between models of different batch sizes."""
    for src, dst in zip(source.trainable_weights, target.trainable_weights):
        dst.assign(src.value)
