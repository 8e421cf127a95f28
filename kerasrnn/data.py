"""Token ids to the train/val/test split, the start context of sampling, and the batch layout of
truncated BPTT (the ids come from corpus.load_ids)."""
import keras
import numpy as np

from kerasrnn_edge.errors import UserError, option


def split(ids, train_frac, val_frac):
    """Contiguous train / validation / test parts (nanoGPT's tiny-shakespeare split at 0.9 / 0.1)."""
    n_train, n_val = int(len(ids) * train_frac), int(len(ids) * val_frac)
    return ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]


def stream_batches(ids, batch_size, seq_length, train_frac, val_frac, val_tokens=0, steps_per_chunk=None,
                   rows=slice(None)):
    """(training batches, validation batches) of a text's ids, as `kerasrnn train` makes them: the split,
    validation bounded to its first `val_tokens` (0: all of it; a validation of bounded cost however large
    the corpus), `rows` the streams this process feeds."""
    train_ids, val_ids, _ = split(ids, train_frac, val_frac)
    if val_tokens:
        val_ids = val_ids[:val_tokens]
    return (StreamBatches(train_ids, batch_size, seq_length, steps_per_chunk=steps_per_chunk, rows=rows),
            StreamBatches(val_ids, batch_size, seq_length, what="validation", rows=rows))


START_CONTEXT = 1024  # tokens read before sampling's start token: enough for the state to forget zeros


def start_context(ids, vocab, seq_length, length=START_CONTEXT):
    """(context ids, start token) of the state sampling starts from (model.compute_start).

    The start token ends the training text's last paragraph break (a blank line; else a line break;
    else the text's end); the context is the whole `seq_length` chunks of text before it, at most
    `length` tokens. So a sample begins where a paragraph begins, in a state the model has been in.
    """
    newline = vocab.encode("\n")[0] if vocab.kind != "char" or "\n" in vocab.chars else None  # bpe: a byte piece
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
            hint = option("val_frac" if what == "validation" else "train_frac")
            raise UserError(f"the {what} text has {len(ids)} tokens but at least batch size {batch_size} x "
                            f"seq length {seq_length} + 1 = {need} are needed: lower {option('batch_size')} or "
                            f"{option('seq_length')}, or raise {hint}")
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
