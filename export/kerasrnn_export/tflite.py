"""TFLite step models, written with plain TF ops on the weights so that they convert to builtin ops.

Converting Keras's LSTM layer needs Flex ops (TensorList); one fixed-batch step of gate math does
not. The file has one signature, "step": token int32 [1] and every state in, `logits` and
`next_<state>` out. (A second signature that primes a fixed chunk of tokens per invoke measured
slower than one invoke per token on LiteRT: docs/benchmarks.md, "Edge sampling".)
"""
import contextlib
import tempfile

import tensorflow as tf


def _recur(cell, xk, states, layer):
    """One step of one layer: `xk` is x @ kernel [batch, gates * H]; returns the new states.

    Sums in the order of Keras's cells (LSTM: x @ kernel + h @ recurrent_kernel, then the bias), so that
    the logits equal Keras's to the bit and sampled text does not drift from `kerasrnn sample`'s.
    """
    hu = tf.matmul(states[0], layer["recurrent_kernel"])
    if cell == "lstm":
        h, c = states
        i, f, g, o = tf.split(xk + hu + layer["bias"], 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return [tf.sigmoid(o) * tf.tanh(c), c]
    xw = xk + layer["bias"]
    if cell == "gru":
        (h,) = states
        xz, xr, xh = tf.split(xw, 3, axis=1)
        hz, hr, hh = tf.split(hu + layer["recurrent_bias"], 3, axis=1)
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        return [z * h + (1 - z) * tf.tanh(xh + r * hh)]
    return [tf.tanh(xw + hu)]


class StepWeights(tf.Module):
    """The weights as variables and one step of the whole model: shared by the TFLite step model and
    the TF Serving SavedModel (serving.py), so both run the same math."""

    def __init__(self, weights):
        super().__init__()
        self.cell, self.rnn_size, self.state_names = weights.cell, weights.rnn_size, weights.state_names
        self.vocab_size, self.per_layer = weights.embedding.shape[0], len(weights.state_names) // len(weights.layers)
        self.embedding = tf.Variable(weights.embedding)
        self.layers = [{k: tf.Variable(v) for k, v in vars(layer).items()} for layer in weights.layers]
        self.dense_kernel, self.dense_bias = tf.Variable(weights.dense_kernel), tf.Variable(weights.dense_bias)

    def forward(self, token, states):
        """(logits [batch, V], new states in `state_names` order) after feeding `token` [batch]."""
        x, new, n = tf.gather(self.embedding, token), [], self.per_layer
        for i, layer in enumerate(self.layers):
            xk = tf.matmul(x, layer["kernel"])                                  # [batch, gates * H]
            layer_states = _recur(self.cell, xk, list(states[i * n:(i + 1) * n]), layer)
            new += layer_states
            x = layer_states[0]
        return tf.matmul(x, self.dense_kernel) + self.dense_bias, new

    def step_outputs(self, token, *states):
        """The "step" signature's outputs: `logits` and `next_<state>`."""
        logits, new = self.forward(token, states)
        return {"logits": logits, **{f"next_{n}": s for n, s in zip(self.state_names, new)}}


class StepModule(StepWeights):
    """The "step" signature at a fixed batch: B streams, one token each (the converter freezes each
    variable into one constant)."""

    def __init__(self, weights, batch=1):
        super().__init__(weights)
        states = [tf.TensorSpec([batch, self.rnn_size], tf.float32, name=n) for n in self.state_names]
        self.step = tf.function(self.step_outputs,
                                input_signature=[tf.TensorSpec([batch], tf.int32, name="token"), *states])


@contextlib.contextmanager
def _tf_info_silenced():
    """TensorFlow logs "Assets written to ..." for each SavedModel it writes; the temporary one is no news."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def convert(weights, int8, batch=1):
    """The .tflite bytes of the step model at `batch` streams; `int8`: with `quantize_weights`."""
    return convert_module(StepModule(weights, batch), int8)


def convert_module(module, int8, quantize=None):
    """The .tflite bytes of a module's `step` tf.function (an RNN's StepModule, a GPT's: gpt_step.py).
    `quantize(converter)`, if given, sets another quantization (micro.py's full-integer one)."""
    with tempfile.TemporaryDirectory() as saved_model, _tf_info_silenced():
        tf.saved_model.save(module, saved_model, signatures={"step": module.step.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["step"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # fail rather than use Flex
        if int8:
            quantize_weights(converter)
        if quantize:
            quantize(converter)
        return converter.convert()


def quantize_weights(converter):
    """Sets `converter` to the step models' int8: dynamic-range quantized weights (activations stay float).

    Per-channel quantization of dense layers is turned off: it needs FULLY_CONNECTED version 12,
    which tflite-runtime 2.14 (its last release) cannot load; per-tensor scales load everywhere.
    """
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
