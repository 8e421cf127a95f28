"""The interface of a model family: what a kind of language model tells the rest of kerasrnn about itself."""
import inspect

import keras

from kerasrnn_edge.errors import UserError, option

from .language_model import KerasStepModel, LanguageModel, StateLayer, copy_weights


class Family:
    """A kind of language model: token ids in, logits out, a layer carrying its state between calls.

    A family writes its layers (`logits`), maps a Config to its builder's arguments (`args`), checks its options
    (`check`), and gives sampling its Keras step model (`step_model`) and the writers its step graphs
    (`step_graphs`). Its model's layers follow two names: the token embedding is "embedding" and the output
    layer "logits" (fine-tuning grows both with the vocabulary and `--freeze` names them), and one layer, the
    family's `core_class` (a `StateLayer`), holds the running state and where sampling starts.

    Class attributes:
        name: the `--model` value, e.g. "rnn".
        preset: the preset a run of the family starts from when none is given.
        options: Config fields only this family reads: given to a run of another family, they are refused.
        shape: Config fields the trained weights are made for: fine-tuning keeps them, resuming may not change them.
        core_class: the family's `StateLayer` subclass.
        supports: what beyond training, sampling and the edge bundle it offers: "inspect" (kerasrnn inspect),
            "serving" (the TF Serving SavedModel), "micro" (the full-integer TFLite Micro bundle).

    Example:

        class Bigram(Family):
            name, preset, shape, core_class = "bigram", "tiny", ("embedding_size",), BigramCore
            def args(self, config): return {"embedding_size": config.embedding_size}
            def logits(self, tokens, vocab_size, embedding_size): ...
            def step_graphs(self, model): ...
        kerasrnn.models.register(Bigram())
    """

    name = None
    preset = "tiny"
    options = ()
    shape = ()
    core_class = StateLayer
    supports = frozenset()

    def check(self, config):
        """Raises UserError for a value of this family's options that cannot train (beyond Config.check's)."""

    def args(self, config) -> dict:
        """The builder's arguments (`logits`' keywords) that `config` asks for: JSON values, saved in the model."""
        raise NotImplementedError

    def logits(self, tokens, vocab_size, **args):
        """The functional chain from `tokens` (a keras.Input, int32 [batch, length]) to logits [batch, length, V]."""
        raise NotImplementedError

    def build(self, vocab_size, batch_size, seq_length=None, **args) -> LanguageModel:
        """The model at a fixed batch size (B streams); `seq_length=None` accepts any length. Compile it with a
        from-logits sparse cross-entropy."""
        defaults = {name: p.default for name, p in inspect.signature(self.logits).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        args = {**defaults, **args}  # all of them saved: a later default changes no trained model
        tokens = keras.Input(batch_shape=(batch_size, seq_length), dtype="int32", name="tokens")
        model = LanguageModel(tokens, self.logits(tokens, vocab_size, **args), name=f"kerasrnn_{self.name}")
        model.family_name, model.family_args = self.name, args
        return model

    def build_args(self, model):
        """The builder's arguments that rebuild `model` (`build`'s keywords besides vocabulary and batch)."""
        return dict(model.family_args) if model.family_args is not None else self.legacy_args(model)

    def rebuild(self, model, batch_size, seq_length=None):
        """`model` built again at another batch size and sequence length (None: any), with its trained weights and
        start state: what sampling runs at B streams."""
        built = self.build(model.output_shape[-1], batch_size, seq_length, **self.build_args(model))
        copy_weights(model, built)
        return built

    def core_of(self, model):
        """The model's core layer (a `core_class`), or None where the model is not this family's."""
        return next((layer for layer in model.layers if isinstance(layer, self.core_class)), None)

    def layer_names(self, config):
        """What `--freeze` may name besides "embedding" and "output": the core's layers, by index."""
        return [str(i) for i in range(config.num_layers)]

    def core_layers(self, model):
        """The core's layers that `--freeze` names by index (`layer_names`)."""
        return []

    def step_model(self, model, batch=1):
        """The step model of the sampling contract over a trained model, at `batch` rows (kerasrnn_edge.sampling):
        `start_token`, `reset()`, `feed(ids)` and `select(rows)`. By default the model rebuilt at `batch` rows and
        any length, its state layer carrying the state from call to call (`KerasStepModel`)."""
        return KerasStepModel(self.rebuild(model, batch))

    def step_graphs(self, model):
        """What the writers convert (kerasrnn_export.StepGraphs): the step as a tf.Module and an ONNX graph, the
        state's names and widths, the start and the manifest's `model` field."""
        raise NotImplementedError

    def recompute(self, model):
        """The model's weights as numpy arrays whose `forward(ids, states, gates, progress)` gives its insides as a
        kerasrnn.models.trace.Trace, with `label`, `num_layers`, `units` (each layer's h), `state_names`,
        `start_token` and `start_state`: what `kerasrnn inspect` reads (a family that supports "inspect")."""
        raise NotImplementedError

    def legacy_args(self, model):
        """The builder's arguments of a checkpoint saved before models carried them, read from its layers; only the
        built-in families have such checkpoints."""
        raise UserError(f"{model.name} carries no builder arguments: train it again with this kerasrnn")

    def refuse(self, what, run_dir):
        """The one line for a command this family does not support."""
        return UserError(f"{run_dir} is a {option('model', self.name)} run: {what}")
