"""The JAX backend's fast path: with a GPU, the LSTM stack as one call of cuDNN's LSTM kernel
(jax.experimental.rnn.lstm)."""
import jax
import jax.numpy as jnp

from . import pytorch_weights


def runs_fused(stack):
    return stack.cell == "lstm" and jax.default_backend() == "gpu"


def fused_stack(cell, inputs, states, weights, training):
    from jax.experimental.rnn import lstm
    return fused_lstm(inputs, states, weights, lstm)


def fused_lstm(inputs, states, weights, cudnn_lstm):
    """Runs a stack of LSTM layers, given their Keras (kernel, recurrent_kernel, bias) in `weights`, as one
    call of `cudnn_lstm` (jax.experimental.rnn.lstm's signature).

    cuDNN's flat weights are every layer's [W_ih, W_hh], then every layer's [b_ih, b_hh], each raveled,
    in PyTorch's layout (`pytorch_weights`). Returns the last layer's outputs and the final states in
    `states`' order (h0, c0, h1, c1, ...).
    """
    layers = [pytorch_weights("lstm", *layer) for layer in weights]
    flat = jnp.concatenate([jnp.ravel(w) for part in (slice(0, 2), slice(2, 4)) for layer in layers
                            for w in layer[part]])
    h0, c0 = jnp.stack(states[0::2]), jnp.stack(states[1::2])
    batch, length, features = inputs.shape
    outputs, h, c = cudnn_lstm(inputs, h0, c0, flat, jnp.full((batch,), length, jnp.int32), input_size=features,
                               hidden_size=h0.shape[-1], num_layers=len(weights), dropout=0.0, bidirectional=False)
    return outputs, [s for i in range(len(weights)) for s in (h[i], c[i])]
