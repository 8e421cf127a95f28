"""export/SPEC.md's sampling contract (version 2) in TensorFlow ops, row by row over a batch: SplitMix64
and choose, for the SavedModel's generate and choose signatures (serving.py).

Builtin ops only, so TF Serving's standard binary runs them. TensorFlow's uint64 add, multiply, xor and
logical right shift wrap modulo 2^64 as the spec's arithmetic does, so SplitMix64 needs no emulation.
choose works in float64 as the spec does: `tf.math.top_k` orders equal values by smaller id first (the
spec's tie order), and `tf.cumsum` adds left to right, one addition at a time (as `np.cumsum`).
"""
import tensorflow as tf

GAMMA, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _xorshift(z, bits):
    return z ^ tf.bitwise.right_shift(z, tf.constant(bits, tf.uint64))


def next_double(state):
    """(advanced states, next_double() of each row) for uint64 generator states [batch]."""
    state = state + tf.constant(GAMMA, tf.uint64)
    z = _xorshift(state, 30) * tf.constant(MIX1, tf.uint64)
    z = _xorshift(z, 27) * tf.constant(MIX2, tf.uint64)
    z = _xorshift(z, 31)
    return state, tf.cast(tf.bitwise.right_shift(z, tf.constant(11, tf.uint64)), tf.float64) * 2.0**-53


def choose(logits, state, temperature, top_k, top_p, argmax):
    """choose() for each row: (ids int32 [batch], the generator states after it).

    `logits` float32 [batch, V]; `state` uint64, `temperature` and `top_p` float64, `top_k` int32 and
    `argmax` bool, all [batch]. An argmax row draws no number, so its state stays as it was. The sorts
    run only when some row asks for top_k or top_p.
    """
    vocab = tf.shape(logits)[1]
    ids = tf.range(vocab)[None]
    x = tf.cast(logits, tf.float64) / temperature[:, None]
    cut_k = (top_k > 0) & (top_k < vocab)
    x = tf.cond(tf.reduce_any(cut_k), lambda: tf.where(_first(x, tf.where(cut_k, top_k, vocab)), x, float("-inf")),
                lambda: x)
    w = tf.exp(x - tf.reduce_max(x, axis=1, keepdims=True))
    cut_p = top_p < 1
    w = tf.cond(tf.reduce_any(cut_p), lambda: tf.where(_nucleus(w, top_p, cut_p), w, 0.0), lambda: w)
    drawn_state, u = next_double(state)
    cum = tf.cumsum(w, axis=1)
    drawn = tf.reduce_sum(tf.cast(cum <= (u * cum[:, -1])[:, None], tf.int32), axis=1)
    drawn = tf.where(drawn < vocab, drawn, tf.reduce_max(tf.where(w > 0, ids, -1), axis=1))  # rounding left none
    best = tf.reduce_min(tf.where(logits == tf.reduce_max(logits, axis=1, keepdims=True), ids, vocab), axis=1)
    return tf.where(argmax, best, drawn), tf.where(argmax, state, drawn_state)


def _first(values, n, ranked=None):
    """Mask of each row's first n[row] ids in the spec's order: by value descending, equal values by
    smaller id first. `ranked`: `tf.math.top_k(values, V)` when the caller has it already."""
    top, order = ranked if ranked is not None else tf.math.top_k(values, k=tf.shape(values)[1])
    value = tf.gather(top, n - 1, batch_dims=1)[:, None]
    last = tf.gather(order, n - 1, batch_dims=1)[:, None]
    ids = tf.range(tf.shape(values)[1])[None]
    return (values > value) | ((values == value) & (ids <= last))


def _nucleus(w, top_p, cut):
    """Mask of the ids that top_p keeps (every id in rows where `cut` is false): the first n in the spec's
    order by w, n - 1 the first position whose running sum c reaches top_p * Z."""
    ranked = tf.math.top_k(w, k=tf.shape(w)[1])
    c = tf.cumsum(ranked.values, axis=1)
    n = 1 + tf.reduce_sum(tf.cast(c[:, :-1] < (top_p * c[:, -1])[:, None], tf.int32), axis=1)
    return _first(w, tf.where(cut, n, tf.shape(w)[1]), ranked)
