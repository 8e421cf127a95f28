"""The export stage: a trained run -> an edge bundle that kerasrnn_edge (or a Java/Swift port) samples from.

Needs TensorFlow (for the TFLite converter) and onnx; the bundle it writes does not.
"""
from .bundle import export_bundle

__all__ = ["export_bundle"]
