"""ALiBi's attention bias (Press et al.), shared by the GPT's layers and its step graphs: each head adds
-slope * distance to its attention scores, and a query attends to the last `context` positions only."""
import functools

import numpy as np

MASKED = -1e9  # a score no softmax weighs: exp(MASKED - max) is 0 in float32


def alibi_slopes(num_heads):
    """Each head's slope, 2^(-8 (h + 1) / heads) (ALiBi's geometric sequence), float32 [heads]."""
    return (2.0 ** (-8.0 * np.arange(1, num_heads + 1) / num_heads)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def attention_bias(num_heads, length, context):
    """The full-sequence attention bias [heads, length, length]: -slope * (i - j) where query i sees key j
    (i - context < j <= i), MASKED elsewhere; float32, as every step model computes it."""
    distance = (np.arange(length)[:, None] - np.arange(length)[None]).astype(np.float32)
    bias = -alibi_slopes(num_heads)[:, None, None] * distance[None]
    return np.where((distance >= 0) & (distance < context), bias, np.float32(MASKED)).astype(np.float32)


def slot_bias(num_heads, context):
    """The step model's bias over its cache [heads, context]: slot j (oldest first) is `context - 1 - j` positions
    back from the newest, the token being read."""
    return attention_bias(num_heads, context, context)[:, -1, :]
