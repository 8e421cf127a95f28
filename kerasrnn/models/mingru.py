"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"), stacked as lucidrains/minGRU-pytorch stacks them.

A minimal GRU's gate and candidate see only the input, never the previous state:

    z_t = σ(k_t),  h̃_t = g(W_h x_t),  h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t = h_{t−1} + z_t ⊙ (h̃_t − h_{t−1})

with k_t = W_z x_t for minGRU. minLSTM's forget and input gates f_t = σ(W_f x_t), i_t = σ(W_i x_t), normalised to
f/(f+i) and i/(f+i), are the same update with z_t = i/(f+i) = σ(k_t), k_t = log σ(W_i x_t) − log σ(W_f x_t).
g(x) = x + 1/2 for x ≥ 0, σ(x) below (the paper's appendix B.3) keeps h̃, and so h, positive, as the paper's
log-space form needs, so that every scan computes the same function.

So every matrix product is over the whole [batch, T] at once, and h_t = a_t h_{t−1} + b_t (a = 1 − z, b = z h̃) is
a linear recurrence: a parallel scan gives every h_t with O(T) work in O(log T) steps (`SCANS`, chosen per backend
by measurement: docs/mingru-scan.md). Sampling steps it one token at a time, a fixed-size state at every position.
The scan runs in float32 whatever the layer computes in (bf16 loses the state over a long T).

`MinRecurrent` holds the carried state (each block's h, and the last inputs of its convolution) in tracked,
non-trainable weights, a `StateLayer` as the recurrent stack is (language_model.py says why): truncated BPTT over
stateful batches, on every backend.
"""
import keras
from keras import layers, ops

from .family import Family
from .language_model import StateLayer

CELLS = ("gru", "lstm")
CONV_WIDTH = 3  # the causal depthwise convolution's width (lucidrains' conv_kernel_size)


def g(x):
    """x + 1/2 for x ≥ 0, σ(x) below: positive, as the paper's log-space form needs."""
    return ops.where(x >= 0, x + 0.5, ops.sigmoid(x))


def split_gates(cell, projected):
    """(k, pre-candidate) from the input's projection [..., 2 units] (minGRU) or [..., 3 units] (minLSTM: the
    candidate's, then the forget gate's, then the input gate's): z = σ(k), h̃ = g(pre-candidate)."""
    if cell == "gru":
        hidden, gate = ops.split(projected, 2, axis=-1)
        return gate, hidden
    hidden, forget, input_ = ops.split(projected, 3, axis=-1)
    return ops.softplus(-forget) - ops.softplus(-input_), hidden  # log σ(i) − log σ(f)


def linear_scan(a, b):
    """(A_t, H_t) = (a_1 ⋯ a_t, the h_t of h_t = a_t h_{t−1} + b_t from h_0 = 0) over axis 1, by Keras's associative
    scan. Products underflow to 0, the right limit; nothing divides."""
    def combine(earlier, later):
        (a1, b1), (a2, b2) = earlier, later
        return a1 * a2, a2 * b1 + b2
    products, h = ops.associative_scan(combine, (a, b), axis=1)
    return ops.reshape(products, ops.shape(a)), ops.reshape(h, ops.shape(b))  # TensorFlow's graph loses the shape


def pairwise_scan(a, b):
    """`linear_scan` by the odd-even recursion written out (Blelloch's, as jax.lax.associative_scan runs it): pair
    the steps, scan the T/2 pairs, fill in the even steps. O(T) work in log2 T levels; the pairs are a reshape and
    an unstack, the interleave a stack, where Keras's generic torch scan pads and copies. Few ops a level, no
    slices of the inputs: in torch's backward each slice fills a zero tensor of its input's size and copies into it,
    and on a loaded CPU each op waits for all of torch's threads."""
    length = a.shape[1]
    if length == 1:
        return a, b
    if length % 2:  # an identity step (a = 1, b = 0) makes the length even; dropped below
        a = ops.concatenate([a, ops.ones_like(a[:, :1])], axis=1)
        b = ops.concatenate([b, ops.zeros_like(b[:, :1])], axis=1)
    pairs = (-1, (length + 1) // 2, 2, *a.shape[2:])
    a_even, a_odd = ops.unstack(ops.reshape(a, pairs), 2, axis=2)
    b_even, b_odd = ops.unstack(ops.reshape(b, pairs), 2, axis=2)
    odd_a, odd_b = pairwise_scan(a_even * a_odd, a_odd * b_even + b_odd)  # the prefixes ending at steps 1, 3, ...
    # the prefix before each even step: the identity before step 0, then the odd prefixes
    before_a = ops.concatenate([ops.ones_like(odd_a[:, :1]), odd_a[:, :-1]], axis=1)
    before_b = ops.concatenate([ops.zeros_like(odd_b[:, :1]), odd_b[:, :-1]], axis=1)
    even_a, even_b = before_a * a_even, a_even * before_b + b_even
    interleaved = (-1, 2 * pairs[1], *a.shape[2:])
    a, b = (ops.reshape(ops.stack(pair, axis=2), interleaved) for pair in ((even_a, odd_a), (even_b, odd_b)))
    return (a[:, :length], b[:, :length]) if length % 2 else (a, b)


def scan_linear(scan):
    """The recurrence over a sequence by `scan` of (a, b) = (1 − z, z h̃): (k, pre-candidate) -> (A_t, H_t)."""
    return lambda k, pre_candidate: scan(ops.sigmoid(-k), ops.sigmoid(k) * g(pre_candidate))


# the parallel forms, each the same function; a backend runs the one measured fastest there. The paper's log-space
# forms are slower here and lose precision where gates saturate (docs/mingru-scan.md)
FORMS = {"associative": scan_linear(linear_scan), "pairwise": scan_linear(pairwise_scan)}
SCANS = {"tensorflow": "pairwise", "jax": "associative", "torch": "pairwise"}


def parallel(k, pre_candidate, h0):
    """Every h_t [batch, T, units] of the recurrence from h0 [batch, units], by the backend's scan, in float32.
    Gradients do not flow into h0 (truncated BPTT: it is the previous batch's last state)."""
    k, pre_candidate = ops.cast(k, "float32"), ops.cast(pre_candidate, "float32")
    products, h = FORMS[SCANS[keras.backend.backend()]](k, pre_candidate)
    return h + products * ops.stop_gradient(ops.cast(h0, "float32"))[:, None]


def step(k, pre_candidate, h):
    """One position: h [batch, units] ← h + z ⊙ (h̃ − h), in float32."""
    h = ops.cast(h, "float32")
    z, candidate = ops.sigmoid(ops.cast(k, "float32")), g(ops.cast(pre_candidate, "float32"))
    return h + z * (candidate - h)


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinRNN(layers.Layer):
    """minGRU (`cell="gru"`) or minLSTM (`"lstm"`) of `units` units: the input's projection (no bias, as
    lucidrains has it) and the recurrence. `call` runs a whole sequence, `step` one position."""

    def __init__(self, units, cell="gru", **kwargs):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}: use one of {', '.join(CELLS)}")
        self.units, self.cell = units, cell
        self.kernel = layers.Dense((2 if cell == "gru" else 3) * units, use_bias=False, name="kernel")

    def build(self, input_shape):
        self.kernel.build(input_shape)

    def call(self, x, initial_state):
        """x [batch, T, features], initial_state [batch, units] -> (h [batch, T, units], the last h [batch, units]);
        h in float32."""
        h = parallel(*split_gates(self.cell, self.kernel(x)), initial_state)
        return h, h[:, -1]

    def step(self, x, h):
        """x [batch, features], h [batch, units] -> the next h [batch, units], float32."""
        return step(*split_gates(self.cell, self.kernel(x)), h)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units), (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "cell": self.cell}


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinBlock(layers.Layer):
    """lucidrains' block: optionally x + conv(x), a causal depthwise convolution of width 3 then a pointwise
    product; x + out(MinRNN(RMSNorm(x))), the RNN `expansion` times wider than x; x + MLP(RMSNorm(x)), the MLP
    `mlp_ratio` times wider with an exact GELU. Dropout (`dropout`) on the residual branches.

    Its state is a list: the RNN's h [batch, inner], then, with the convolution, its last 2 inputs [batch, 2 width]
    (the oldest first), which the next positions' convolution reads."""

    def __init__(self, width, cell="gru", expansion=1.5, mlp_ratio=4, conv=False, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.width, self.cell, self.expansion, self.mlp_ratio, self.conv, self.dropout = (
            width, cell, expansion, mlp_ratio, conv, dropout)
        self.inner = int(width * expansion)
        if conv:
            self.pointwise = layers.Dense(width, name="pointwise")
        self.norm_1 = layers.RMSNormalization(epsilon=1e-5, name="norm_1")
        self.rnn = MinRNN(self.inner, cell, name="rnn")
        self.out = layers.Dense(width, use_bias=False, name="out")
        self.norm_2 = layers.RMSNormalization(epsilon=1e-5, name="norm_2")
        self.fc = layers.Dense(mlp_ratio * width, name="fc")
        self.fc_proj = layers.Dense(width, name="fc_proj")
        self.drop = layers.Dropout(dropout, name="dropout")

    def build(self, input_shape):
        shape = (*input_shape[:-1], self.width)
        if self.conv:
            self.depthwise_kernel = self.add_weight(shape=(CONV_WIDTH, self.width), name="depthwise_kernel",
                                                    initializer="glorot_uniform")
            self.depthwise_bias = self.add_weight(shape=(self.width,), name="depthwise_bias", initializer="zeros")
            self.pointwise.build(shape)
        for layer, inputs in ((self.norm_1, shape), (self.rnn, shape), (self.out, (*shape[:-1], self.inner)),
                              (self.norm_2, shape), (self.fc, shape),
                              (self.fc_proj, (*shape[:-1], self.mlp_ratio * self.width))):
            layer.build(inputs)

    def state_sizes(self):
        return [self.inner] + ([(CONV_WIDTH - 1) * self.width] if self.conv else [])

    def convolve(self, x, past):
        """The causal depthwise convolution and the pointwise product over x [batch, T, width], `past` its last
        inputs [batch, 2 width] before x; returns (output, the last inputs after x)."""
        seen = ops.concatenate([ops.reshape(ops.cast(past, x.dtype), (-1, CONV_WIDTH - 1, self.width)), x], axis=1)
        length = ops.shape(x)[1]
        kernel = ops.cast(self.depthwise_kernel, x.dtype)
        y = sum(seen[:, i:i + length] * kernel[i] for i in range(CONV_WIDTH)) + ops.cast(self.depthwise_bias, x.dtype)
        return self.pointwise(y), ops.reshape(seen[:, -(CONV_WIDTH - 1):], (-1, (CONV_WIDTH - 1) * self.width))

    def mlp(self, x, training=None):
        return self.drop(self.fc_proj(ops.gelu(self.fc(self.norm_2(x)), approximate=False)), training=training)

    def call(self, x, states, training=None):
        """x [batch, T, width], `states` (see the class) -> (x [batch, T, width], the states after x)."""
        if self.conv:
            y, past = self.convolve(x, ops.stop_gradient(states[1]))
            x = x + y
        h, last = self.rnn.call(self.norm_1(x), states[0])  # (see MinRecurrent.call)
        x = x + self.drop(self.out(ops.cast(h, x.dtype)), training=training)
        new_states = [last] + ([past] if self.conv else [])
        return x + self.mlp(x, training), new_states

    def step(self, x, states):
        """One position: x [batch, width] -> (x [batch, width], the states after it)."""
        if self.conv:
            y, past = self.convolve(x[:, None], states[1])
            x = x + y[:, 0]
        h = self.rnn.step(self.norm_1(x), states[0])
        x = x + self.out(ops.cast(h, x.dtype))
        return x + self.mlp(x), [h] + ([past] if self.conv else [])

    def get_config(self):
        return {**super().get_config(), "width": self.width, "cell": self.cell, "expansion": self.expansion,
                "mlp_ratio": self.mlp_ratio, "conv": self.conv, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinRecurrent(StateLayer):
    """`num_layers` MinBlocks and a final RMSNorm, whose states at the end of a call become the next call's initial
    states (truncated BPTT: no gradient crosses the batch boundary).

    A `StateLayer`: the state lives in `self.state_weights`, [batch, n] each, in block order (each block's h, then
    its convolution's last inputs where it has one), with `self.start_weights` and `self.start_token` where
    sampling starts. The blocks `frozen` lists (indices) are not trained (--freeze; the config carries them, so
    that a checkpoint loads with them frozen)."""

    def __init__(self, cell="gru", width=128, num_layers=2, expansion=1.5, mlp_ratio=4, conv=False, dropout=0.0,
                 frozen=(), **kwargs):
        super().__init__(**kwargs)
        self.cell, self.width, self.num_layers, self.expansion, self.mlp_ratio, self.conv, self.dropout = (
            cell, width, num_layers, expansion, mlp_ratio, conv, dropout)
        self.blocks = [MinBlock(width, cell, expansion, mlp_ratio, conv, dropout, name=f"block_{i}")
                       for i in range(num_layers)]
        for i in frozen:
            self.blocks[i].trainable = False
        self.norm = layers.RMSNormalization(epsilon=1e-5, name="norm")

    def build(self, input_shape):
        if input_shape[0] is None:
            raise ValueError("MinRecurrent needs a fixed batch size (keras.Input(batch_shape=...))")
        if input_shape[-1] != self.width:
            raise ValueError(f"MinRecurrent of width {self.width} got inputs of width {input_shape[-1]}")
        for block in self.blocks:
            block.build(input_shape)
        self.norm.build(input_shape)
        names = ["h"] + (["conv"] if self.conv else [])
        self.add_state(input_shape[0], [(f"{name}_{i}", size) for i, block in enumerate(self.blocks)
                                        for name, size in zip(names, block.state_sizes())])

    def per_block(self, states):
        """The flat list of states, one list per block."""
        n = len(states) // self.num_layers
        return [states[i * n:(i + 1) * n] for i in range(self.num_layers)]

    def call(self, inputs, training=None):
        # a copy: torch's autograd keeps the initial state for the backward pass, and the assign below overwrites the
        # weight in place
        initial = [ops.copy(w.value) for w in self.state_weights]
        x, states = inputs, []
        for block, block_states in zip(self.blocks, self.per_block(initial)):
            # `call`, not the layer's __call__, which would round the float32 state to a mixed policy's bfloat16
            x, block_states = block.call(x, block_states, training=training)
            states += block_states
        self.carry(states)
        return self.norm(x)

    def step(self, x, states):
        """One position, the sampler's and the step models': x [batch, width], `states` as `state_weights` holds
        them -> (output [batch, width], the states after x). The running state is not touched."""
        new_states = []
        for block, block_states in zip(self.blocks, self.per_block(states)):
            x, block_states = block.step(x, block_states)
            new_states += block_states
        return self.norm(x), new_states

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "width": self.width, "num_layers": self.num_layers,
                "expansion": self.expansion, "mlp_ratio": self.mlp_ratio, "conv": self.conv, "dropout": self.dropout,
                "frozen": [i for i, block in enumerate(self.blocks) if not block.trainable]}


class MinRecurrentFamily(Family):
    """minGRU (`--model mingru`) or minLSTM (`--model minlstm`) blocks: `--num-layers` of them, `--embedding-size`
    wide, the recurrence `--expansion` times wider, a causal convolution first with `--conv`. Truncated BPTT over
    stateful batches as the recurrent stack trains, each batch's products and scan parallel over time; a fixed
    state per block when it samples and in its step models (mingru_graphs.py). It has no TFLite Micro bundle.

    Example:

        family = kerasrnn.models.family("mingru")
        model = family.build(vocab_size=65, batch_size=32, seq_length=128,
                             **family.args(kerasrnn.preset("mingru-tiny")))
    """

    preset, core_class = "mingru-tiny", MinRecurrent
    options = ("expansion", "conv")
    shape = ("num_layers", "embedding_size", "expansion", "conv")
    supports = frozenset({"inspect", "serving"})

    def __init__(self, cell):
        self.cell, self.name = cell, f"min{cell}"

    def args(self, config):
        return dict(num_layers=config.num_layers, width=config.embedding_size, expansion=config.expansion,
                    conv=config.conv, dropout=config.dropout)

    def logits(self, tokens, vocab_size, num_layers=2, width=128, expansion=1.5, conv=False, dropout=0.0,
               mlp_ratio=4):
        x = layers.Embedding(vocab_size, width, name="embedding")(tokens)
        x = MinRecurrent(self.cell, width, num_layers, expansion, mlp_ratio, conv, dropout, name="recurrent")(x)
        return layers.Dense(vocab_size, name="logits")(x)

    def core_of(self, model):
        layer = super().core_of(model)
        return layer if layer is not None and layer.cell == self.cell else None

    def core_layers(self, model):
        return self.core_of(model).blocks

    def step_graphs(self, model):
        from .mingru_graphs import step_graphs
        return step_graphs(model)

    def recompute(self, model):
        from .mingru_graphs import from_model
        return from_model(model)


MINGRU, MINLSTM = MinRecurrentFamily("gru"), MinRecurrentFamily("lstm")
