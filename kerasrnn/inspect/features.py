"""Features of the text, and the cells that track them (the blog's quote and line-length cells).

A feature gives every character one value: the feature as it stands after reading that character,
which is what the state after that step can know. Cells are ranked against yes/no features by AUC (how
well the cell's value separates the two sides; 1 - AUC counts too: a cell may fall instead of rise), and
against counts by Spearman's rank correlation (any monotone relation, not only a linear one).
"""
import numpy as np


def inside_quotes(text):
    """Between a '"' and the next; the opening quote is inside, the closing one outside."""
    inside, values = False, []
    for ch in text:
        if ch == '"':
            inside = not inside
        values.append(inside)
    return values


def bracket_depth(text):
    depth, values = 0, []
    for ch in text:
        depth = max(0, depth + (ch in "([{") - (ch in ")]}"))
        values.append(depth)
    return values


def line_position(text):
    """Characters since the last newline (0 at the newline itself)."""
    position, values = 0, []
    for ch in text:
        position = 0 if ch == "\n" else position + 1
        values.append(position)
    return values


def indentation(text):
    """The leading spaces (a tab counts 4) of the line so far."""
    depth, leading, values = 0, True, []
    for ch in text:
        if ch == "\n":
            depth, leading = 0, True
        elif leading and ch in " \t":
            depth += 4 if ch == "\t" else 1
        else:
            leading = False
        values.append(depth)
    return values


def inside_comment(text):
    """From a '#' outside quotes to the end of its line (Python, shell)."""
    comment, quote, values = False, None, []
    for ch in text:
        if ch == "\n":
            comment, quote = False, None
        elif not comment and ch in "'\"":
            quote = None if quote == ch else quote or ch
        elif ch == "#" and quote is None:
            comment = True
        values.append(comment)
    return values


def word_start(text):
    """A letter that follows a character that is not part of a word."""
    return [ch.isalpha() and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))
            for i, ch in enumerate(text)]


def after_newline(text):
    return [ch == "\n" for ch in text]


# name -> (kind, function of the text)
FEATURES = {
    "inside quotes": ("yes/no", inside_quotes),
    "bracket depth": ("count", bracket_depth),
    "position in the line": ("count", line_position),
    "indentation depth": ("count", indentation),
    "inside a comment": ("yes/no", inside_comment),
    "start of a word": ("yes/no", word_start),
    "after a newline": ("yes/no", after_newline),
}


def ranks(values):
    """Ranks 1..n down each column of `values` [T, N] (or of a vector), ties sharing their average rank
    (constant cells tie everywhere, and must score AUC 0.5 and rho 0). float32: exact below 2**23."""
    values = np.asarray(values)
    if values.ndim == 1:
        return ranks(values[:, None])[:, 0]
    n = len(values)
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    steps = np.arange(n, dtype=np.float32)[:, None]
    new_run = np.ones(ordered.shape, bool)
    new_run[1:] = ordered[1:] != ordered[:-1]
    first = np.maximum.accumulate(np.where(new_run, steps, 0), axis=0)
    run_ends = np.ones(ordered.shape, bool)
    run_ends[:-1] = new_run[1:]
    last = np.minimum.accumulate(np.where(run_ends, steps, n)[::-1], axis=0)[::-1]
    result = np.empty(ordered.shape, np.float32)
    np.put_along_axis(result, order, (first + last) / 2 + 1, axis=0)
    return result


def auc(ranked, labels):
    """The AUC of each cell at telling `labels` [T] (bool) apart, from its ranks `ranked` [T, N]."""
    labels = np.asarray(labels, bool)
    positives, negatives = labels.sum(), (~labels).sum()
    return (ranked[labels].sum(axis=0, dtype=np.float64) - positives * (positives + 1) / 2) / (positives * negatives)


def spearman(ranked, counts):
    """Spearman's rho of each cell with `counts` [T], from the cells' ranks `ranked` [T, N]."""
    b = ranks(np.asarray(counts)).astype(np.float64)
    b -= b.mean()
    covariance = b @ ranked                      # the ranks' mean drops out against a centred b
    n = len(b)
    spread = (ranked.astype(np.float64) ** 2).sum(axis=0) - n * ((n + 1) / 2) ** 2
    denominator = np.sqrt(np.maximum(spread, 0) * (b * b).sum())
    return np.divide(covariance, denominator, out=np.zeros(ranked.shape[1]), where=denominator > 1e-9)


def score(ranked, kind, values):
    """(signed score, strength to rank by) per cell: AUC and |AUC - 0.5|, or rho and |rho|."""
    if kind == "yes/no":
        s = auc(ranked, values)
        return s, np.abs(s - 0.5)
    s = spearman(ranked, values)
    return s, np.abs(s)


def present(kind, values):
    """Whether the text shows the feature at all (both sides of a yes/no one; two values of a count)."""
    values = np.asarray(values)
    return len(np.unique(values)) > 1 if kind == "count" else 0 < values.sum() < len(values)
