"""write_serving: a family's step graphs -> a TF Serving SavedModel (docs/serving.md).

    BASE_DIR/NAME/VERSION/   saved_model.pb + variables/; VERSION = the largest existing + 1

Five signatures share the weights:

    serving_default  prompt string [batch], max_length int32, temperature float64, top_k int32, top_p float64,
                     argmax bool, seed uint64 (each but prompt a scalar or [batch])
                     -> text string [batch], ids int32 [batch, max(max_length)]
    generate_stop    the same inputs and stop string [S] (stop strings, export/SPEC.md "Stop strings")
                     -> the same outputs, each text cut before its first stop string (ids: all generated)
    step             token int32 [batch], layer0_h (, layer0_c, layer1_h, ...) float32 [batch, H]
                     -> logits float32 [batch, V], next_layer0_h, ...
    start            batch int32 -> token int32 [batch], layer0_h, ... float32 [batch, H]: where a text starts
    choose           logits float32 [batch, any V], rng uint64, temperature, top_k, top_p, argmax
                     -> id int32 [batch], rng uint64 [batch]: one choose() per row

Generation runs entirely in the graph (tokenizing, priming, sampling, decoding), so a server needs
only the SavedModel (and, for a bpe run, tensorflow-text's ops: its SentencepieceTokenizer tokenizes
the prompts). It follows export/SPEC.md's sampling contract (contract.py), so a row's text is
the text `kerasrnn sample` writes for the same prompt, parameters and seed; rows are independent.
"""
import os
import shutil
import tempfile

import tensorflow as tf

from kerasrnn.files import WHAT_TO_DO, write_error
from kerasrnn_edge.errors import UserError

from .contract import choose
from .tflite import StepModule

UNKNOWN = ("error", "skip")  # what generate does with prompt characters outside the vocabulary


class ServingModule(StepModule):
    """The step at any batch (`StepModule`, whose "step" signature it serves) and the signatures around it.
    `sentencepiece`: a bpe vocabulary's SentencePiece model proto (bytes), which tokenizes the prompts."""

    def __init__(self, graphs, vocab, max_length_cap=1000, unknown="error", sentencepiece=None):
        super().__init__(graphs, batch=None)
        self.vocab_size = graphs.vocab_size
        self.kind, self.max_length_cap, self.unknown = vocab.kind, max_length_cap, unknown
        self.start_token = tf.constant(graphs.start_token, tf.int32)
        self.start_state = [tf.constant(s) for s in graphs.start_state]
        if vocab.kind == "char":
            points = [ord(c) for c in vocab.chars]  # in id order: sorted, or grown by fine-tuning
            self.code_points = tf.constant(points, tf.int32)
            by_code_point = sorted(range(len(points)), key=points.__getitem__)  # for searchsorted in _encode
            self.sorted_code_points = tf.constant([points[i] for i in by_code_point], tf.int32)
            self.sorted_ids = tf.constant(by_code_point, tf.int32)
        if vocab.kind == "bpe":
            self.tokenizer = sentencepiece_tokenizer(sentencepiece)
            self.piece_bytes = tf.constant([vocab.piece_bytes(i) for i in range(vocab.size)])
        params = [tf.TensorSpec(None, tf.float64, name="temperature"), tf.TensorSpec(None, tf.int32, name="top_k"),
                  tf.TensorSpec(None, tf.float64, name="top_p"), tf.TensorSpec(None, tf.bool, name="argmax")]
        self.start = tf.function(self._start, input_signature=[tf.TensorSpec([], tf.int32, name="batch")])
        self.choose = tf.function(self._choose, input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="logits"), tf.TensorSpec(None, tf.uint64, name="rng"),
            *params])
        generate_inputs = [tf.TensorSpec([None], tf.string, name="prompt"),
                           tf.TensorSpec(None, tf.int32, name="max_length"), *params,
                           tf.TensorSpec(None, tf.uint64, name="seed")]
        self.generate = tf.function(self._generate, input_signature=generate_inputs)
        self.generate_stop = tf.function(self._generate_stop, input_signature=[
            *generate_inputs, tf.TensorSpec([None], tf.string, name="stop")])

    def _generate_stop(self, prompt, max_length, temperature, top_k, top_p, argmax, seed, stop):
        """generate, each text then cut where a sampler stops (SPEC.md "Stop strings"): at the first end of a
        stop string's occurrence, before the leftmost occurrence ending there. (Exact where each token is at
        most one character, char and byte runs; a bpe piece completing a stop string and also holding the
        start of a longer one may make a sampler cut earlier.)"""
        out = self._generate(prompt, max_length, temperature, top_k, top_p, argmax, seed)
        text = out["text"]
        check = tf.debugging.assert_positive(tf.strings.length(stop), message="a stop string must not be empty")
        with tf.control_dependencies([check]):
            stop = tf.identity(stop)
        first = tf.map_fn(lambda s: tf.strings.split(text, sep=s, maxsplit=1).to_tensor("", shape=[None, 2]), stop,
                          fn_output_signature=tf.TensorSpec([None, 2], tf.string))  # [S, batch, 2]
        found = tf.strings.length(first[:, :, 0]) < tf.strings.length(text)[None]  # else no split: the whole text
        start = tf.strings.length(first[:, :, 0], unit="UTF8_CHAR")
        end = tf.where(found, start + tf.strings.length(stop, unit="UTF8_CHAR")[:, None], tf.int32.max)
        stop_end = tf.reduce_min(end, axis=0)  # [batch]: where the first stop string completes
        cut = tf.reduce_min(tf.where(end == stop_end[None], start, tf.int32.max), axis=0)
        cut = tf.where(stop_end < tf.int32.max, cut, tf.strings.length(text, unit="UTF8_CHAR"))
        return {"text": tf.strings.substr(text, tf.zeros_like(cut), cut, unit="UTF8_CHAR"), "ids": out["ids"]}

    def _generate(self, prompt, max_length, temperature, top_k, top_p, argmax, seed):
        batch = tf.size(prompt)
        max_length, rng = tf.broadcast_to(max_length, [batch]), tf.broadcast_to(seed, [batch])
        max_length = self._check_length(max_length)
        params = self._params(batch, temperature, top_k, top_p, argmax)
        logits, states = self._prime(self._encode(prompt), batch)
        length = tf.reduce_max(tf.concat([max_length, [0]], 0))
        out = tf.TensorArray(tf.int32, size=length)
        for n in tf.range(length):
            token, rng = choose(logits, rng, *params)
            out = out.write(n, token)
            logits, states = self.forward(token, states)
        tokens = tf.transpose(tf.reshape(out.stack(), [length, batch]))
        kept = tf.sequence_mask(max_length, length)
        return {"text": self._decode(tf.ragged.boolean_mask(tokens, kept)), "ids": tf.where(kept, tokens, -1)}

    def _start(self, batch):
        """The "start" signature: the step signature's inputs a text starts from (SPEC.md, "Generating
        text"): feed `token` with these states, then the prompt's ids."""
        return {"token": tf.fill([batch], self.start_token), **dict(zip(self.state_names, self._start_states(batch)))}

    def _start_states(self, batch):
        return [tf.tile(s[None], [batch, 1]) for s in self.start_state]

    def _choose(self, logits, rng, temperature, top_k, top_p, argmax):
        """The "choose" signature: one choose() per row; `rng` is the generator state (the seed before a
        text's first draw), and the returned `rng` the state to pass next time."""
        batch = tf.shape(logits)[0]
        ids, rng = choose(logits, tf.broadcast_to(rng, [batch]), *self._params(batch, temperature, top_k, top_p, argmax))
        return {"id": ids, "rng": rng}

    def _check_length(self, max_length):
        """`max_length`, available only once it passes its checks (else InvalidArgument naming the problem)."""
        checks = [
            tf.debugging.assert_non_negative(max_length, message="max_length must be >= 0"),
            tf.debugging.assert_less_equal(max_length, self.max_length_cap,
                                           message=f"max_length must be <= {self.max_length_cap} (the cap set at export)")]
        with tf.control_dependencies(checks):
            return tf.identity(max_length)

    @staticmethod
    def _params(batch, temperature, top_k, top_p, argmax):
        """The sampling parameters as [batch] vectors, available only once they pass the checks that every
        sampler makes (else InvalidArgument naming the problem)."""
        temperature, top_k, top_p, argmax = (tf.broadcast_to(x, [batch]) for x in (temperature, top_k, top_p, argmax))
        top_p_range = "top_p must be in (0, 1] (1 keeps every token)"
        checks = [
            tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
            tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0 keeps every token)"),
            tf.debugging.assert_positive(top_p, message=top_p_range),
            tf.debugging.assert_less_equal(top_p, tf.constant(1.0, tf.float64), message=top_p_range)]
        with tf.control_dependencies(checks):
            return [tf.identity(x) for x in (temperature, top_k, top_p, argmax)]

    def _encode(self, prompt):
        """Token ids of each prompt (ragged [batch, None])."""
        if self.kind == "byte":
            return _bytes(prompt)
        if self.kind == "bpe":  # SPEC.md's BPE encoding is SentencePiece's, here tensorflow-text's op
            check = tf.debugging.Assert(tf.reduce_all(tf.strings.unicode_transcode(
                prompt, "UTF-8", "UTF-8", errors="replace") == prompt), ["prompt is not valid UTF-8"])
            with tf.control_dependencies([check]):
                return self.tokenizer.tokenize(prompt)
        points = tf.strings.unicode_decode(prompt, "UTF-8", errors="strict")
        position = tf.minimum(tf.searchsorted(self.sorted_code_points, points.flat_values), self.vocab_size - 1)
        known = tf.gather(self.sorted_code_points, position) == points.flat_values
        index = tf.gather(self.sorted_ids, position)
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
        states = self._start_states(batch)
        for t in tf.range(tf.shape(padded)[1]):
            live = (t >= start)[:, None]
            new_logits, new_states = self.forward(padded[:, t], states)
            logits = tf.where(live, new_logits, logits)
            states = [tf.where(live, new, old) for new, old in zip(new_states, states)]
        return logits, states

    def _decode(self, tokens):
        """UTF-8 text of each row of ragged `tokens`, as the samplers' streaming decoder writes it: in byte
        mode, invalid sequences become U+FFFD and an incomplete one at the end is held back (not written)."""
        if self.kind == "char":
            return tf.strings.unicode_encode(tokens.with_flat_values(tf.gather(self.code_points, tokens.flat_values)), "UTF-8")
        if self.kind == "bpe":  # the pieces' bytes, then decoded as byte tokens are
            tokens = _bytes(tf.strings.reduce_join(tokens.with_flat_values(tf.gather(self.piece_bytes, tokens.flat_values)),
                                                   axis=1))
        padded, lengths = tokens.to_tensor(0), tf.cast(tokens.row_lengths(), tf.int32)
        tokens = tf.RaggedTensor.from_tensor(padded, lengths=lengths - _held_back(padded, lengths))
        byte_strings = tf.constant([bytes([b]) for b in range(256)])
        text = tf.strings.reduce_join(tokens.with_flat_values(tf.gather(byte_strings, tokens.flat_values)), axis=1)
        return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")


def _bytes(strings):
    """The bytes of each string as int32 ids (ragged [batch, None])."""
    chars = tf.strings.bytes_split(strings)
    return chars.with_flat_values(tf.cast(tf.reshape(tf.io.decode_raw(chars.flat_values, tf.uint8), [-1]), tf.int32))


def sentencepiece_tokenizer(model):
    try:
        import tensorflow_text
    except ImportError:
        raise UserError("a bpe run's SavedModel tokenizes with tensorflow-text: pip install \"kerasrnn[subword]\"") from None
    return tensorflow_text.SentencepieceTokenizer(model=model, out_type=tf.int32)


def _held_back(tokens, lengths):
    """How many bytes at the end of each row (`tokens` [batch, None], `lengths` [batch]) start a valid UTF-8
    sequence that is not complete: what an incremental decoder holds back (0 to 3)."""
    def byte(back):  # the row's byte `back` positions from its end, -1 before its start
        return tf.where(lengths >= back, tf.gather(tokens, tf.maximum(lengths - back, 0), batch_dims=1), -1)

    def needs(lead):  # a lead byte's sequence length; 0 for any other byte
        return tf.where((lead >= 0xC2) & (lead <= 0xDF), 2, tf.where((lead >= 0xE0) & (lead <= 0xEF), 3,
                        tf.where((lead >= 0xF0) & (lead <= 0xF4), 4, 0)))

    def second(lead, b):  # whether b may follow lead: no overlong form, nothing above U+10FFFF
        low = tf.where(lead == 0xE0, 0xA0, tf.where(lead == 0xF0, 0x90, 0x80))
        high = tf.where(lead == 0xF4, 0x8F, 0xBF)  # (after ED, Python's decoder waits even for a surrogate)
        return (b >= low) & (b <= high)

    last, before, third = byte(1), byte(2), byte(3)
    return tf.where(needs(last) > 1, 1, tf.where((needs(before) > 2) & second(before, last), 2,
                    tf.where((needs(third) > 3) & second(third, before) & (last >= 0x80) & (last <= 0xBF), 3, 0)))


def write_serving(graphs, vocab, base_dir, name="kerasrnn", max_length_cap=1000, unknown="error", sentencepiece=None):
    """Writes the SavedModel of `graphs` (a StepGraphs; `vocab` its Vocab) as BASE_DIR/NAME/VERSION (a new
    version); returns that path.

    `max_length_cap`: generate refuses longer requests. `unknown`: "error" rejects prompts with characters
    outside the vocabulary, "skip" drops those characters. `sentencepiece`: a bpe vocabulary's model proto.
    """
    if unknown not in UNKNOWN:
        raise UserError(f"unknown must be one of {', '.join(UNKNOWN)} (got {unknown!r})")
    if max_length_cap < 0:
        raise UserError(f"max_length_cap must be >= 0 (got {max_length_cap})")
    module = ServingModule(graphs, vocab, max_length_cap, unknown, sentencepiece)
    model_dir = os.path.join(base_dir, name)
    tmp = None
    try:
        os.makedirs(model_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=model_dir)  # TF Serving ignores names that are not numbers
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.generate,
                                                     "generate_stop": module.generate_stop, "step": module.step,
                                                     "start": module.start, "choose": module.choose})
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
