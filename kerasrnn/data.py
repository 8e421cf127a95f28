"""Corpora to token ids, the train/val/test split, and the batch layout of truncated BPTT."""
import glob
import hashlib
import json
import os
import sysconfig

import keras
import numpy as np

from kerasrnn_edge.errors import UserError
from kerasrnn_edge.vocab import Vocab

from .run import atomic_write, write_bytes, write_json

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
CACHE_DIR = os.environ.get("KERASRNN_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "kerasrnn"))


def corpus_path(config):
    """The file to train on: --text, or the embedded/downloaded corpus named by --corpus."""
    if config.text:
        return config.text
    if config.corpus == "shakespeare":
        try:
            return keras.utils.get_file("tinyshakespeare.txt", SHAKESPEARE_URL, file_hash=SHAKESPEARE_SHA256)
        except Exception as e:
            raise UserError(f"could not download tiny-shakespeare ({type(e).__name__}); offline? Fetch "
                            f"{SHAKESPEARE_URL} elsewhere and pass --text PATH") from None
    return python_stdlib_corpus()


def python_stdlib_corpus():
    """The source of Python's standard library (its top-level modules): every machine with Python has
    it, so the default run needs no download (Karpathy trained on the Linux source the same way)."""
    path = os.path.join(CACHE_DIR, "python-stdlib.py.txt")
    if not os.path.exists(path):
        files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
        text = b"".join(open(f, "rb").read() for f in files)
        os.makedirs(CACHE_DIR, exist_ok=True)
        write_bytes(path, text)
    return path


def read_bytes(path):
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory: pass a text file with --text")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist: pass an existing text file with --text") from None
    except PermissionError:
        raise UserError(f"{path} cannot be read (permission denied)") from None
    if not data:
        raise UserError(f"{path} is empty: pass a file with text in it")
    return data


def load_ids(path, tokens):
    """(vocab, ids) of a file. Ids are cached as .npy beside a vocab, keyed by the file's identity,
    and memory-mapped, so a large corpus is decoded once and never held as Python objects."""
    stat = os.stat(path) if os.path.isfile(path) else None
    key = hashlib.sha1(f"{os.path.abspath(path)}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}|{tokens}"
                       .encode()).hexdigest()[:16]
    ids_path, vocab_path = (os.path.join(CACHE_DIR, f"ids-{key}{ext}") for ext in (".npy", ".vocab.json"))
    if os.path.exists(ids_path) and os.path.exists(vocab_path):
        with open(vocab_path, encoding="utf-8") as f:
            return Vocab.from_json(json.load(f)), np.load(ids_path, mmap_mode="r")
    vocab, ids = Vocab.fit(read_bytes(path), tokens)
    os.makedirs(CACHE_DIR, exist_ok=True)
    atomic_write(ids_path, lambda tmp: np.save(tmp, ids))
    write_json(vocab_path, vocab.to_json())
    return vocab, ids


def split(ids, train_frac, val_frac):
    """Contiguous train / validation / test parts (nanoGPT's tiny-shakespeare split at 0.9 / 0.1)."""
    n_train, n_val = int(len(ids) * train_frac), int(len(ids) * val_frac)
    return ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]


START_CONTEXT = 1024  # tokens read before sampling's start token: enough for the state to forget zeros


def start_context(ids, vocab, seq_length, length=START_CONTEXT):
    """(context ids, start token) of the state sampling starts from (model.compute_start).

    The start token ends the training text's last paragraph break (a blank line; else a line break;
    else the text's end); the context is the whole `seq_length` chunks of text before it, at most
    `length` tokens. So a sample begins where a paragraph begins, in a state the model has been in.
    """
    newline = vocab.encode("\n")[0] if vocab.kind == "byte" or "\n" in vocab.chars else None
    tail = np.asarray(ids[-100_000:])
    offset = len(ids) - len(tail)
    end = len(ids) - 1
    if newline is not None:
        breaks = tail == newline
        blank = np.flatnonzero(breaks[1:] & breaks[:-1]) + 1
        candidates = blank if len(blank) else np.flatnonzero(breaks)
        usable = candidates[candidates + offset >= seq_length]
        if len(usable):
            end = offset + int(usable[-1])
    chunks = min(length, end) // seq_length
    return np.asarray(ids[end - chunks * seq_length:end], np.int32), int(ids[end])


class StreamBatches(keras.utils.PyDataset):
    """Batches of B streams x T steps: row i of batch k+1 continues row i of batch k.

    The text is cut into B contiguous streams (as char-rnn and torch-rnn do). One pass over the data
    may be split into several Keras epochs ("chunks") of about `steps_per_chunk` batches, so that
    validation can run every few hundred steps; `TBPTTSchedule` sets `chunk` at each Keras epoch and
    resets the state when a pass begins. `skip` leaves out the first batches of the chunk: a run resumed
    from a checkpoint inside a chunk trains the rest of it. `rows` are the streams this process feeds
    (all; or, training on several processes, its own: distribute.Plan.rows): only their part of the
    memory-mapped `ids` is read.
    """

    def __init__(self, ids, batch_size, seq_length, steps_per_chunk=None, what="training", rows=slice(None)):
        super().__init__()
        per_stream = (len(ids) - 1) // batch_size
        if per_stream < seq_length:
            need = batch_size * seq_length + 1
            hint = "--val-frac" if what == "validation" else "--train-frac"
            raise UserError(f"the {what} text has {len(ids)} tokens but at least batch size {batch_size} x "
                            f"seq length {seq_length} + 1 = {need} are needed: lower --batch-size or "
                            f"--seq-length, or raise {hint}")
        self.seq_length = seq_length
        self.streams = ids[: batch_size * per_stream].reshape(batch_size, per_stream)
        self.inputs = self.streams[rows]
        self.targets = ids[1: batch_size * per_stream + 1].reshape(batch_size, per_stream)[rows]
        self.batches_per_pass = per_stream // seq_length
        self.chunks = max(1, round(self.batches_per_pass / steps_per_chunk)) if steps_per_chunk else 1
        self.steps = self.batches_per_pass // self.chunks
        self.chunk = 0
        self.skip = 0

    @property
    def tokens(self):
        """The streams' tokens in text order: the text, less the few tokens that fill no stream."""
        return self.streams.reshape(-1)

    def __len__(self):
        return self.steps - self.skip

    def __getitem__(self, i):
        k = self.chunk * self.steps + self.skip + i
        window = slice(k * self.seq_length, (k + 1) * self.seq_length)
        return self.inputs[:, window].astype(np.int32), self.targets[:, window].astype(np.int32)
