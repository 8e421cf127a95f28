import numpy as np
import pytest

from conftest import shakespeare_slice
from kerasrnn.corpus import load_ids
from kerasrnn.data import StreamBatches, split, start_context
from kerasrnn_edge.errors import UserError
from kerasrnn_edge.vocab import Vocab


def test_stream_layout_row_i_of_batch_k_plus_1_continues_row_i_of_batch_k():
    ids = np.arange(1000, dtype=np.uint16)
    batches = StreamBatches(ids, batch_size=4, seq_length=7)
    per_stream = 999 // 4
    assert len(batches) == per_stream // 7
    for k in range(len(batches) - 1):
        x, y = batches[k]
        x_next, _ = batches[k + 1]
        assert x.shape == (4, 7) and x.dtype == np.int32
        np.testing.assert_array_equal(y, x + 1)  # targets are the next token
        np.testing.assert_array_equal(x_next[:, 0], x[:, -1] + 1)  # each row continues its stream
        np.testing.assert_array_equal(x[:, 0], np.arange(4) * per_stream + k * 7)


def test_chunks_split_a_pass_into_keras_epochs():
    batches = StreamBatches(np.arange(1000, dtype=np.uint16), batch_size=2, seq_length=10, steps_per_chunk=16)
    seen = []
    for chunk in range(batches.chunks):
        batches.chunk = chunk
        seen += [batches[i][0][0, 0] for i in range(len(batches))]
    assert seen == [10 * k for k in range(batches.chunks * batches.steps)]


def test_too_short_text_names_the_minimum_and_the_options():
    with pytest.raises(UserError, match=r"4 x seq length 10 \+ 1 = 41 .*batch_size= or seq_length="):
        StreamBatches(np.arange(40), batch_size=4, seq_length=10)
    StreamBatches(np.arange(41), batch_size=4, seq_length=10)


def test_split_is_contiguous_90_10():
    train, val, test = split(np.arange(1000), 0.9, 0.1)
    assert (len(train), len(val), len(test)) == (900, 100, 0)
    assert train[-1] + 1 == val[0]


def test_char_vocab_is_utf8_code_points(tmp_path):
    path = tmp_path / "u.txt"
    path.write_text("héllo wörld — 你好 😀\n", encoding="utf-8")
    vocab, ids = load_ids(str(path), "char")
    assert vocab.decode(ids) == path.read_text(encoding="utf-8")
    assert vocab.chars == sorted(vocab.chars) and "😀" in vocab.chars
    assert ids.dtype == np.uint8
    vocab_again, ids_again = load_ids(str(path), "char")  # from the memory-mapped cache
    assert vocab_again == vocab and isinstance(ids_again, np.memmap)
    np.testing.assert_array_equal(ids_again, ids)


def test_byte_vocab_takes_any_file_and_decodes_split_characters(tmp_path):
    path = tmp_path / "b.bin"
    path.write_bytes("naïve 😀".encode("utf-8") + b"\xff")
    vocab, ids = load_ids(str(path), "byte")
    assert vocab.size == 256 and list(ids) == list(path.read_bytes())
    decode = vocab.decoder()
    assert "".join(decode(int(i)) for i in ids) == "naïve 😀\ufffd"
    assert [decode(b) for b in "😀".encode("utf-8")] == ["", "", "", "😀"]


def test_invalid_utf8_gives_the_byte_offset_and_suggests_byte_mode(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"hello \xff world")
    with pytest.raises(UserError, match=r"byte offset 6.*tokens='byte'"):
        load_ids(str(path), "char")


def test_prime_outside_vocabulary_lists_the_characters(tmp_path):
    vocab, _ = load_ids(shakespeare_slice(tmp_path, 5000), "char")
    with pytest.raises(UserError, match="'Ж' 'ж'"):
        vocab.encode("Жиж")
    assert Vocab.from_json(vocab.to_json()) == vocab


@pytest.mark.parametrize("text, kind, token, context_ends", [
    ("a\n\nbc\nThe end.\n\nLast words\nno break", "char", "\n", "end.\n"),  # the last blank line
    ("a b\nc d\ne f\ng h", "char", "\n", "e f"),                             # else the last line break
    ("no line breaks at all in this text", "char", "t", "is tex"),           # else the text's end
    ("caf\u00e9\n\nna\u00efve\n", "byte", "\n", "caf\u00e9\n"),                 # bytes: byte 10
])
def test_start_context_ends_at_the_last_paragraph_break(text, kind, token, context_ends):
    vocab, ids = Vocab.fit(text.encode(), kind)
    context, start_token = start_context(ids, vocab, seq_length=2, length=8)
    assert vocab.decode([start_token]) == token
    assert len(context) % 2 == 0 and 0 < len(context) <= 8
    assert vocab.decode(context).endswith(context_ends)
    end = len(context)
    assert any(np.array_equal(ids[i - end:i], context) and ids[i] == start_token for i in range(end, len(ids)))
