"""The n-gram baseline: how well counting the last n - 1 characters predicts the next one.

Interpolated Witten-Bell smoothing (a context's estimate leans on the shorter context in proportion
to how many different characters followed it), over an add-one unigram so that no character gets
probability 0. Counting is vectorised: an n-gram's key is the index of its (n - 1)-gram among the
training text's distinct (n - 1)-grams, times V, plus its last token, so keys stay below N * V.
"""
import numpy as np


class NGram:
    def __init__(self, ids, order, vocab_size):
        """Counts the n-grams of `ids` (the training text) up to `order`."""
        self.order, self.vocab_size = order, vocab_size
        ids = np.asarray(ids, np.int64)
        self.unigram = (np.bincount(ids, minlength=vocab_size) + 1) / (len(ids) + vocab_size)
        self.grams, self.counts, self.context_counts, self.context_types = [None], [None], [None, None], [None, None]
        keys = ids
        for n in range(1, order + 1):
            grams, counts = np.unique(keys, return_counts=True)
            self.grams.append(grams)
            self.counts.append(counts)
            if n > 1:  # per (n - 1)-gram: how often, and after how many different tokens, it is followed
                context = grams // vocab_size
                self.context_counts.append(np.bincount(context, counts, minlength=len(self.grams[n - 1])))
                self.context_types.append(np.bincount(context, minlength=len(self.grams[n - 1])))
            if n < order:  # the (n + 1)-gram ending at t: this n-gram's index (ending at t - 1) * V + ids[t]
                keys = np.searchsorted(grams, keys[:-1]) * vocab_size + ids[n:]

    def losses(self, ids, order=None):
        """Nats of each of ids[1:] given up to `order` - 1 tokens before it (default: the model's order)."""
        ids, order = np.asarray(ids, np.int64), order or self.order
        targets = ids[1:]
        p = self.unigram[targets]
        index = self._indices(ids)
        for n in range(2, order + 1):
            context = index[n - 1][:-1]           # the (n - 1)-gram ending just before each target
            seen, at = context >= 0, np.maximum(context, 0)
            found = _lookup(self.grams[n], at * self.vocab_size + targets)
            count = np.where(seen & (found >= 0), self.counts[n][np.maximum(found, 0)], 0)
            total = np.where(seen, self.context_counts[n][at], 0)
            types = np.where(seen, self.context_types[n][at], 0)
            p = np.where(total > 0, (count + types * p) / np.maximum(total + types, 1), p)
        return -np.log(p)

    def _indices(self, ids):
        """Per order m < `order`: the index of the training m-gram ending at each position of `ids`, or -1."""
        index = [None, _lookup(self.grams[1], ids)]
        for m in range(2, self.order):
            previous = np.concatenate([[-1], index[m - 1][:-1]])
            key = np.maximum(previous, 0) * self.vocab_size + ids
            index.append(np.where(previous >= 0, _lookup(self.grams[m], key), -1))
        return index


def _lookup(sorted_keys, keys):
    """The position of each key in `sorted_keys`, or -1."""
    position = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[position] == keys, position, -1)
