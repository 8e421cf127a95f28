"""The GPT family (`kerasrnn train --model gpt`), a small decoder-only transformer: the RNN's counterpart on the
same pipeline.

    tokens -> Embedding -> Decoder (pre-norm blocks: LayerNorm, causal self-attention, LayerNorm, MLP; a final
    LayerNorm) -> Dense logits

Positions are ALiBi's (Press et al.): no position embedding, each head adds -slope * distance to its attention
scores, and a query attends to the last `context` positions only (a sliding window, itself included). Both are
relative, so the model computes the same function at any distance from the text's start, and a step model
with a fixed cache of `context` slots equals the full-sequence model at every position, also past the window
(export/SPEC.md, "Transformer step models"). A GPT trains on the same stream batches as the RNN, each
[batch, seq_length] batch a set of independent blocks (no state carried between batches), and it samples by
the same contract, from an empty cache with the start token read.
"""
import keras
import numpy as np
from keras import layers, ops

from kerasrnn_edge.errors import UserError, option

from .alibi import MASKED, attention_bias, slot_bias
from .family import Family
from .language_model import StateLayer

@keras.saving.register_keras_serializable(package="kerasrnn")
class Block(layers.Layer):
    """A pre-norm transformer block: x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x)), the MLP 4x wide
    with an exact GELU; dropout (`dropout`) on both residual branches.

    Args:
        width: the input's and output's width.
        num_heads: attention heads (`width` a multiple of them).
        context: the attention window: each position attends to the last `context` ones, itself included.
        dropout: the rate of the dropout on both residual branches.

    Example:

        y = Block(width=128, num_heads=4, context=64)(keras.Input(batch_shape=(8, 64, 128)))  # [8, 64, 128]
    """

    def __init__(self, width, num_heads, context, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if width % num_heads:
            raise ValueError(f"width {width} is not a multiple of {num_heads} heads")
        self.width, self.num_heads, self.context, self.dropout = width, num_heads, context, dropout
        self.head_size = width // num_heads
        self.ln_1 = layers.LayerNormalization(epsilon=1e-5, name="ln_1")
        self.qkv = layers.Dense(3 * width, name="qkv")
        self.proj = layers.Dense(width, name="proj")
        self.ln_2 = layers.LayerNormalization(epsilon=1e-5, name="ln_2")
        self.fc = layers.Dense(4 * width, name="fc")
        self.fc_proj = layers.Dense(width, name="fc_proj")
        self.drop = layers.Dropout(dropout, name="dropout")

    def build(self, input_shape):
        shape = (*input_shape[:-1], self.width)
        for layer, inputs in ((self.ln_1, shape), (self.qkv, shape), (self.proj, shape), (self.ln_2, shape),
                              (self.fc, shape), (self.fc_proj, (*shape[:-1], 4 * self.width))):
            layer.build(inputs)

    def mlp(self, x, training=None):
        return self.drop(self.fc_proj(ops.gelu(self.fc(self.ln_2(x)), approximate=False)), training=training)

    def heads(self, x):
        """[..., width] -> [..., heads, head_size]."""
        return ops.reshape(x, (*ops.shape(x)[:-1], self.num_heads, self.head_size))

    def call(self, x, training=None):
        """x [batch, T, width] -> [batch, T, width], each position attending to the last `context` ones."""
        length = ops.shape(x)[1]
        q, k, v = (ops.transpose(self.heads(part), (0, 2, 1, 3))  # [batch, heads, T, head_size]
                   for part in ops.split(self.qkv(self.ln_1(x)), 3, axis=-1))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (1.0 / self.head_size ** 0.5)
        weights = ops.softmax(scores + ops.convert_to_tensor(attention_bias(self.num_heads, length, self.context)),
                              axis=-1)
        y = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        x = x + self.drop(self.proj(ops.reshape(y, ops.shape(x))), training=training)
        return x + self.mlp(x, training)

    def step(self, x, keys, values, bias):
        """One position: x [batch, width]; `keys`, `values` [batch, context, width], the cache with the oldest slot
        first; `bias` [batch, heads, context], ALiBi's over the slots and MASKED on empty ones (the same for every
        block: `KerasGPTStep` computes it once a position). Returns (output [batch, width], keys, values) with this
        position's key and value added as the newest slot."""
        q, k, v = ops.split(self.qkv(self.ln_1(x)), 3, axis=-1)
        keys = ops.concatenate([keys[:, 1:], k[:, None]], axis=1)
        values = ops.concatenate([values[:, 1:], v[:, None]], axis=1)
        scores = ops.einsum("bhd,bjhd->bhj", self.heads(q), self.heads(keys)) * (1.0 / self.head_size ** 0.5)
        weights = ops.softmax(scores + bias, axis=-1)
        y = ops.reshape(ops.einsum("bhj,bjhd->bhd", weights, self.heads(values)), ops.shape(x))
        x = x + self.proj(y)
        return x + self.mlp(x), keys, values

    def get_config(self):
        return {**super().get_config(), "width": self.width, "num_heads": self.num_heads, "context": self.context,
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="kerasrnn")
class Decoder(StateLayer):
    """The blocks and the final LayerNorm: the GPT family's core. It holds no running state (`state_weights` is
    empty: batches are independent blocks) but the token sampling starts with (`start_token`, export/SPEC.md).
    The blocks `frozen` lists (indices) are not trained (fine-tuning's --freeze); the config carries them, so a
    checkpoint loads with them frozen.

    Args:
        width: the model's width (the embedding's).
        num_heads: attention heads per block.
        num_layers: blocks.
        context: the attention window: each position attends to the last `context` ones, itself included.
        dropout: the rate of the dropout on both residual branches.
        frozen: indices of the blocks left untrained.

    Example:

        y = Decoder(width=128, num_heads=4, num_layers=4, context=64)(keras.Input(batch_shape=(8, 64, 128)))
    """

    def __init__(self, width=128, num_heads=4, num_layers=4, context=64, dropout=0.0, frozen=(), **kwargs):
        super().__init__(**kwargs)
        self.width, self.num_heads, self.num_layers, self.context, self.dropout = (
            width, num_heads, num_layers, context, dropout)
        self.blocks = [Block(width, num_heads, context, dropout, name=f"block_{i}") for i in range(num_layers)]
        for i in frozen:
            self.blocks[i].trainable = False
        self.ln_f = layers.LayerNormalization(epsilon=1e-5, name="ln_f")

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)
        self.ln_f.build(input_shape)
        self.add_state(input_shape[0], [])

    def call(self, x, training=None):
        for block in self.blocks:
            x = block(x, training=training)
        return self.ln_f(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "width": self.width, "num_heads": self.num_heads,
                "num_layers": self.num_layers, "context": self.context, "dropout": self.dropout,
                "frozen": [i for i, block in enumerate(self.blocks) if not block.trainable]}


class GPT(Family):
    """A small decoder-only transformer: `--num-layers` blocks of `--embedding-size` width, `--num-heads` heads, an
    attention window of `--context` tokens, which its step models cache. Its batches are independent blocks (no
    state carried between them); it has no gates to inspect, and the SavedModel and the microcontroller bundle
    take recurrent runs only.

    Example:

        family = kerasrnn.models.family("gpt")
        model = family.build(vocab_size=65, batch_size=32, seq_length=64, **family.args(kerasrnn.preset("gpt-tiny")))
    """

    name, preset, core_class = "gpt", "gpt-tiny", Decoder
    options = ("num_heads", "context")
    shape = ("num_layers", "num_heads", "embedding_size", "context")

    def check(self, config):
        if config.embedding_size % config.num_heads:
            raise UserError(f"{option('embedding_size')} ({config.embedding_size}) must be a multiple of "
                            f"{option('num_heads')} ({config.num_heads})")

    def args(self, config):
        return dict(num_layers=config.num_layers, num_heads=config.num_heads, width=config.embedding_size,
                    context=config.context, dropout=config.dropout)

    def logits(self, tokens, vocab_size, num_layers=4, num_heads=4, width=128, context=64, dropout=0.0):
        x = layers.Embedding(vocab_size, width, name="embedding")(tokens)
        x = Decoder(width, num_heads, num_layers, context, dropout, name="decoder")(x)
        return layers.Dense(vocab_size, name="logits")(x)

    def core_layers(self, model):
        return self.core_of(model).blocks

    def step_model(self, model, batch=1):
        return KerasGPTStep(model, batch)

    def step_graphs(self, model):
        from .gpt_graphs import step_graphs
        return step_graphs(model)

    def legacy_args(self, model):
        """A checkpoint of kerasrnn before families: its decoder's config."""
        core = self.core_of(model)
        return dict(num_layers=core.num_layers, num_heads=core.num_heads, width=core.width, context=core.context,
                    dropout=core.dropout)


GPT_FAMILY = GPT()


def build_gpt(vocab_size, batch_size, seq_length=None, num_layers=4, num_heads=4, width=128, context=64,
              dropout=0.0):
    """The GPT at a fixed batch size; `seq_length=None` accepts any length. Compiled as the RNN is."""
    return GPT_FAMILY.build(vocab_size, batch_size, seq_length, num_layers=num_layers, num_heads=num_heads,
                            width=width, context=context, dropout=dropout)


class KerasGPTStep:
    """The step model of the sampling contract over a trained GPT, in Keras ops on its own layers: the cache
    of every block (keys, values) and the slots filled, `batch` streams; the same math as the exported step
    models (export/SPEC.md, "Transformer step models")."""

    def __init__(self, trained, batch=1):
        self.batch, self.decoder = batch, GPT_FAMILY.core_of(trained)
        self.embedding, self.logits_layer = trained.get_layer("embedding"), trained.get_layer("logits")
        self.start_token = int(ops.convert_to_numpy(self.decoder.start_token.value))
        self.slot_bias = slot_bias(self.decoder.num_heads, self.decoder.context)[None]  # [1, heads, context]
        self.reset()

    def reset(self):
        shape = (self.batch, self.decoder.context, self.decoder.width)
        self.cache = [(np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in self.decoder.blocks]
        self.filled = np.zeros((self.batch, self.decoder.context), np.float32)

    def select(self, rows):
        """Row r takes the cache of row rows[r] (beam search: each beam continues its parent)."""
        rows = np.asarray(rows, np.int32)
        self.cache = [(ops.take(keys, rows, axis=0), ops.take(values, rows, axis=0)) for keys, values in self.cache]
        self.filled = self.filled[rows]

    def step(self, token):
        """token [batch] -> logits [batch, V] (numpy), the cache moved on by one position."""
        self.filled = np.concatenate([self.filled[:, 1:], np.ones((self.batch, 1), np.float32)], axis=1)
        x = self.embedding(ops.convert_to_tensor(np.asarray(token, np.int32)))
        bias = ops.convert_to_tensor(self.slot_bias + ((self.filled - 1.0) * -MASKED)[:, None, :])
        cache = []
        for block, (keys, values) in zip(self.decoder.blocks, self.cache):
            x, keys, values = block.step(x, keys, values, bias)
            cache.append((keys, values))
        self.cache = cache
        return np.asarray(ops.convert_to_numpy(self.logits_layer(self.decoder.ln_f(x))), np.float32)

    def feed(self, ids):
        """ids [k] -> logits [V] after the last; ids [batch, k] -> [batch, V]."""
        ids = np.asarray(ids, np.int32)
        columns = ids.T if ids.ndim == 2 else ids[:, None]
        for column in columns:
            logits = self.step(column)
        return logits if ids.ndim == 2 else logits[0]
