"""Exporting a run (`kerasrnn export`): loads a checkpoint, asks its family for the step graphs (StepGraphs), and
hands them to kerasrnn_export's writers, which convert without knowing any model."""
import kerasrnn

from . import compat, corpus, data
from .models import family_of
from .run import load_run


def export_bundle(run_dir: str, out_dir: str, which: str = "best", batch: "int | None" = None) -> dict:
    """Writes the edge bundle of `run_dir`'s `which` checkpoint (best or last) to `out_dir` (export/SPEC.md,
    "Bundle"); returns the manifest. `batch`: also the batch models (TFLite at `batch` streams, ONNX at any)."""
    from kerasrnn_export.bundle import write_bundle

    model, vocab, config, record = load_run(run_dir, which)
    return write_bundle(family_of(model).step_graphs(model), vocab.to_json(), source(config, record, which),
                        out_dir, int8_weights, batch)


def export_serving(run_dir, base_dir, name="kerasrnn", which="best", max_length_cap=1000, unknown="error"):
    """Writes `run_dir`'s `which` checkpoint as a TF Serving SavedModel, BASE_DIR/NAME/VERSION (a new version);
    returns that path (kerasrnn_export.serving)."""
    from kerasrnn_export.serving import write_serving

    model, vocab, _, _ = load_run(run_dir, which)
    family = family_of(model)
    if "serving" not in family.supports:
        raise family.refuse("the TF Serving SavedModel serves recurrent models only; export it as an edge bundle "
                            "(kerasrnn export RUN --out BUNDLE) or a web sampler (--web DIR)", run_dir)
    proto = None
    if vocab.kind == "bpe":
        from .subword import model_proto
        proto = model_proto(vocab)
    return write_serving(family.step_graphs(model), vocab, base_dir, name, max_length_cap, unknown, proto)


def export_micro(run_dir, out_dir, which="best"):
    """Writes the microcontroller bundle of `run_dir`'s `which` checkpoint to `out_dir`, calibrated on the run's
    training text and measured on its validation text; returns the manifest (kerasrnn_export.micro)."""
    from kerasrnn_export.micro import check_micro, write_micro

    model, vocab, config, record = load_run(run_dir, which)
    family = family_of(model)
    if "micro" not in family.supports:
        raise family.refuse("--micro exports recurrent runs only (a GPT's cache is its state, and grows with its "
                            "context)", run_dir)
    check_micro(vocab)  # before the text is read
    _, ids = corpus.load_ids(corpus.source(config), config.tokens, vocab=vocab)
    train_ids, val_ids, _ = data.split(ids, config.train_frac, config.val_frac)
    return write_micro(family.step_graphs(model), vocab, source(config, record, which), train_ids, val_ids, out_dir)


def source(config, record, which):
    """The manifest's `source` field: the run's config and the checkpoint's record."""
    return {"config": config.to_json(), "val_loss": record.get("val_loss"), "epoch": record.get("epoch"),
            "step": record.get("step"), "checkpoint": which, "kerasrnn_version": kerasrnn.__version__}


def int8_weights(converter):
    """Sets a TFLite converter to the step models' int8: dynamic-range quantized weights (activations stay float).

    Per-channel quantization of dense layers is turned off where the converter allows it (`compat`): it needs
    FULLY_CONNECTED version 12, which tflite-runtime 2.14 (its last release) cannot load; per-tensor scales load
    everywhere.
    """
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if compat.enabled("tflite-per-tensor-dense", lambda: compat.missing_on(converter, "tflite-per-tensor-dense")):
        setattr(converter, compat.attribute("tflite-per-tensor-dense", "flag"), True)
