"""The states in the layout LSTMVis (github.com/HendrikStrobelt/LSTMVis) reads: lstm.yml, states.hdf5
(one [T, H] table per layer and kind: `states<l>` the cell state, `output<l>` h; a GRU's or
SimpleRNN's only state is h, so it is both), train.hdf5 (`word_ids` [T]) and words.dict ("token id"
lines; LSTMVis splits them on whitespace, so space, newline and tab are shown as ␣ ↵ ⇥)."""
import json
import os

import numpy as np

SHOWN = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def export(directory, name, tokens, ids, h, c):
    """`tokens`: every id's text; `ids` [T]: the text read; `h`, `c`: per layer, the [T, H] states after
    each of its tokens (`c` empty but for an LSTM)."""
    import h5py

    os.makedirs(directory, exist_ok=True)
    types = []
    with h5py.File(os.path.join(directory, "states.hdf5"), "w") as f:
        for layer, output in enumerate(h, start=1):
            f[f"states{layer}"] = c[layer - 1] if c else output
            f[f"output{layer}"] = output
            types += [f"{{type: state, layer: {layer}, path: states{layer}}}",
                      f"{{type: output, layer: {layer}, path: output{layer}}}"]
    with h5py.File(os.path.join(directory, "train.hdf5"), "w") as f:
        f["word_ids"] = np.asarray(ids, np.int64)
    with open(os.path.join(directory, "words.dict"), "w", encoding="utf-8") as f:
        for i, token in enumerate(tokens):
            shown = "".join(SHOWN.get(ch, ch) for ch in token)
            f.write(f"{shown if shown.strip() else repr(token)} {i}\n")
    with open(os.path.join(directory, "lstm.yml"), "w", encoding="utf-8") as f:
        f.write(f"name: {json.dumps(name)}\ndescription: kerasrnn inspect\n\n"
                "files:\n  states: states.hdf5\n  train: train.hdf5\n  words: words.dict\n\n"
                "word_sequence:\n  file: train\n  path: word_ids\n  dict_file: words\n\n"
                "states:\n  file: states\n  types: [\n    " + ",\n    ".join(types) + "\n  ]\n")
