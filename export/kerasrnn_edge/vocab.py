"""The vocabulary: characters (Unicode code points), bytes or BPE subword pieces, to ids and back.

One implementation shared by training, the Keras sampler, the export stage and the edge sampler.
Needs only numpy: the BPE encoder is export/SPEC.md's ("Vocabulary", `bpe`), written out here
(kerasrnn/subword.py learns the pieces with SentencePiece, whose encoder gives the same ids).
"""
import codecs
import heapq

import numpy as np

from .errors import UserError, option

KINDS = ("char", "byte", "bpe")


class Vocab:
    """`kind` is "char" (ids index `chars`, in its order), "byte" (ids are byte values) or "bpe" (ids
    index `pieces`: a string is a text piece, an int 0-255 a byte piece, None the unknown piece).

    A vocabulary fitted to a text lists its characters sorted by code point; a vocabulary grown for
    fine-tuning (`grown`) keeps the old run's list and appends the new characters, so `chars` may be
    in any order (each character once).
    """

    def __init__(self, kind, chars=None, pieces=None):
        if kind not in KINDS:
            raise UserError(f"unknown token kind {kind!r}: use one of {', '.join(KINDS)}")
        self.kind, self.chars, self.pieces = kind, None, None
        if kind == "bpe":
            self._init_pieces(list(pieces or []))
        elif kind == "char":
            self.chars = list(chars)
            self._index = {c: i for i, c in enumerate(self.chars)}
            if len(self._index) != len(self.chars):
                raise UserError("the vocabulary is malformed (a character is listed twice): re-export or retrain")
            # code points sorted, and the id of each, for encoding a corpus with one searchsorted
            code_points = np.array([ord(c) for c in self.chars], dtype=np.uint32)
            self._by_code_point = np.argsort(code_points, kind="stable")
            self._sorted_code_points = code_points[self._by_code_point]

    def _init_pieces(self, pieces):
        texts = [p for p in pieces if isinstance(p, str)]
        bytes_ = [p for p in pieces if isinstance(p, int) and not isinstance(p, bool)]
        if (len(set(texts)) != len(texts) or sorted(bytes_) != list(range(256)) or "" in texts
                or any("\n" in p for p in texts) or len(texts) + 256 + pieces.count(None) != len(pieces)):
            raise UserError("the vocabulary is malformed (its pieces are not 256 byte pieces and distinct "
                            "non-empty text pieces without a line break): re-export or retrain")
        self.pieces = pieces
        self._index = {p: i for i, p in enumerate(pieces) if isinstance(p, str)}
        self._byte_ids = [0] * 256
        for i, p in enumerate(pieces):
            if isinstance(p, int):
                self._byte_ids[p] = i
        self._bytes = [p.encode("utf-8") if isinstance(p, str) else b"" if p is None else bytes((p,))
                       for p in pieces]

    @property
    def size(self):
        return len(self.chars) if self.kind == "char" else len(self.pieces) if self.kind == "bpe" else 256

    def piece_bytes(self, i):
        """The bytes token `i` stands for (a bpe or byte vocabulary)."""
        return self._bytes[i] if self.kind == "bpe" else bytes((i,))

    def characters(self, ids):
        """How many characters the ids of a text decode to: one an id for a char vocabulary; else the UTF-8
        bytes that start a character (chunk by chunk for a memory map)."""
        if self.kind == "char":
            return len(ids)
        counts = np.array([sum(1 for b in self.piece_bytes(i) if not 0x80 <= b < 0xC0) for i in range(self.size)],
                          np.int64)
        return sum(int(counts[np.asarray(ids[i:i + (1 << 24)])].sum()) for i in range(0, len(ids), 1 << 24))

    @property
    def dtype(self):
        return np.uint8 if self.size <= 256 else np.uint16 if self.size <= 65536 else np.uint32

    @classmethod
    def fit(cls, data: bytes, kind):
        """Builds the vocabulary of `data` and returns it with the ids of `data`."""
        if kind == "byte":
            return cls("byte"), np.frombuffer(data, dtype=np.uint8)
        if kind == "bpe":
            raise UserError("a bpe vocabulary is learned from a corpus: kerasrnn.subword.learn")
        code_points = np.frombuffer(decode_utf8(data).encode("utf-32-le"), dtype=np.uint32)
        unique, ids = np.unique(code_points, return_inverse=True)
        vocab = cls("char", [chr(c) for c in unique])
        return vocab, ids.astype(vocab.dtype)

    def encode_corpus(self, data: bytes):
        """Ids of `data` under this (already fitted) vocabulary; characters outside it are an error."""
        if self.kind == "byte":
            return np.frombuffer(data, dtype=np.uint8)
        if self.kind == "bpe":
            return self.encode(decode_utf8(data)).astype(self.dtype)
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
        if self.kind == "bpe" and self != other:
            raise UserError("the text was tokenized with other bpe pieces: encode it with this vocabulary")
        return sorted(set(other.chars) - self._index.keys()) if self.kind == "char" else []

    def grown(self, other):
        """(vocabulary, new characters): this vocabulary with the characters of `other` it lacks appended,
        by code point. Old ids keep their meaning, so a model trained on this one can be grown to it.
        Byte and bpe vocabularies never grow."""
        new = self.missing(other)
        return (Vocab("char", self.chars + new) if new else self), new

    def recode(self, ids, other):
        """`ids` under vocabulary `other` as ids under this one, which must hold all of `other`'s characters.
        Vectorised through a lookup table; `ids` itself (a memory map stays one) when the ids agree."""
        missing = self.missing(other)
        if missing:
            raise UserError(f"the text has characters outside the vocabulary: {_show(missing)}")
        if self.kind != "char":
            return ids
        table = np.array([self._index[c] for c in other.chars], dtype=self.dtype)
        if np.array_equal(table, np.arange(len(table))):
            return ids
        return table[ids]

    def encode(self, text: str):
        """Ids of `text` (a prime, a prompt). Characters outside the vocabulary are an error listing them."""
        if self.kind == "byte":
            return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)
        if self.kind == "bpe":
            return np.array(self._bpe(text), dtype=np.int32)
        unknown = sorted({c for c in text if c not in self._index})
        if unknown:
            raise UserError(f"the prime has characters outside the vocabulary: {_show(unknown)}; "
                            f"remove them, or train in byte mode ({option('tokens', 'byte')})")
        return np.array([self._index[c] for c in text], dtype=np.int32)

    def _bpe(self, text):
        """SPEC.md's BPE encoding: start from the characters; while some adjacent pair's concatenation is
        a text piece, merge the pair whose piece has the smallest id (the same piece at several places:
        the leftmost); then each symbol is its piece, or the byte pieces of its UTF-8 bytes. A heap of
        candidate pairs, checked when taken (a pair whose symbols merged since is stale)."""
        symbols = list(text)
        after = list(range(1, len(symbols) + 1))
        before = list(range(-1, len(symbols) - 1))
        heap = []

        def candidate(left, right):
            if left >= 0 and right < len(symbols):
                piece = self._index.get(symbols[left] + symbols[right])
                if piece is not None:
                    heapq.heappush(heap, (piece, left, right, len(symbols[left]) + len(symbols[right])))
        for i in range(len(symbols) - 1):
            candidate(i, i + 1)
        while heap:
            _, left, right, length = heapq.heappop(heap)
            if not symbols[left] or not symbols[right] or len(symbols[left]) + len(symbols[right]) != length:
                continue
            symbols[left] += symbols[right]
            symbols[right] = ""
            after[left] = after[right]
            if after[left] < len(symbols):
                before[after[left]] = left
            candidate(before[left], left)
            candidate(left, after[left])
        ids = []
        for symbol in symbols:
            if symbol:
                i = self._index.get(symbol)
                ids.extend([i] if i is not None else [self._byte_ids[b] for b in symbol.encode("utf-8")])
        return ids

    def decoder(self):
        """A function id -> text for streaming: in byte and bpe mode it holds back partial UTF-8 sequences."""
        if self.kind == "char":
            return self.chars.__getitem__
        incremental = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda i: incremental.decode(self.piece_bytes(i))

    def decode(self, ids):
        if self.kind == "char":
            return "".join(self.chars[i] for i in ids)
        return b"".join(self.piece_bytes(int(i)) for i in ids).decode("utf-8", errors="replace")

    def to_json(self):
        extra = {"chars": self.chars} if self.kind == "char" else {"pieces": self.pieces} if self.kind == "bpe" else {}
        return {"kind": self.kind, "size": self.size, **extra}

    @classmethod
    def from_json(cls, obj):
        try:
            vocab = cls(obj["kind"], obj.get("chars"), obj.get("pieces"))
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
