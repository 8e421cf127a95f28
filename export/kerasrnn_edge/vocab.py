"""The vocabulary: characters (Unicode code points) or bytes, to ids and back.

One implementation shared by training, the Keras sampler, the export stage and the edge sampler.
Needs only numpy.
"""
import codecs

import numpy as np

from .errors import UserError, option

KINDS = ("char", "byte")


class Vocab:
    """`kind` is "char" (ids index `chars`, in its order) or "byte" (ids are byte values).

    A vocabulary fitted to a text lists its characters sorted by code point; a vocabulary grown for
    fine-tuning (`grown`) keeps the old run's list and appends the new characters, so `chars` may be
    in any order (each character once).
    """

    def __init__(self, kind, chars=None):
        if kind not in KINDS:
            raise UserError(f"unknown token kind {kind!r}: use one of {', '.join(KINDS)}")
        self.kind = kind
        if kind == "char":
            self.chars = list(chars)
            self._index = {c: i for i, c in enumerate(self.chars)}
            if len(self._index) != len(self.chars):
                raise UserError("the vocabulary is malformed (a character is listed twice): re-export or retrain")
            # code points sorted, and the id of each, for encoding a corpus with one searchsorted
            code_points = np.array([ord(c) for c in self.chars], dtype=np.uint32)
            self._by_code_point = np.argsort(code_points, kind="stable")
            self._sorted_code_points = code_points[self._by_code_point]
        else:
            self.chars = None

    @property
    def size(self):
        return len(self.chars) if self.kind == "char" else 256

    @property
    def dtype(self):
        return np.uint8 if self.size <= 256 else np.uint16 if self.size <= 65536 else np.uint32

    @classmethod
    def fit(cls, data: bytes, kind):
        """Builds the vocabulary of `data` and returns it with the ids of `data`."""
        if kind == "byte":
            return cls("byte"), np.frombuffer(data, dtype=np.uint8)
        code_points = np.frombuffer(decode_utf8(data).encode("utf-32-le"), dtype=np.uint32)
        unique, ids = np.unique(code_points, return_inverse=True)
        vocab = cls("char", [chr(c) for c in unique])
        return vocab, ids.astype(vocab.dtype)

    def encode_corpus(self, data: bytes):
        """Ids of `data` under this (already fitted) vocabulary; characters outside it are an error."""
        if self.kind == "byte":
            return np.frombuffer(data, dtype=np.uint8)
        code_points = np.frombuffer(decode_utf8(data).encode("utf-32-le"), dtype=np.uint32)
        position = np.minimum(np.searchsorted(self._sorted_code_points, code_points), self.size - 1)
        unknown = np.unique(code_points[self._sorted_code_points[position] != code_points])
        if unknown.size:
            raise UserError(f"{unknown.size} characters are not in the vocabulary: {_show(chr(c) for c in unknown)}")
        return self._by_code_point[position].astype(self.dtype)

    def missing(self, other):
        """The characters of vocabulary `other` that this one lacks, by code point ([] for two byte vocabularies)."""
        if self.kind != other.kind:
            raise UserError(f"a {other.kind} vocabulary cannot be expressed in a {self.kind} one: "
                            f"use {option('tokens', self.kind)}")
        return [] if self.kind == "byte" else sorted(set(other.chars) - self._index.keys())

    def grown(self, other):
        """(vocabulary, new characters): this vocabulary with the characters of `other` it lacks appended,
        by code point. Old ids keep their meaning, so a model trained on this one can be grown to it.
        Byte vocabularies never grow."""
        new = self.missing(other)
        return (Vocab("char", self.chars + new) if new else self), new

    def recode(self, ids, other):
        """`ids` under vocabulary `other` as ids under this one, which must hold all of `other`'s characters.
        Vectorised through a lookup table; `ids` itself (a memory map stays one) when the ids agree."""
        missing = self.missing(other)
        if missing:
            raise UserError(f"the text has characters outside the vocabulary: {_show(missing)}")
        if self.kind == "byte":
            return ids
        table = np.array([self._index[c] for c in other.chars], dtype=self.dtype)
        if np.array_equal(table, np.arange(len(table))):
            return ids
        return table[ids]

    def encode(self, text: str):
        """Ids of `text` (a prime, a prompt). Characters outside the vocabulary are an error listing them."""
        if self.kind == "byte":
            return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)
        unknown = sorted({c for c in text if c not in self._index})
        if unknown:
            raise UserError(f"the prime has characters outside the vocabulary: {_show(unknown)}; "
                            f"remove them, or train in byte mode ({option('tokens', 'byte')})")
        return np.array([self._index[c] for c in text], dtype=np.int32)

    def decoder(self):
        """A function id -> text for streaming: in byte mode it holds back partial UTF-8 sequences."""
        if self.kind == "char":
            return self.chars.__getitem__
        incremental = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda i: incremental.decode(bytes((i,)))

    def decode(self, ids):
        if self.kind == "char":
            return "".join(self.chars[i] for i in ids)
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def to_json(self):
        return {"kind": self.kind, "size": self.size, **({"chars": self.chars} if self.kind == "char" else {})}

    @classmethod
    def from_json(cls, obj):
        try:
            vocab = cls(obj["kind"], obj.get("chars"))
        except (KeyError, TypeError) as e:
            raise UserError(f"the vocabulary is malformed ({e!r}): re-export or retrain the model") from None
        if obj.get("size", vocab.size) != vocab.size:
            raise UserError("the vocabulary is malformed (size does not match its characters)")
        return vocab

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.to_json() == other.to_json()


def decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise not_utf8("the file", e.start) from None


def not_utf8(name, offset):
    return UserError(f"{name} is not valid UTF-8 (byte offset {offset}): "
                     f"train in byte mode with {option('tokens', 'byte')}, or convert it to UTF-8")


def _show(chars):
    chars = list(chars)
    shown = " ".join(repr(c) for c in chars[:20])
    return shown + (f" … ({len(chars)} in all)" if len(chars) > 20 else "")
