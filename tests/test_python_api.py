"""The Python API (docs/python.md): its blocks run as written, a user's own fit trains what `kerasrnn
train` trains, the public names are exactly the documented ones, and the tutorial notebook runs."""
import dataclasses
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn import models
from conftest import REPO, SHAKESPEARE, shakespeare_slice
from kerasrnn.run import load_model

DOC = os.path.join(REPO, "docs", "python.md")
with open(DOC, encoding="utf-8") as f:
    DOC_TEXT = f.read()


def test_every_python_block_of_the_doc_runs_in_order(monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC_TEXT, re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(REPO)
    namespace = {}
    for block in blocks:
        exec(compile(block, DOC, "exec"), namespace)  # noqa: S102 (the doc's own code, as a reader runs it)
    assert namespace["run"].history and namespace["manifest"]["sampling_contract"] == 2


def test_public_names_are_exactly_the_documented_ones():
    result = subprocess.run([sys.executable, "-c", "import kerasrnn; print(sorted(n for n in dir(kerasrnn) "
                             "if not n.startswith('_')))"], capture_output=True, text=True, cwd=REPO, check=True)
    first_column = re.findall(r"^\| (`.*?) \|", DOC_TEXT, re.M)  # the table of names
    documented = sorted({name for cell in first_column for name in re.findall(r"`(\w+)", cell)})
    assert result.stdout.strip() == str(documented)
    for name in documented:
        assert getattr(kerasrnn, name).__doc__, name


def test_own_fit_trains_what_kerasrnn_train_trains(tmp_path):
    """The Keras-level pieces with kerasrnn's settings end with the weights, the state and the start
    state of `kerasrnn train`'s last checkpoint."""
    text = shakespeare_slice(tmp_path, 4000)
    config = kerasrnn.Config(text=text, batch_size=4, seq_length=16, rnn_size=16, num_layers=2, embedding_size=8,
                             learning_rate=1e-2, max_epochs=2, eval_every=20, dropout=0.1)
    # the other families' options and bpe's: an LSTM on characters refuses them
    unread = {name for family in models.families() if family.name != "rnn" for name in family.options} | {"vocab_size"}
    kerasrnn.Run.train(str(tmp_path / "run"), **{k: v for k, v in dataclasses.asdict(config).items() if k not in unread},
                       verbose=0)
    trained = load_model(str(tmp_path / "run" / "last.keras"))

    vocab, train_batches, val_batches = kerasrnn.text_datasets(text, config.batch_size, config.seq_length,
                                                               steps_per_chunk=config.eval_every)
    keras.utils.set_random_seed(config.seed)
    model = kerasrnn.build_model(vocab.size, config.batch_size, config.seq_length, **config.model_args())
    model.compile(optimizer=kerasrnn.make_optimizer(config, train_batches.steps * train_batches.chunks),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_batches, validation_data=val_batches, epochs=config.max_epochs * train_batches.chunks,
              shuffle=False, verbose=0, callbacks=[kerasrnn.TBPTTSchedule(train_batches, vocab)])
    assert train_batches.chunks > 1  # validation and its state save/restore ran inside the passes
    for mine, theirs in zip(model.weights, trained.weights):
        assert mine.path == theirs.path
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine.value), keras.ops.convert_to_numpy(theirs.value),
                                   atol=1e-5, err_msg=mine.path)


def test_the_tutorial_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("KERASRNN_TUTORIAL_FAST", "1")
    monkeypatch.setenv("KERASRNN_TUTORIAL_TEXT", SHAKESPEARE)
    notebook = nbformat.read(os.path.join(REPO, "docs", "tutorial.ipynb"), as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": os.path.join(REPO, "docs")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the loss plot


def test_the_api_raises_kerasrnn_error_naming_the_arguments_it_was_passed(tmp_path):
    """A Python caller gets kerasrnn.KerasrnnError, a ValueError (and a FileNotFoundError for a missing path),
    whose message names the keyword it passed, not the command line's flag; nothing is written."""
    missing = tmp_path / "missing.txt"
    with pytest.raises(kerasrnn.KerasrnnError) as error:
        kerasrnn.Run.train(str(tmp_path / "run"), text=str(missing), verbose=0)
    assert isinstance(error.value, ValueError) and isinstance(error.value, FileNotFoundError)
    assert str(error.value) == f"{missing} does not exist: pass an existing text file with text="
    text = shakespeare_slice(tmp_path, 3000)
    with pytest.raises(kerasrnn.KerasrnnError, match=r"^rnn_size= must be positive \(got 0\)$") as error:
        kerasrnn.Run.train(str(tmp_path / "run"), text=text, rnn_size=0, verbose=0)
    assert not isinstance(error.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match="nowhere does not exist: pass a run directory made by kerasrnn train"):
        kerasrnn.Run.load(str(tmp_path / "nowhere"))
    assert os.listdir(tmp_path) == ["shakespeare.txt"]
