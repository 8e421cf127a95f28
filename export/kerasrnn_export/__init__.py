"""The export stage's writers: a model family's step graphs (step_graphs.StepGraphs, which kerasrnn's families
build) -> an edge bundle (bundle.py), a TF Serving SavedModel (serving.py), a microcontroller bundle (micro.py), a
web sampler (web.py). kerasrnn.export drives them for a run directory.

They need TensorFlow (the TFLite converter) and onnx, imported by the modules that use them, not here; the bundles
they write need neither. The package knows no model: what it converts, a family hands it.
"""
