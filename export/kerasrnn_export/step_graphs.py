"""What the writers convert (`StepGraphs`): a model family's step, handed over by kerasrnn, so that this package
converts without knowing any model (kerasrnn/models/ builds these; the writers read only what is here)."""
import dataclasses
from typing import Callable


@dataclasses.dataclass
class StepGraphs:
    """One step of a trained model as graphs to convert, and the facts the manifest states about it.

    Args:
        model: the manifest's `model` field (the family's own description of its shape).
        vocab_size: the logits' width.
        state_names: every state tensor, in order (each float32 [batch, width]); the step's inputs besides `token`,
            and with `next_` its outputs.
        state_widths: each state tensor's width.
        start_token: the token sampling feeds first, from `start_state`.
        start_state: float32 [width] arrays, in `state_names` order.
        tf_step: batch (None: any) -> a tf.Module whose `forward(token [batch] int32, states)` returns
            (logits [batch, V], the next states): the TFLite, micro and SavedModel writers' step.
        onnx_step: batched -> the serialized ONNX step model: token [T] and states [1, width], or with `batched`,
            token [B, T] and states [B, width] (B and T dynamic where `onnx_steps`).
        onnx_steps: whether the ONNX graph reads any T tokens in a run (the "steps" signature and a batch graph);
            else it reads one token ("step" only).

    Example:

        graphs = kerasrnn.models.family_of(model).step_graphs(model)
        kerasrnn_export.bundle.write_bundle(graphs, vocab.to_json(), source, "bundle/")
    """

    model: dict
    vocab_size: int
    state_names: list
    state_widths: list
    start_token: int
    start_state: list
    tf_step: Callable
    onnx_step: Callable
    onnx_steps: bool = True
