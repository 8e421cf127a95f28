"""export_serving: a run directory's checkpoint -> a TF Serving SavedModel (docs/serving.md).

    BASE_DIR/NAME/VERSION/   saved_model.pb + variables/; VERSION = the largest existing + 1

Two signatures share the weights:

    serving_default  prompt string [batch], max_length int32, temperature float32, top_k int32, seed int64
                     (each a scalar or [batch]) -> text string [batch], ids int32 [batch, max(max_length)]
    step             token int32 [batch], layer0_h (, layer0_c, layer1_h, ...) float32 [batch, H]
                     -> logits float32 [batch, V], next_layer0_h, ...

Generation runs entirely in the graph (tokenizing, priming, sampling, decoding), so a server needs
only the SavedModel. Rows are independent: each row's text equals generating its prompt alone.
"""
import os
import shutil
import tempfile

import tensorflow as tf

from kerasrnn.run import WHAT_TO_DO, load_run, write_error
from kerasrnn_edge.errors import UserError

from .tflite import StepWeights
from .weights import from_model

UNKNOWN = ("error", "skip")  # what generate does with prompt characters outside the vocabulary


class ServingModule(StepWeights):
    def __init__(self, weights, vocab, max_length_cap=1000, unknown="error"):
        super().__init__(weights)
        self.kind, self.max_length_cap, self.unknown = vocab.kind, max_length_cap, unknown
        self.start_token = tf.constant(weights.start_token, tf.int32)
        self.start_state = [tf.constant(s) for s in weights.start_state]
        if vocab.kind == "char":
            self.code_points = tf.constant([ord(c) for c in vocab.chars], tf.int32)  # sorted, as Vocab keeps them
        states = [tf.TensorSpec([None, self.rnn_size], tf.float32, name=n) for n in self.state_names]
        self.step = tf.function(self.step_outputs,
                                input_signature=[tf.TensorSpec([None], tf.int32, name="token"), *states])
        self.generate = tf.function(self._generate, input_signature=[
            tf.TensorSpec([None], tf.string, name="prompt"), tf.TensorSpec(None, tf.int32, name="max_length"),
            tf.TensorSpec(None, tf.float32, name="temperature"), tf.TensorSpec(None, tf.int32, name="top_k"),
            tf.TensorSpec(None, tf.int64, name="seed")])

    def _generate(self, prompt, max_length, temperature, top_k, seed):
        batch = tf.size(prompt)
        max_length, temperature, top_k, seed = (tf.broadcast_to(x, [batch]) for x in (max_length, temperature, top_k, seed))
        max_length, temperature, top_k = self._validate(max_length, temperature, top_k)
        logits, states = self._prime(self._encode(prompt), batch)
        length = tf.reduce_max(tf.concat([max_length, [0]], 0))
        out = tf.TensorArray(tf.int32, size=length)
        for n in tf.range(length):
            token = _sample(logits, temperature, top_k, seed, tf.cast(n, tf.int64))
            out = out.write(n, token)
            logits, states = self.forward(token, states)
        tokens = tf.transpose(tf.reshape(out.stack(), [length, batch]))
        kept = tf.sequence_mask(max_length, length)
        return {"text": self._decode(tf.ragged.boolean_mask(tokens, kept)), "ids": tf.where(kept, tokens, -1)}

    def _validate(self, max_length, temperature, top_k):
        """The arguments, available only once they pass their checks (else InvalidArgument naming the problem)."""
        checks = [
            tf.debugging.assert_non_negative(max_length, message="max_length must be >= 0"),
            tf.debugging.assert_less_equal(max_length, self.max_length_cap,
                                           message=f"max_length must be <= {self.max_length_cap} (the cap set at export)"),
            tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
            tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0 keeps every token)")]
        with tf.control_dependencies(checks):
            return tf.identity(max_length), tf.identity(temperature), tf.identity(top_k)

    def _encode(self, prompt):
        """Token ids of each prompt (ragged [batch, None])."""
        if self.kind == "byte":
            chars = tf.strings.bytes_split(prompt)
            return chars.with_flat_values(tf.cast(tf.reshape(tf.io.decode_raw(chars.flat_values, tf.uint8), [-1]), tf.int32))
        points = tf.strings.unicode_decode(prompt, "UTF-8", errors="strict")
        index = tf.minimum(tf.searchsorted(self.code_points, points.flat_values), self.vocab_size - 1)
        known = tf.gather(self.code_points, index) == points.flat_values
        if self.unknown == "error":
            unknown = tf.strings.unicode_encode(tf.boolean_mask(points.flat_values, ~known), "UTF-8")
            check = tf.debugging.Assert(tf.reduce_all(known), ["prompt has characters outside the vocabulary:", unknown])
            with tf.control_dependencies([check]):
                index = tf.identity(index)
        return tf.ragged.boolean_mask(points.with_flat_values(index), points.with_flat_values(known))

    def _prime(self, ids, batch):
        """Logits and states after each row's start token and prompt, from the start state (SPEC.md).

        Prompts are right-aligned: a row's state only starts changing at its first token, so every row
        ends exactly where feeding its prompt alone would.
        """
        ids = tf.concat([tf.RaggedTensor.from_tensor(tf.fill([batch, 1], self.start_token)), ids], axis=1)
        padded = tf.reverse(tf.reverse(ids, axis=[1]).to_tensor(0), axis=[1])  # left-padded [batch, longest]
        start = tf.shape(padded)[1] - tf.cast(ids.row_lengths(), tf.int32)
        logits = tf.zeros([batch, self.vocab_size])
        states = [tf.tile(s[None], [batch, 1]) for s in self.start_state]
        for t in tf.range(tf.shape(padded)[1]):
            live = (t >= start)[:, None]
            new_logits, new_states = self.forward(padded[:, t], states)
            logits = tf.where(live, new_logits, logits)
            states = [tf.where(live, new, old) for new, old in zip(new_states, states)]
        return logits, states

    def _decode(self, tokens):
        """UTF-8 text of each row of ragged `tokens`; in byte mode, invalid sequences become U+FFFD."""
        if self.kind == "char":
            return tf.strings.unicode_encode(tokens.with_flat_values(tf.gather(self.code_points, tokens.flat_values)), "UTF-8")
        byte_strings = tf.constant([bytes([b]) for b in range(256)])
        text = tf.strings.reduce_join(tokens.with_flat_values(tf.gather(byte_strings, tokens.flat_values)), axis=1)
        return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")


def _sample(logits, temperature, top_k, seed, n):
    """One token per row from logits / temperature, keeping the top_k (0: all).

    Row b draws with seed (seed[b], n) alone, so its token does not depend on the other rows.
    """
    vocab_size = tf.shape(logits)[1]
    x = logits / temperature[:, None]
    k = tf.where((top_k > 0) & (top_k < vocab_size), top_k, vocab_size)
    kth = tf.gather(tf.sort(x, direction="DESCENDING"), k - 1, batch_dims=1)
    x = tf.where(x >= kth[:, None], x, float("-inf"))

    def draw(row_and_seed):
        row, s = row_and_seed
        return tf.random.stateless_categorical(row[None], 1, seed=tf.stack([s, n]), dtype=tf.int32)[0, 0]

    return tf.vectorized_map(draw, (x, seed))


def export_serving(run_dir, base_dir, name="kerasrnn", which="best", max_length_cap=1000, unknown="error"):
    """Writes `run_dir`'s `which` checkpoint as BASE_DIR/NAME/VERSION (a new version); returns that path.

    `max_length_cap`: generate refuses longer requests. `unknown`: "error" rejects prompts with characters
    outside the vocabulary, "skip" drops those characters.
    """
    if unknown not in UNKNOWN:
        raise UserError(f"unknown must be one of {', '.join(UNKNOWN)} (got {unknown!r})")
    if max_length_cap < 0:
        raise UserError(f"max_length_cap must be >= 0 (got {max_length_cap})")
    model, vocab, _, _ = load_run(run_dir, which)
    module = ServingModule(from_model(model), vocab, max_length_cap, unknown)
    model_dir = os.path.join(base_dir, name)
    tmp = None
    try:
        os.makedirs(model_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=model_dir)  # TF Serving ignores names that are not numbers
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.generate, "step": module.step})
        return _publish(tmp, model_dir)
    except OSError as e:
        raise write_error(model_dir, e) from None
    except tf.errors.OpError as e:  # TensorFlow's file system reports the OS error in its message
        number = next((n for n in WHAT_TO_DO if os.strerror(n) in e.message), None)
        raise write_error(model_dir, OSError(number, os.strerror(number) if number else e.message)) from None
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp, model_dir):
    """Renames `tmp` to the next version number. Renaming onto an existing (non-empty) version fails, so a
    concurrent export that took the number first is never overwritten: then the next number is tried."""
    while True:
        versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
        path = os.path.join(model_dir, str(max(versions, default=0) + 1))
        try:
            os.rename(tmp, path)
            return path
        except OSError:
            if not os.path.isdir(path):
                raise
