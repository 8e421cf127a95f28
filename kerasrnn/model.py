"""The model: Embedding -> a stack of stateful recurrent layers (dropout after each) -> Dense logits.

Truncated BPTT needs each batch to start from the state the previous batch ended in. Keras's own
`stateful=True` keeps that state in untracked variables: under JAX's stateless `fit` it silently
stays zero, and it is not saved. `StatefulRecurrent` holds the state in tracked, non-trainable
weights instead, so every backend carries it through `fit`, and checkpoints save it.

A trained model also carries the state sampling starts from (`start_weights`, `start_token`): the
state after reading a stretch of training text up to a paragraph break, so that a sample begins where
text begins, in a state the model knows, rather than in the zero state it meets only when a pass over
the text begins (with zeros, the first ~100 sampled characters were noise; docs/benchmarks.md).

The whole stack can run as one call of a fused kernel rather than one Keras layer (and one loop) per
layer: on torch, PyTorch's own LSTM or GRU (`torch_fused`: oneDNN's fused RNN on a CPU, cuDNN on a
GPU), as nn.LSTM calls it; on JAX with a GPU, cuDNN's LSTM (`fused_lstm`). Both take the weights in
PyTorch's layout (`pytorch_weights`).

On torch, Keras runs every step eagerly, so the model's training and validation steps call each layer's
own `call` in turn, or PyTorch's own function for it (`LanguageModel`, `torch_call`), leaving out the
bookkeeping `Layer.__call__` repeats around every layer on every step; TensorFlow and JAX trace the step
once and keep Keras's own.
"""
import base64
import contextlib

import keras
import numpy as np
from keras import layers, ops

from .distribute import gather, read, tiled
from .optim import adapt_to_torch

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}


@keras.saving.register_keras_serializable(package="kerasrnn")
class StatefulRecurrent(layers.Layer):
    """`num_layers` recurrent layers whose final states become the next call's initial states.

    The state lives in `self.state_weights`, [batch, units] each, in layer order: h (and c for an
    LSTM) of layer 0, then layer 1, ... Gradients stop at the batch boundary (truncated BPTT).
    `self.start_weights` ([units] each, same order) and `self.start_token` are where sampling starts:
    set that state, feed that token, then the prime (export/SPEC.md, "Generating text").
    Dropout follows each layer; `locked` dropout draws one mask per sequence, shared by all time steps.
    """

    def __init__(self, cell="lstm", units=128, num_layers=1, dropout=0.0, locked=False, fused=True, **kwargs):
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

    def build(self, input_shape):
        if input_shape[0] is None:
            raise ValueError("StatefulRecurrent needs a fixed batch size (keras.Input(batch_shape=...))")
        shape = input_shape
        for rnn in self.rnns:
            rnn.build(shape)
            shape = (*shape[:-1], self.units)
        if keras.backend.backend() == "torch" and self.fused and self.cell == "lstm":
            transposed_in_memory([w for rnn in self.rnns for w in (rnn.cell.kernel, rnn.cell.recurrent_kernel)])
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
        if self.runs_fused(training):  # the fused kernels take the states stacked, a copy
            initial = [w.value for w in self.state_weights]
            weights = [(r.cell.kernel.value, r.cell.recurrent_kernel.value, r.cell.bias.value) for r in self.rnns]
            if keras.backend.backend() == "torch":
                outputs, states = torch_fused(self.cell, inputs, initial, weights, training=bool(training))
            else:
                from jax.experimental.rnn import lstm as cudnn_lstm
                outputs, states = fused_lstm(inputs, initial, weights, cudnn_lstm)
            if self.dropouts:
                outputs = self.dropouts[-1](outputs, training=training)
        else:
            # a copy: torch's autograd keeps the initial state for the backward pass, and the assign below
            # overwrites the weight in place
            initial = [ops.copy(w.value) for w in self.state_weights]
            outputs, states, per_layer = inputs, [], len(initial) // self.num_layers
            for i, rnn in enumerate(self.rnns):
                outputs, *layer_states = rnn(outputs, initial_state=initial[i * per_layer:(i + 1) * per_layer],
                                             training=training)
                states += layer_states
                if self.dropouts:
                    outputs = self.dropouts[i](outputs, training=training)
        for weight, state in zip(self.state_weights, states):
            weight.assign(ops.stop_gradient(state))
        return outputs

    def runs_fused(self, training):
        """Whether a call takes the fused path: an LSTM or GRU on torch (any device), an LSTM on JAX with a
        GPU; and no dropout between layers to apply (the fused call has none that Keras's seeds draw), so
        training a deep stack with dropout takes the per-layer path."""
        backend = keras.backend.backend()
        if not self.fused or training and self.dropout and self.num_layers > 1:
            return False
        if backend == "torch":
            return self.cell in ("lstm", "gru")
        if backend == "jax" and self.cell == "lstm":
            import jax
            return jax.default_backend() == "gpu"
        return False

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "units": self.units, "num_layers": self.num_layers,
                "dropout": self.dropout, "locked": self.locked, "fused": self.fused}


def pytorch_weights(cell, kernel, recurrent_kernel, bias):
    """One Keras layer's weights in PyTorch's (and cuDNN's) layout: W_ih [gates * H, inputs], W_hh, b_ih, b_hh.

    LSTM: Keras's gates i, f, c, o are PyTorch's i, f, g, o; Keras has one bias, so b_hh is zero.
    GRU (reset_after=True, Keras's default): Keras's z, r, h become PyTorch's r, z, n, and the two
    Keras biases (input, recurrent) are b_ih and b_hh.
    """
    if cell == "gru":
        units = recurrent_kernel.shape[0]

        def reorder(w):
            return ops.concatenate([w[..., units:2 * units], w[..., :units], w[..., 2 * units:]], axis=-1)
        kernel, recurrent_kernel, bias = reorder(kernel), reorder(recurrent_kernel), reorder(bias)
        b_ih, b_hh = bias[0], bias[1]
    else:
        b_ih, b_hh = bias, ops.zeros_like(bias)
    return [ops.transpose(kernel), ops.transpose(recurrent_kernel), b_ih, b_hh]


def transposed_in_memory(variables):
    """Stores each torch variable's 2-D matrix transposed in memory, its shape and values unchanged. A fused
    LSTM's kernels then are contiguous in PyTorch's layout (`pytorch_weights`), and their gradients arrive in
    their own layout: without it, three transposing copies of each recurrent kernel a step (at 512 units,
    10 ms of a 140-ms step)."""
    for variable in variables:
        variable.value.data = variable.value.data.t().contiguous().t()


def torch_fused(cell, inputs, states, weights, training):
    """Runs a stack of LSTM or GRU layers, given their Keras (kernel, recurrent_kernel, bias) in `weights`,
    as one call of PyTorch's own kernel, the flat-weights call nn.LSTM and nn.GRU make: oneDNN's fused
    RNN on a CPU, cuDNN on a GPU. Returns the last layer's outputs and the final states in `states`'
    order (h0, c0, h1, c1, ... for an LSTM; h0, h1, ... for a GRU)."""
    import torch

    flat = [w for layer in weights for w in pytorch_weights(cell, *layer)]
    num_layers = len(weights)
    if cell == "lstm":
        h0, c0 = torch.stack(states[0::2]), torch.stack(states[1::2])
        outputs, h, c = torch._VF.lstm(inputs, (h0, c0), flat, True, num_layers, 0.0, training, False, True)
        return outputs, [s for i in range(num_layers) for s in (h[i], c[i])]
    outputs, h = torch._VF.gru(inputs, torch.stack(states), flat, True, num_layers, 0.0, training, False, True)
    return outputs, list(h)


def fused_lstm(inputs, states, weights, cudnn_lstm):
    """Runs a stack of LSTM layers, given their Keras (kernel, recurrent_kernel, bias) in `weights`, as one
    call of `cudnn_lstm` (jax.experimental.rnn.lstm's signature).

    cuDNN's flat weights are every layer's [W_ih, W_hh], then every layer's [b_ih, b_hh], each raveled,
    in PyTorch's layout (`pytorch_weights`). Returns the last layer's outputs and the final states in
    `states`' order (h0, c0, h1, c1, ...).
    """
    import jax.numpy as jnp

    layers = [pytorch_weights("lstm", *layer) for layer in weights]
    flat = jnp.concatenate([jnp.ravel(w) for part in (slice(0, 2), slice(2, 4)) for layer in layers
                            for w in layer[part]])
    h0, c0 = jnp.stack(states[0::2]), jnp.stack(states[1::2])
    batch, length, features = inputs.shape
    outputs, h, c = cudnn_lstm(inputs, h0, c0, flat, jnp.full((batch,), length, jnp.int32), input_size=features,
                               hidden_size=h0.shape[-1], num_layers=len(weights), dropout=0.0, bidirectional=False)
    return outputs, [s for i in range(len(weights)) for s in (h[i], c[i])]


@keras.saving.register_keras_serializable(package="kerasrnn")
class LanguageModel(keras.Model):
    """The language model `build_model` makes: a functional chain of layers, token ids in, logits out.

    On torch its `train_step` and `test_step` are Keras's, but the forward pass calls each layer's `call`
    directly, in order (the embedding and the logits as PyTorch's own functions, `torch_call`), and the
    loss and metrics see the logits flattened to [B*T, vocab] (the same per-token losses, so the same
    mean); kerasrnn's own loss is one call of PyTorch's `cross_entropy` there
    (`_compiled_plain_cross_entropy`), and the optimizer clips and updates with PyTorch's multi-tensor
    kernels (`optim.adapt_to_torch`). `Layer.__call__` (input conversion, name scopes, call contexts,
    torch module hooks) costs 0.1-0.4 ms per layer per step there, and the compiled loss on [B, T, vocab]
    moves the class axis with copies: together a tenth of a small model's step (docs/benchmarks.md,
    "Training throughput"). On TensorFlow and JAX, whose steps are traced once, and under a mixed-precision
    policy (which `Layer.__call__` applies), Keras's own steps run.
    """

    def train_step(self, *args):  # JAX's steps take (state, data)
        with self._own_torch_generator():
            if not self._calls_layers_directly(args):
                return super().train_step(*args)
            return self._torch_train_step(*args)

    @contextlib.contextmanager
    def _own_torch_generator(self):
        """On torch, PyTorch's default CPU generator holds the model's own random stream during a training
        step. Keras's dropout draws from that generator there (its fast path), and so does the data loading
        between steps, a different number of times in a run that resumed; with the stream swapped in for
        the steps alone, the masks follow from the steps, and checkpoints save it (`get_rng_states`)."""
        if keras.backend.backend() != "torch":
            yield
            return
        import torch
        outside = torch.get_rng_state()
        torch.set_rng_state(self.torch_generator_state())
        try:
            yield
        finally:
            self._torch_generator_state = torch.get_rng_state()
            torch.set_rng_state(outside)

    def torch_generator_state(self):
        """The model's stream of PyTorch's CPU generator; before its first step, the generator's state."""
        import torch
        if getattr(self, "_torch_generator_state", None) is None:
            self._torch_generator_state = torch.get_rng_state()
        return self._torch_generator_state

    def _torch_train_step(self, data):
        import torch
        if getattr(self, "_adapted_optimizer", None) != id(self.optimizer):  # the optimizer's first step
            self._lay_out_for_torch()
        self.zero_grad()
        loss, y, logits = self._scored(*data, training=True)
        self.optimizer.scale_loss(loss).backward()
        weights = self.trainable_weights[:]
        with torch.no_grad():
            self.optimizer.apply([w.value.grad for w in weights], weights)
        return self._metrics_result(data[0], y, logits)

    def _lay_out_for_torch(self):
        """Before the first step with an optimizer: the weights that `torch_call` passes to `F.linear` in
        nn.Linear's memory layout, the optimizer adapted (`optim.adapt_to_torch`) and built, as its first
        `apply` would build it, and its per-weight variables laid out as their weights."""
        weights = self.trainable_weights[:]
        transposed_in_memory([layer.kernel for layer in self.layers if runs_as_torch_linear(layer)
                              and layer.kernel.value.is_contiguous()])
        adapt_to_torch(self.optimizer)
        if not self.optimizer.built:
            with keras.name_scope(self.optimizer.name, caller=self.optimizer):
                self.optimizer.build(weights)
        self._lay_out_slots_as_weights(weights)
        self._adapted_optimizer = id(self.optimizer)  # not the optimizer: saving walks attributes

    def _lay_out_slots_as_weights(self, weights):
        """The optimizer's per-weight variables (moments, averages) in the memory layout of their weight:
        elementwise updates between tensors of different layouts read one of them out of order (8 ms of a
        140-ms step at 512 units). Keras names them "{weight path with _ for /}_{slot}"."""
        prefixes = tuple(w.path.replace("/", "_") + "_" for w in weights if not w.value.is_contiguous())
        transposed_in_memory([v for v in self.optimizer.variables
                              if v.name.startswith(prefixes) and v.value.is_contiguous()])

    def test_step(self, *args):
        if not self._calls_layers_directly(args):
            return super().test_step(*args)
        (data,) = args
        _, y, logits = self._scored(*data, training=False)
        return self._metrics_result(data[0], y, logits)

    def _scored(self, x, y, training):
        """The loss, targets and logits of a batch, the last two flattened to one row per token. The loss
        tracker, a Keras `Mean`, takes the loss as its `update_state` would, in two in-place additions to its
        total and count, where `update_state` makes a dozen ops (0.15 ms of a 12-ms step at 1x128)."""
        import torch
        logits = self._logits(x, training=training)
        y, logits = y.reshape(-1), logits.reshape(-1, logits.shape[-1])
        if self._compiled_plain_cross_entropy():
            loss = torch.nn.functional.cross_entropy(logits, y.long())
        else:
            loss = self.compute_loss(x=x, y=y, y_pred=logits, training=training)
        with torch.no_grad():  # Mean.update_state(loss, sample_weight=batch size)
            self._loss_tracker.total.value.add_(loss.detach() * x.shape[0])
            self._loss_tracker.count.value.add_(x.shape[0])
        return loss, y, logits

    def _metrics_result(self, x, y, logits):
        """`compute_metrics`; with no compiled metrics (kerasrnn compiles none), the loss tracker's mean alone,
        which is what `compute_metrics` returns then, without walking the layers for metrics and dividing by
        Keras's ops (0.15 ms of a 12-ms step at 1x128)."""
        if self._compile_metrics is not None:
            return self.compute_metrics(x, y, logits)
        return {"loss": self._loss_tracker.total.value / self._loss_tracker.count.value}

    def _compiled_plain_cross_entropy(self):
        """Whether the compiled loss is the one kerasrnn compiles, the mean from-logits sparse cross-entropy
        with no loss weights, and no losses added by the layers. Keras computes it by the same `cross_entropy`
        call, wrapped in its `Loss` conversions and reduction: 0.35 ms of a 13-ms step at 1x128
        (docs/benchmarks.md). Any other loss goes through `compute_loss`."""
        loss = self.loss
        return (type(loss) is keras.losses.SparseCategoricalCrossentropy and loss.reduction == "sum_over_batch_size"
                and loss._fn_kwargs == {"from_logits": True, "ignore_class": None, "axis": -1}
                and self._compile_loss._user_loss_weights is None and not self.losses)

    def _calls_layers_directly(self, args):
        return (keras.backend.backend() == "torch" and isinstance(args[0], (tuple, list)) and len(args[0]) == 2
                and self.dtype_policy.name == "float32")

    def _logits(self, tokens, training):
        x = tokens
        for layer in self.layers[1:]:  # after the Input: build_model's chain, in order
            x = torch_call(layer, x, training)
        return x


def runs_as_torch_linear(layer):
    """Whether `torch_call` runs `layer` as `F.linear`: a plain Dense layer (no activation, LoRA or
    quantization)."""
    return (type(layer) is layers.Dense and layer.activation is keras.activations.linear and not layer.lora_enabled
            and layer.quantization_mode is None)


def torch_call(layer, x, training):
    """`layer.call(x)` on torch, as PyTorch's own function where Keras's call wraps one in conversions: a
    plain Embedding as `F.embedding` (Keras's adds casts and a pass for negative ids: 0.15 ms a step), a
    plain Dense as `F.linear` on its kernel transposed in memory, as nn.Linear holds it (`_lay_out_for_torch`;
    Keras's matmul and add on its own layout take 0.1-0.6 ms more a step at 1x128-1x512)."""
    import torch.nn.functional as F
    if type(layer) is layers.Embedding and not layer.lora_enabled and layer.quantization_mode is None:
        return F.embedding(x, layer.embeddings.value)
    if runs_as_torch_linear(layer):
        return F.linear(x, layer.kernel.value.t(), layer.bias.value if layer.use_bias else None)
    return layer.call(x, training=training) if layer._call_has_training_arg else layer.call(x)


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
    """The model's StatefulRecurrent stack."""
    return model.get_layer("recurrent")


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
    layer's seed generator, and on torch, where Keras's dropout draws from PyTorch's generators unless it is
    given a seed or a noise shape, the model's own stream of the CPU generator and each GPU's generator."""
    states = {"seed_generators": [ops.convert_to_numpy(v.value).tolist() for v in model.non_trainable_variables
                                  if "seed_generator" in v.path]}
    if keras.backend.backend() == "torch":
        import torch
        gpus = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        states["torch"] = [base64.b64encode(g.numpy().tobytes()).decode("ascii")
                           for g in [model.torch_generator_state(), *gpus]]
    return states


def set_rng_states(model, states):
    """Puts back what `get_rng_states` gave (from a checkpoint written before PyTorch's generators were
    saved: the list of the seed generators' states)."""
    if isinstance(states, list):
        states = {"seed_generators": states}
    seed_generators = [v for v in model.non_trainable_variables if "seed_generator" in v.path]
    for variable, value in zip(seed_generators, states["seed_generators"]):
        variable.assign(value)
    if keras.backend.backend() == "torch" and "torch" in states:
        import torch
        cpu, *gpus = [torch.frombuffer(bytearray(base64.b64decode(g)), dtype=torch.uint8) for g in states["torch"]]
        model._torch_generator_state = cpu
        if gpus and torch.cuda.is_available() and len(gpus) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(gpus)


def copy_weights(source, target):
    """Copies the trained weights and the start state (not the running state) between models of
    different batch sizes."""
    for src, dst in zip(source.trainable_weights, target.trainable_weights):
        dst.assign(src.value)
    set_start(target, *get_start(source))
