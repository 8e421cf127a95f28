"""TFLite step models: a family's step (StepGraphs.tf_step, plain TF ops on its weights, which convert to builtin
ops) behind one signature, "step": token int32 [batch] and every state in, `logits` and `next_<state>` out. (A
second signature that primes a fixed chunk of tokens per invoke measured slower than one invoke per token on
LiteRT: docs/benchmarks.md, "Edge sampling".)
"""
import contextlib
import tempfile

import tensorflow as tf


class StepModule(tf.Module):
    """The "step" signature over a family's step at a fixed batch (the converter freezes each variable into one
    constant); `batch=None`: any batch (the SavedModel's step signature)."""

    def __init__(self, graphs, batch=1):
        super().__init__()
        self.core, self.state_names = graphs.tf_step(batch), graphs.state_names
        states = [tf.TensorSpec([batch, width], tf.float32, name=name)
                  for name, width in zip(graphs.state_names, graphs.state_widths)]
        self.step = tf.function(self.step_outputs,
                                input_signature=[tf.TensorSpec([batch], tf.int32, name="token"), *states])

    def forward(self, token, states):
        return self.core.forward(token, list(states))

    def step_outputs(self, token, *states):
        """The "step" signature's outputs: `logits` and `next_<state>`."""
        logits, new = self.forward(token, states)
        return {"logits": logits, **{f"next_{n}": s for n, s in zip(self.state_names, new)}}


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


def convert(graphs, quantize=None, batch=1):
    """The .tflite bytes of the step model at `batch` streams, float32; `quantize(converter)`, if given, sets a
    quantization (the caller's int8 settings, micro.py's full-integer ones)."""
    module = StepModule(graphs, batch)
    with tempfile.TemporaryDirectory() as saved_model, _tf_info_silenced():
        tf.saved_model.save(module, saved_model, signatures={"step": module.step.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["step"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # fail rather than use Flex
        if quantize:
            quantize(converter)
        return converter.convert()
