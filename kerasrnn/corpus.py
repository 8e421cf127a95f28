"""Corpora: where a training text comes from (a file, a directory, an archive, a named corpus) and its
preparation into token ids on disk.

A source is one file, or the files of a directory or of a .tar, .tar.gz, .tar.xz or .zip archive (regular
files only: symbolic links are not followed). `include` globs choose among them: a glob without "/" is
matched against the file's name, one with "/" against its path inside the directory or archive (e.g.
`--include '*.c' --include '*.h'`, `--include 'linux-source-6.1/kernel/*'`; `*` crosses "/"); no glob: every
file. The text is those files joined in sorted path order, with SEPARATOR (one line break) between
two files.

Preparation streams, CHUNK bytes at a time, so its memory is bounded whatever the corpus size: a first
pass checks the UTF-8, builds the vocabulary (the code points seen) and counts each file's tokens; a
second writes each file's ids at its place in the sorted order of a .npy (uint8 or uint16,
`Vocab.dtype`), which training memory-maps. Both passes read an archive in its own order, never
seeking back in it. The .npy is cached (`load_ids` says under which key), and checked each time it is
used: a damaged one is prepared again (`cached`).

A bpe vocabulary (kerasrnn/subword.py) is learned first, from the lines of the training part of the text
(its first `train_frac` of bytes), streamed to SentencePiece; then one pass encodes each file, a run of
whole lines at a time (no piece holds a line break, so ids never straddle one), into a temporary file
that the second pass copies into place.
"""
import codecs
import dataclasses
import fnmatch
import functools
import glob
import hashlib
import importlib.util
import itertools
import json
import lzma
import os
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
import zlib
from typing import Callable

import numpy as np

from kerasrnn_edge.errors import MissingPath, UserError, option
from kerasrnn_edge.vocab import Vocab, not_utf8

from . import subword
from .files import atomic_write, write_bytes, write_json

SEPARATOR = "\n"
CHUNK = 1 << 20  # bytes read at a time: peak memory is a small multiple of it
ARCHIVES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".zip")
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
LINUX_SOURCE = "/usr/src/linux-source-6.1.tar.xz"  # Debian's linux-source-6.1 package
UNICODE = 0x110000
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError)


def cache_dir():
    return os.environ.get("KERASRNN_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "kerasrnn"))


def open_file(path):
    """`open(path, "rb")`, with a missing or unreadable file as one line."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise MissingPath(f"{path} does not exist: pass an existing text file with {option('text')}") from None
    except PermissionError:
        raise UserError(f"{path} cannot be read (permission denied)") from None


def read_bytes(path):
    """The bytes of one (small) file, e.g. the text kerasrnn inspect reads."""
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory: pass a text file with {option('text')}")
    with open_file(path) as f:
        data = f.read()
    if not data:
        raise UserError(f"{path} is empty: pass a file with text in it")
    return data


class Source:
    """A file, directory or archive and its include globs; `members()` reads the chosen files."""

    def __init__(self, path, include=()):
        self.path, self.include = str(path), list(include or ())
        if not os.path.exists(self.path):
            open_file(self.path)  # the one-line error for a missing or unreadable path
        self.kind = ("dir" if os.path.isdir(self.path) else
                     "zip" if self.path.endswith(".zip") else
                     "tar" if self.path.endswith(ARCHIVES) else "file")
        if self.kind == "file" and self.include:
            raise UserError(f"{option('include')} chooses files of a directory or archive, and {self.path} is one "
                            f"file: pass a directory or a {', '.join(ARCHIVES)} archive, or leave "
                            f"{option('include')} out")
        self.read = 0  # bytes read so far (of the archive file for a tar): the progress bar's position
        self._buffer = bytearray(CHUNK)

    def __str__(self):
        return self.path + "".join(f" {option('include', g)}" for g in self.include)

    def chosen(self, name):
        return not self.include or any(fnmatch.fnmatchcase(name if "/" in g else name.rsplit("/", 1)[-1], g)
                                       for g in self.include)

    @functools.cached_property
    def _tree(self):
        """(path inside the directory, full path, size) of its chosen regular files, in sorted order (listed
        once per Source)."""
        files = []
        for root, dirs, names in os.walk(self.path, onerror=self._walk_error):
            dirs.sort()
            for name in names:
                full = os.path.join(root, name)
                inside = os.path.relpath(full, self.path).replace(os.sep, "/")
                if not os.path.islink(full) and self.chosen(inside):
                    files.append((inside, full, os.path.getsize(full)))
        return sorted(files)

    def _walk_error(self, error):
        raise UserError(f"{error.filename} cannot be read ({error.strerror})")

    def identity(self):
        """What the cache key hashes (with the token kind): the absolute path, the globs, and the size
        and modification time (ns) of the file, of the archive, or of each chosen file of a directory
        (listed again for each new Source: 1.8 s for the kernel tree's 78,579 files, on a loaded machine)."""
        if self.kind == "dir":
            stats = [(inside, size, os.stat(full).st_mtime_ns) for inside, full, size in self._tree]
        else:
            stat = os.stat(self.path)
            stats = [stat.st_size, stat.st_mtime_ns]
        return [os.path.abspath(self.path), self.include, stats]

    def size(self):
        """The progress bar's total: bytes of the chosen files (of the archive file for a tar)."""
        if self.kind == "dir":
            return sum(size for _, _, size in self._tree)
        if self.kind == "zip":
            with self._archive(zipfile.ZipFile, self.path) as z:
                return sum(i.file_size for i in z.infolist() if not i.is_dir() and self.chosen(i.filename))
        return os.path.getsize(self.path)

    def members(self):
        """(name, chunks) of each chosen file in the order it is stored (sorted, but for a tar archive);
        `chunks` yields its bytes, CHUNK at a time."""
        self.read = 0
        if self.kind == "file":
            yield self.path, self._chunks(open_file(self.path))
        elif self.kind == "dir":
            for inside, full, _ in self._tree:
                yield os.path.join(self.path, inside), self._chunks(open_file(full))
        elif self.kind == "zip":
            with self._archive(zipfile.ZipFile, self.path) as z:
                for info in sorted(z.infolist(), key=lambda i: i.filename):
                    if not info.is_dir() and self.chosen(info.filename):
                        yield f"{self.path}:{info.filename}", self._chunks(z.open(info))
        else:
            with open_file(self.path) as raw, self._archive(tarfile.open, fileobj=_Counted(raw, self),
                                                            mode="r|*") as tar:
                try:
                    for member in tar:  # (a consumer's exceptions do not come in at the yield)
                        name = member.name.removeprefix("./")
                        if member.isfile() and self.chosen(name):
                            yield f"{self.path}:{name}", self._chunks(tar.extractfile(member), counted=False)
                except ARCHIVE_ERRORS as e:
                    raise self._damaged(e) from None

    def _archive(self, opener, *args, **kwargs):
        try:
            return opener(*args, **kwargs)
        except ARCHIVE_ERRORS as e:
            raise UserError(f"{self.path} is not a readable archive ({e}): pass a "
                            f"{', '.join(ARCHIVES)} archive, a directory or a text file") from None

    def _damaged(self, error):
        return UserError(f"{self.path} could not be read to its end ({error}): the archive is damaged")

    def _chunks(self, f, counted=True):
        """Read into one buffer, each chunk copied out at its size: `f.read(CHUNK)` of a small file would
        allocate CHUNK and shrink it, which fragments the heap (memory grew by 300 MB over 55,000 files)."""
        view = memoryview(self._buffer)
        with f:
            while True:
                try:
                    chunk = bytes(view[:f.readinto(view)])
                except ARCHIVE_ERRORS as e:
                    raise self._damaged(e) from None
                if not chunk:
                    return
                if counted:
                    self.read += len(chunk)
                yield chunk


class _Counted:
    """A file whose reads add to the source's progress (a tar archive's compressed bytes)."""

    def __init__(self, raw, source):
        self.raw, self.source = raw, source

    def read(self, n=-1):
        data = self.raw.read(n)
        self.source.read += len(data)
        return data


def source(config):
    """The Source of a Config: --text with its --include globs, or the named corpus --corpus."""
    if config.text:
        return Source(config.text, config.include)
    return NAMED[config.corpus].source()


def load_ids(path_or_source, tokens, vocab=None, vocab_size=1024, train_frac=0.9, seed=0):
    """(vocab, ids) of a text: a path (file, directory or archive) or a Source. A char vocabulary is
    sorted by code point. A bpe one is `vocab` if given (a resumed or fine-tuned run's), else learned
    (`vocab_size` pieces, from the first `train_frac` of the text; `seed` samples its lines). The ids are memory-mapped from a cache in $KERASRNN_CACHE (~/.cache/kerasrnn),
    prepared there on first use. Its key hashes the token kind and `Source.identity`: the absolute path,
    the globs, and the size and modification time (ns) of the file, of the archive, or of every chosen
    file of a directory. So an edited file is prepared again, an unchanged one is not. An entry is the
    .npy of the ids and, written last, its record: the vocabulary and what the .npy holds (`cached`)."""
    src = path_or_source if isinstance(path_or_source, Source) else Source(path_or_source)
    bpe = ([hashlib.sha1(json.dumps(vocab.to_json()).encode()).hexdigest()] if vocab else
           [vocab_size, train_frac, seed]) if tokens == "bpe" else []
    # v4: bpe pieces learned from lines of any length (subword.sentences)
    key = hashlib.sha1(json.dumps(["v4", tokens, *bpe, src.identity()]).encode()).hexdigest()[:16]
    ids_path, record_path = (os.path.join(cache_dir(), f"ids-{key}{ext}") for ext in (".npy", ".json"))
    entry = cached(ids_path, record_path)
    if entry:
        return entry
    if tokens == "bpe":
        vocab, total, fill = prepare_bpe(src, vocab or learn(src, vocab_size, train_frac, seed))
    else:
        vocab, total, fill = prepare(src, tokens)

    def write_npy(tmp):
        np.lib.format.open_memmap(tmp, "w+", vocab.dtype, (total,))  # the header, and the file's size
        with open(tmp, "r+b") as f:
            fill(f, os.path.getsize(tmp) - total * np.dtype(vocab.dtype).itemsize)
    os.makedirs(cache_dir(), exist_ok=True)
    atomic_write(ids_path, write_npy)
    ids = np.load(ids_path, mmap_mode="r")
    write_json(record_path, {"vocab": vocab.to_json(), "dtype": ids.dtype.name, "tokens": total,
                             "bytes": os.path.getsize(ids_path), "crc32": checksum(ids_path, ids.offset)})
    return vocab, ids


def cached(ids_path, record_path):
    """(vocab, memory-mapped ids) of a cache entry that checks out: the .npy has the size its record gives,
    its header the dtype and length, its ids the CRC-32. None if the entry is absent or incomplete; a
    damaged one (a disk error, a crash that left a file's blocks unwritten) is said in one line on stderr,
    and None: it is prepared again."""
    if not (os.path.exists(ids_path) and os.path.exists(record_path)):
        return None
    try:
        with open(record_path, encoding="utf-8") as f:
            record = json.load(f)
        vocab, size = Vocab.from_json(record["vocab"]), os.path.getsize(ids_path)
        if size != record["bytes"]:
            raise ValueError(f"{size:,} bytes, not {record['bytes']:,}")
        ids = np.load(ids_path, mmap_mode="r")
        if (ids.dtype.name, ids.shape) != (record["dtype"], (record["tokens"],)):
            raise ValueError(f"its header says {ids.dtype.name} {ids.shape}, its record {record['dtype']} "
                             f"({record['tokens']},)")
        if checksum(ids_path, ids.offset) != record["crc32"]:
            raise ValueError("its ids differ from their checksum")
    except (OSError, EOFError, ValueError, KeyError, TypeError) as e:
        print(f"kerasrnn: the cached token ids {ids_path} are damaged ({e}): preparing them again",
              file=sys.stderr, flush=True)
        return None
    return vocab, ids


def checksum(path, offset):
    """CRC-32 of a file's bytes from `offset` on, read CHUNK at a time (by plain reads: pages read through
    a memory map would count as the process's memory)."""
    crc = 0
    with open(path, "rb") as f:
        f.seek(offset)
        while chunk := f.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def text(src):
    """The whole text of a Source, its files joined as training joins them (`kerasrnn sample --novel`)."""
    _, _, fill = prepare(src, "byte")  # byte ids are the text's bytes
    with tempfile.TemporaryFile() as joined:  # fill writes with os.pwrite
        fill(joined, 0)
        joined.seek(0)
        return joined.read().decode("utf-8", errors="replace")


def prepare(src, tokens):
    """(vocab, number of tokens, fill(file, offset)): the first pass runs here; `fill` runs the second,
    writing the ids into the file from `offset` on (by plain writes: a memory map's written pages would
    count as the process's memory)."""
    Vocab(tokens, [])  # an unknown kind is an error before any reading
    names, counts = [], []
    seen = _Seen()
    with Progress(f"reading {src}", src) as progress:
        for name, chunks in src.members():
            text = _Text(name) if tokens == "char" else None
            count = 0
            for chunk in chunks:
                progress.update()
                count += seen.add(text, chunk) if text else len(chunk)
            if text:
                seen.add(text, b"", final=True)
            names.append(name)
            counts.append(count)
    total, starts = _layout(src, names, counts, len(SEPARATOR))
    if len(names) > 1:
        seen.add(_Text("SEPARATOR"), SEPARATOR.encode(), final=True)
    vocab = Vocab("byte") if tokens == "byte" else Vocab("char", [chr(c) for c in seen.code_points()])
    ids = _Ids(vocab)
    separator = ids.of(_Text("SEPARATOR"), SEPARATOR.encode(), final=True)

    def fill(f, offset):
        out = _Writer(f, offset, np.dtype(vocab.dtype).itemsize)
        with Progress(f"writing the token ids of {src}", src) as progress:
            for i, (name, chunks) in enumerate(src.members()):
                at, text = starts[i], _Text(name) if tokens == "char" else None
                for chunk in chunks:
                    progress.update()
                    at = out.write(at, ids.of(text, chunk))
                if text:
                    at = out.write(at, ids.of(text, b"", final=True))
                if at != starts[i] + counts[i]:
                    raise UserError(f"{name} changed while it was being prepared: run the command again")
                if at < total:
                    out.write(at, separator)
            out.flush()
    return vocab, total, fill


def _layout(src, names, counts, separator):
    """(total tokens, where each file's ids start) of files joined in sorted path order, `separator`
    tokens between two; `names` and `counts` in the order read."""
    total = sum(counts) + separator * (len(names) - 1)
    if total <= 0:
        raise nothing_in(src, names)
    order = sorted(range(len(names)), key=names.__getitem__)
    starts = np.zeros(len(names), np.int64)
    starts[order] = np.cumsum([0] + [counts[i] + separator for i in order[:-1]])
    return total, starts


def nothing_in(src, names):
    """The error for a Source with no text: no file chosen (by its globs, or none at all), or only empty ones."""
    if not names and src.include:
        return UserError(f"no file of {src.path} matches {' '.join(option('include', g) for g in src.include)}: "
                         "check the globs (a glob without / matches the file name, one with / the path)")
    if not names:
        return UserError(f"{src.path} holds no files: pass a directory or archive with text files in it")
    return UserError(f"{src} is empty: pass a file with text in it")


def learn(src, vocab_size, train_frac, seed):
    """The bpe vocabulary of the first `train_frac` of a Source's bytes (the training part, to a line). Refused
    at once: an empty text, and a vocabulary larger than the training part can give (each piece past the 257
    byte and unknown ones spans characters of it, so there are at most as many as its bytes)."""
    if src.kind == "tar":  # its size is the compressed archive's
        size = sum(len(chunk) for _, chunks in src.members() for chunk in chunks)
    else:
        size = src.size()
    if size == 0:
        raise nothing_in(src, [name for name, _ in src.members()])
    limit = int(size * train_frac)
    if vocab_size > 257 + limit:
        raise UserError(f"{option('vocab_size', vocab_size)} is more pieces than the training part of {src} can give "
                        f"(at most {257 + limit:,}: the 257 byte and unknown pieces and one per byte of its "
                        f"{limit:,}); pass a smaller {option('vocab_size')}")
    return subword.learn(_lines(src, limit), vocab_size, seed)


def _lines(src, limit):
    """The lines of the first `limit` bytes of a Source's files, without their line breaks."""
    done = 0
    with Progress(f"learning the bpe pieces of {src}", src) as progress:
        for name, chunks in src.members():
            text, carry = _Text(name), ""
            for chunk in chunks:
                progress.update()
                lines = (carry + text.text(chunk[:limit - done])).split("\n")
                carry = lines.pop()
                yield from lines
                done += len(chunk)
                if done >= limit:
                    yield carry
                    return
            yield carry + text.text(b"", final=True)


def prepare_bpe(src, vocab):
    """`prepare` for a bpe vocabulary: the first pass encodes each file (SentencePiece's encoder, whole
    lines at a time) into a temporary file; `fill` copies the ids into place in sorted path order."""
    encoder, dtype = subword.Encoder(vocab), np.dtype(vocab.dtype)
    names, counts, encoded = [], [], tempfile.TemporaryFile()
    with Progress(f"encoding {src}", src) as progress:
        for name, chunks in src.members():
            text, carry, count = _Text(name), "", 0
            for chunk in itertools.chain(chunks, [None]):
                progress.update()
                carry += text.text(b"", final=True) if chunk is None else text.text(chunk)
                cut = len(carry) if chunk is None else carry.rfind("\n") + 1
                ids = np.asarray(encoder.encode(carry[:cut]), dtype)
                encoded.write(ids.tobytes())
                carry, count = carry[cut:], count + len(ids)
            names.append(name)
            counts.append(count)
    separator = vocab.encode(SEPARATOR).astype(dtype)
    total, starts = _layout(src, names, counts, len(separator))
    offsets = np.cumsum([0] + counts[:-1]) * dtype.itemsize

    def fill(f, offset):
        out = _Writer(f, offset, dtype.itemsize)
        for start, left, at in zip(offsets, counts, starts):
            encoded.seek(start)
            while left:
                ids = np.frombuffer(encoded.read(min(CHUNK, left) * dtype.itemsize), dtype)
                at, left = out.write(at, ids), left - len(ids)
            if at < total:
                out.write(at, separator)
        out.flush()
    return vocab, total, fill


class _Text:
    """A file's text, chunk by chunk: strict incremental UTF-8, an error being one line with the file and
    the byte offset. A chunk of ASCII (most of source code) is its own code points: no decoding."""

    def __init__(self, name):
        self.name, self.decoder, self.done = name, codecs.getincrementaldecoder("utf-8")(), 0

    def code_points(self, chunk, final=False):
        """The chunk's code points: its bytes (uint8) if ASCII, else uint32."""
        if not self.decoder.getstate()[0] and chunk.isascii():
            self.done += len(chunk)
            return np.frombuffer(chunk, np.uint8)
        return np.frombuffer(self.text(chunk, final).encode("utf-32-le"), np.uint32)

    def text(self, chunk, final=False):
        """The chunk decoded (a sequence it ends inside of is held back for the next)."""
        held = len(self.decoder.getstate()[0])
        try:
            text = self.decoder.decode(chunk, final)
        except UnicodeDecodeError as e:
            raise not_utf8(self.name, self.done - held + e.start) from None
        self.done += len(chunk)
        return text


class _Seen:
    """The code points seen so far (the char vocabulary being built)."""

    def __init__(self):
        self.ascii, self.others = b"", np.zeros(UNICODE, bool)

    def add(self, text, chunk, final=False):
        """Checks and adds a chunk of `text`; returns its number of characters."""
        points = text.code_points(chunk, final)
        if points.dtype == np.uint8:
            new = chunk.translate(None, self.ascii)  # the bytes not seen yet: usually none
            if new:
                self.ascii = bytes(sorted(set(self.ascii) | set(new)))
        else:
            self.others[points] = True
        return len(points)

    def code_points(self):
        others = self.others.copy()
        others[list(self.ascii)] = True
        return np.flatnonzero(others)


class _Ids:
    """Token ids of chunks: the byte values, or a char vocabulary's ids by a lookup table (an ASCII chunk
    by bytes.translate, the fastest table lookup in Python)."""

    def __init__(self, vocab):
        self.vocab = vocab
        if vocab.kind == "char":
            self.table = np.zeros(UNICODE, vocab.dtype)
            self.table[[ord(c) for c in vocab.chars]] = np.arange(vocab.size)
            self.ascii = self.table[:128].astype(np.uint8).tobytes() + bytes(128)  # ASCII sorts first: ids < 128

    def of(self, text, chunk, final=False):
        if self.vocab.kind == "byte":
            return np.frombuffer(chunk, np.uint8)
        points = text.code_points(chunk, final)
        if points.dtype == np.uint8:
            return np.frombuffer(chunk.translate(self.ascii), np.uint8).astype(self.vocab.dtype, copy=False)
        return self.table[points]


class _Writer:
    """Writes id arrays at token positions of a file, joining contiguous ones into large writes."""

    def __init__(self, f, offset, itemsize):
        self.f, self.offset, self.itemsize = f, offset, itemsize
        self.parts, self.start, self.end = [], 0, 0

    def write(self, at, ids):
        """Writes `ids` from token `at`; returns the position after them."""
        if at != self.end or (self.end - self.start) * self.itemsize >= CHUNK:
            self.flush()
            self.start = self.end = at
        self.parts.append(ids)
        self.end += len(ids)
        return self.end

    def flush(self):
        if self.parts:
            os.pwrite(self.f.fileno(), np.concatenate(self.parts), self.offset + self.start * self.itemsize)
        self.parts = []


class Progress:
    """A progress line on stderr: updated in place on a terminal; elsewhere a line every 30 s once the
    work has taken 10 s (so short work stays quiet in logs)."""

    def __init__(self, what, src):
        self.what, self.src, self.total = what, src, max(1, src.size())
        self.start = self.shown = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.drawn = False

    def __enter__(self):
        return self

    def update(self, final=False):
        now = time.monotonic()
        every, after = (0.25, 1) if self.tty else (30, 10)
        if not (final or now - self.shown >= every and now - self.start >= after):
            return
        self.shown = now
        done = min(self.src.read, self.total)
        line = (f"kerasrnn: {self.what}: {done / 1e6:,.0f} of {self.total / 1e6:,.0f} MB "
                f"({100 * done / self.total:.0f}%), {now - self.start:.0f} s")
        print("\r" + line if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        self.drawn = True

    def __exit__(self, *exc):
        if self.drawn and not any(exc):
            self.update(final=True)
        if self.drawn and self.tty:
            print(file=sys.stderr)


@dataclasses.dataclass
class Named:
    """A corpus `--corpus NAME` trains on: `source()` finds (or makes) it, or says in one line how to get it."""
    name: str
    what: str
    origin: str
    source: Callable[[], Source]
    available: Callable[[], bool]


def python_stdlib_corpus():
    """The source of Python's standard library (its top-level modules): every machine with Python has
    it, so the default run needs no download (Karpathy trained on the Linux source the same way)."""
    path = os.path.join(cache_dir(), "python-stdlib.py.txt")
    if not os.path.exists(path):
        files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
        text = b"".join(open(f, "rb").read() for f in files)
        os.makedirs(cache_dir(), exist_ok=True)
        write_bytes(path, text)
    return Source(path)


def shakespeare_path():
    import keras
    try:
        return keras.utils.get_file("tinyshakespeare.txt", SHAKESPEARE_URL, file_hash=SHAKESPEARE_SHA256)
    except Exception as e:
        raise UserError(f"could not download tiny-shakespeare ({type(e).__name__}); offline? Fetch "
                        f"{SHAKESPEARE_URL} elsewhere and pass its path as {option('text')}") from None


def shakespeare_downloaded():
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.exists(os.path.join(home, "datasets", "tinyshakespeare.txt"))


def linux_source_path():
    """Debian's kernel source tarball; $KERASRNN_LINUX_SOURCE points elsewhere (a tarball or a tree)."""
    return os.environ.get("KERASRNN_LINUX_SOURCE", LINUX_SOURCE)


def linux_corpus():
    path = linux_source_path()
    if not os.path.exists(path):
        raise MissingPath(f"the linux corpus reads {path}, which is not here: apt-get install linux-source-6.1 "
                          f"(Debian/Ubuntu), or pass a kernel tree or tarball as {option('text')} with "
                          f"{option('include', '*.c')} {option('include', '*.h')}")
    return Source(path, ["*.c", "*.h"])


NAMES_FILES = ("dist.male.first", "dist.female.first")


def names_dir():
    spec = importlib.util.find_spec("names")
    return spec and spec.origin and os.path.dirname(spec.origin)


def names_corpus():
    """The first names of the names package's census lists (1990 US census: 1,219 male, 4,275 female),
    one a line, capitalized ("Mary"), each once, in the order of their names' SHA-256: a shuffle every
    machine reproduces. (In the lists' order, by frequency with ties alphabetical, a stateful model learns
    the alphabetical runs of the rare names, and its samples walk through the alphabet.)"""
    directory = names_dir()
    if not directory or not all(os.path.exists(os.path.join(directory, f)) for f in NAMES_FILES):
        raise UserError("the names corpus comes from the names package: pip install names "
                        "(or pip install \"kerasrnn[corpora]\")")
    path = os.path.join(cache_dir(), "census-names.txt")
    if not os.path.exists(path):
        census = set()
        for file in NAMES_FILES:
            with open(os.path.join(directory, file), encoding="ascii") as f:
                census |= {line.split()[0].capitalize() for line in f if line.strip()}
        ordered = sorted(census, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
        os.makedirs(cache_dir(), exist_ok=True)
        write_bytes(path, "".join(n + "\n" for n in ordered).encode())
    return Source(path)


NAMED = {n.name: n for n in [
    Named("python-stdlib", "Python source: the standard library's top-level modules (about 5 MB)",
          f"from this Python's {sysconfig.get_paths()['stdlib']}", python_stdlib_corpus, lambda: True),
    Named("shakespeare", "tiny-shakespeare: Shakespeare's plays, 1.1 MB (char-rnn's data set)",
          f"downloaded once from {SHAKESPEARE_URL}", lambda: Source(shakespeare_path()), shakespeare_downloaded),
    Named("linux", "C: the *.c and *.h files of Linux 6.1 (55,000 files, 1.2 GB)",
          f"from {linux_source_path()} (apt-get install linux-source-6.1)", linux_corpus,
          lambda: os.path.exists(linux_source_path())),
    Named("names", "first names, one a line (5,163 of them, 36 kB): the char-rnn blog's baby names run",
          "from the names package's census lists (pip install names)", names_corpus, lambda: bool(names_dir())),
]}


def list_corpora():
    """Lines for `kerasrnn corpus list`."""
    for named in NAMED.values():
        here = "here" if named.available() else "not here"
        yield f"{named.name:14} {named.what}\n{'':14} {named.origin}; {here}"


def get_corpus(name, out=None):
    """`kerasrnn corpus get`: writes the corpus text to `out`, or says where it is."""
    if name not in NAMED:
        raise UserError(f"unknown corpus {name!r}: use one of {', '.join(NAMED)}")
    src = NAMED[name].source()
    if out is None:
        if src.kind == "file":
            return src.path
        return f"{src} (pass --out FILE to write its text)"
    _, _, fill = prepare(src, "byte")  # byte ids are the text's bytes

    def write_text(tmp):
        with open(tmp, "wb") as f:
            fill(f, 0)
    atomic_write(out, write_text)
    return out
