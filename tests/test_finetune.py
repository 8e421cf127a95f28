"""Fine-tuning into a text with characters the trained run never saw (kerasrnn/finetune.py): the grown
vocabulary, the old model's logits kept exactly, training, exact resume, and the same text from the Keras
sampler and the exported bundle; frozen layers (--freeze) and replayed batches of the trained run's text
(--replay)."""
import functools
import io
import math
import os

import keras
import numpy as np
import pytest

from conftest import shakespeare_slice
from kerasrnn.callbacks import TBPTTSchedule
from kerasrnn.config import Config
from kerasrnn.corpus import load_ids
from kerasrnn.data import StreamBatches, split
from kerasrnn.finetune import Replay, ReplayBatches, base_batches, copy_grown, load_source
from kerasrnn.inspect.main import inspect_run
from kerasrnn.models import family
from kerasrnn.models.language_model import core, get_states, reset_states
from kerasrnn.models.recurrent import build_model
from kerasrnn.optim import optimizer_slots
from kerasrnn.run import load_config, load_model, load_vocab
from kerasrnn.sample import sample
from kerasrnn.train import train
from kerasrnn_edge import cli
from kerasrnn_edge.errors import UserError
from kerasrnn_edge.manifest import read_manifest
from kerasrnn_edge.vocab import Vocab
from kerasrnn.export import export_bundle
from test_training import REGULARIZED, tiny_config

NEW = ["ß", "é", "→"]  # by code point: U+00DF, U+00E9, U+2192


# --- the vocabulary ---

def test_grown_vocabulary_keeps_old_ids_and_appends_the_new_characters_by_code_point():
    old, _ = Vocab.fit(b"hello world", "char")
    text = "h\u00e9llo \u2192 w\u00f6rld \u00df"
    text_vocab, text_ids = Vocab.fit(text.encode(), "char")
    grown, new = old.grown(text_vocab)
    assert new == ["\u00df", "\u00e9", "\u00f6", "\u2192"] and grown.chars == old.chars + new
    ids = grown.recode(text_ids, text_vocab)
    assert grown.decode(ids) == text
    np.testing.assert_array_equal(grown.encode_corpus(text.encode()), ids)  # the unsorted list, searched
    np.testing.assert_array_equal(grown.encode(text), ids)
    assert Vocab.from_json(grown.to_json()) == grown
    again, none = grown.grown(text_vocab)
    assert again is grown and none == [] and grown.recode(ids, grown) is ids  # nothing to grow or remap
    with pytest.raises(UserError, match="outside the vocabulary: 'ß' 'é' 'ö' '→'"):
        old.recode(text_ids, text_vocab)


def test_unsorted_vocabulary_encodes_and_decodes_by_value():
    vocab = Vocab("char", "c\nab")
    np.testing.assert_array_equal(vocab.encode_corpus(b"abc\nab"), [2, 3, 0, 1, 2, 3])
    assert vocab.decode([2, 3, 0, 1]) == "abc\n"
    with pytest.raises(UserError, match="not in the vocabulary: 'd'"):
        vocab.encode_corpus(b"abd")
    with pytest.raises(UserError, match="listed twice"):
        Vocab("char", "aba")


def test_byte_vocabularies_never_grow_and_kinds_do_not_mix():
    byte, char = Vocab("byte"), Vocab.fit(b"abc", "char")[0]
    assert byte.grown(byte) == (byte, [])
    with pytest.raises(UserError, match="use tokens='byte'"):
        byte.grown(char)
    with pytest.raises(UserError, match="use tokens='char'"):
        char.grown(byte)


# --- training ---

def with_new_characters(tmp_path, name, extra=""):
    """The 3,000 characters of tiny-shakespeare after the trained run's, less those the trained run never
    saw, with 'ß', 'é' and '→' (and `extra`) inserted."""
    with open(shakespeare_slice(tmp_path, 3000), encoding="utf-8") as f:
        known = set(f.read())
    with open(shakespeare_slice(tmp_path, 3000, name, start=3000), encoding="utf-8") as f:
        text = "".join(c for c in f.read() if c in known)
    text = "".join(text[i:i + 150] + NEW[i // 150 % 3] for i in range(0, len(text), 150)) + extra
    path = os.path.join(tmp_path, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The trained run (3,000 characters of Shakespeare), the new text, and a run fine-tuned on it for two epochs."""
    tmp = tmp_path_factory.mktemp("finetune")
    trained, finetuned = str(tmp / "trained"), str(tmp / "finetuned")
    train(tiny_config(shakespeare_slice(tmp, 3000), max_epochs=1), trained, verbose=0)
    text = with_new_characters(tmp, "new.txt")
    train(tiny_config(text, init_from=trained, max_epochs=2, **REGULARIZED), finetuned, verbose=0)
    return dict(tmp=tmp, trained=trained, text=text, finetuned=finetuned)


def test_the_grown_model_gives_the_old_logits_before_the_first_step(runs, capsys):
    config = tiny_config(runs["text"], init_from=runs["trained"])
    source, vocab = load_source(config, load_ids(runs["text"], "char")[0])
    assert capsys.readouterr().out == "kerasrnn: the vocabulary grows by 3 characters: 'ß' 'é' '→'\n"
    old = load_vocab(runs["trained"])
    assert vocab.chars == old.chars + NEW
    model = build_model(vocab.size, config.batch_size, config.seq_length, **config.model_args())
    copy_grown(source, model)
    reset_states(source)
    with open(shakespeare_slice(runs["tmp"], 2000, "held-out.txt", start=50_000), encoding="utf-8") as f:
        text = "".join(c for c in f.read() if c in old.chars)
    context = old.encode(text[:4 * 128]).reshape(config.batch_size, 128)  # four streams of old characters
    bias = keras.ops.convert_to_numpy(source.get_layer("logits").bias.value)
    for i in range(0, 128, config.seq_length):
        chunk = context[:, i:i + config.seq_length]
        expected, got = source.predict_on_batch(chunk), model.predict_on_batch(chunk)
        np.testing.assert_allclose(got[..., :old.size], expected, atol=1e-5)
        np.testing.assert_array_equal(got[..., old.size:], bias.min())  # zero kernel columns
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(got))
    assert 0 < probabilities[..., old.size:].max() < 1 / old.size  # low, not vanishing


def test_fine_tuning_trains_and_resumes_as_an_uninterrupted_run(runs):
    grown = load_vocab(runs["finetuned"])
    assert grown.chars == load_vocab(runs["trained"]).chars + NEW
    trained = load_model(os.path.join(runs["finetuned"], "last.keras"))
    new_columns = keras.ops.convert_to_numpy(trained.get_layer("logits").kernel.value)[:, -len(NEW):]
    assert np.abs(new_columns).min() > 0  # the new characters were learned

    resumed = str(runs["tmp"] / "resumed")
    train(tiny_config(runs["text"], init_from=runs["trained"], max_epochs=1, **REGULARIZED), resumed, verbose=0)
    records = train(tiny_config(runs["text"], init_from=runs["trained"], max_epochs=2, **REGULARIZED), resumed,
                    resume=True, verbose=0)
    assert records["last"]["keras_epoch"] == 1
    a, b = trained, load_model(os.path.join(resumed, "last.keras"))
    assert int(a.optimizer.iterations.value) == int(b.optimizer.iterations.value) > 0
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(wa.value), keras.ops.convert_to_numpy(wb.value),
                                   atol=1e-5, err_msg=wa.path)


def test_resume_on_a_text_with_characters_outside_the_saved_vocabulary_is_one_line(runs):
    text = with_new_characters(runs["tmp"], "more.txt", extra="€")
    with pytest.raises(UserError, match=r"^cannot resume .*: the text has characters outside the vocabulary: '€' "
                                        r"\(its vocab.json\); .* init_from="):
        train(tiny_config(text, max_epochs=3, **REGULARIZED), runs["finetuned"], resume=True, verbose=0)


@pytest.mark.parametrize("change, message", [
    (dict(rnn_size=32), "rnn_size 16 -> 32 differ from its model"),
    (dict(cell="gru", num_layers=1), "cell lstm -> gru, num_layers 2 -> 1 differ from its model"),
    (dict(tokens="byte"), "it was trained on char tokens, this run reads byte tokens; pass tokens='char'")])
def test_fine_tuning_another_shape_or_token_kind_is_one_line(runs, change, message):
    with pytest.raises(UserError, match=f"^cannot fine-tune from {runs['trained']}: {message}"):
        train(tiny_config(runs["text"], init_from=runs["trained"], **change), str(runs["tmp"] / "refused"), verbose=0)


def test_the_fine_tuned_run_samples_the_same_text_from_keras_and_its_bundle(runs, capsys):
    bundle = str(runs["tmp"] / "bundle")
    export_bundle(runs["finetuned"], bundle)
    assert read_manifest(bundle).vocab == load_vocab(runs["finetuned"])  # the grown list
    keras_out = io.StringIO()
    sample(runs["finetuned"], prime="ROMEO→é", length=300, temperature=0.9, seed=7, out=keras_out)
    assert any(c in keras_out.getvalue()[len("ROMEO→é"):] for c in NEW)  # the new characters are sampled
    for runtime in ["ai-edge-litert", "onnxruntime"]:
        assert cli.main(["sample", bundle, "--prime", "ROMEO→é", "--length", "300", "--temperature", "0.9",
                         "--seed", "7", "--runtime", runtime]) == 0
        assert capsys.readouterr().out == keras_out.getvalue()


def test_inspect_reads_the_fine_tuned_runs_text(runs):
    """The run's text is read through its grown vocabulary (its own sorted vocabulary differs)."""
    out = str(runs["tmp"] / "report.html")
    inspect_run(runs["finetuned"], chars=200, out=out)
    assert os.path.getsize(out) > 0


# --- the options: frozen layers, replayed batches ---

def assert_same_weights(a, b, atol=1e-6):
    assert int(a.optimizer.iterations.value) == int(b.optimizer.iterations.value) > 0
    assert len(a.optimizer.variables) == len(b.optimizer.variables)
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(wa.value), keras.ops.convert_to_numpy(wb.value),
                                   atol=atol, err_msg=wa.path)


def test_frozen_layers_stay_bit_identical_through_training_and_resume(runs):
    """--freeze embedding,0: the embedding and the first recurrent layer keep the weights fine-tuning starts
    from (the grown ones), bit for bit, in best.keras (weight averaging on) and last.keras, straight and
    resumed; the other layers train, and the checkpoints load with the same layers frozen. No dropout, so
    that torch trains the stack in its fused kernel, which takes every layer's weights."""
    config = functools.partial(tiny_config, runs["text"], init_from=runs["trained"], freeze="embedding,0", ema=0.9)
    straight, resumed = str(runs["tmp"] / "frozen"), str(runs["tmp"] / "frozen-resumed")
    train(config(max_epochs=2), straight, verbose=0)
    train(config(max_epochs=1), resumed, verbose=0)
    train(config(max_epochs=2), resumed, resume=True, verbose=0)

    start = build_model(load_vocab(straight).size, 4, 16, **config().model_args())
    copy_grown(load_model(os.path.join(runs["trained"], "best.keras"), compile=False), start)
    initial = {w.path: keras.ops.convert_to_numpy(w.value) for w in start.weights}
    for run_dir in (straight, resumed):
        for which in ("best", "last"):
            model = load_model(os.path.join(run_dir, f"{which}.keras"))
            embedding, (first, second) = model.get_layer("embedding"), core(model).rnns
            assert (embedding.trainable, first.trainable, second.trainable) == (False, False, True)
            frozen, trained = embedding.weights + first.weights, second.weights + model.get_layer("logits").weights
            for w in frozen:
                np.testing.assert_array_equal(keras.ops.convert_to_numpy(w.value), initial[w.path], err_msg=w.path)
            for w in trained:
                assert not np.allclose(keras.ops.convert_to_numpy(w.value), initial[w.path]), w.path
            assert all(slot is not None for slot in optimizer_slots(model.optimizer, trained, "momentum"))
            assert optimizer_slots(model.optimizer, frozen, "momentum") == [None] * len(frozen)  # none made
    a, b = (load_model(os.path.join(run_dir, "last.keras")) for run_dir in (straight, resumed))
    assert_same_weights(a, b)
    out = io.StringIO()
    sample(straight, prime="ROMEO", length=50, seed=1, out=out)  # the batch-1 sampler copies the frozen weights too
    assert len(out.getvalue()) > len("ROMEO")


def new_text_batches(runs):
    """(the fine-tuned run's vocabulary, the training batches of the new text under it)."""
    vocab = load_vocab(runs["finetuned"])
    text_vocab, ids = load_ids(runs["text"], "char")
    return vocab, StreamBatches(split(vocab.recode(ids, text_vocab), 0.9, 0.1)[0], 4, 16)


def test_replay_batches_interleave_the_stated_fraction_of_the_trained_runs_text(runs):
    """Step j of an epoch is a replay batch when floor((j + 1) f) > floor(j f); the replay batches are the
    trained run's training text window after window, across epochs; the new text's batches all come, in
    order, between them."""
    config = tiny_config(runs["text"], init_from=runs["trained"], replay=0.3)
    vocab, text = new_text_batches(runs)
    base = base_batches(config, vocab, slice(None))
    batches = ReplayBatches(text, base, 0.3)
    with open(load_config(runs["trained"]).text, encoding="utf-8") as f:
        trained_text = f.read()
    replayed = []
    for epoch in range(2):
        batches.epoch = epoch
        kinds = []
        for j in range(len(batches)):
            x, y = batches[j]
            if any(np.array_equal(x, base[k][0]) for k in range(base.steps)):
                kinds.append("replay")
                replayed.append(next(k for k in range(base.steps) if np.array_equal(x, base[k][0])))
                assert vocab.decode(x[0]) in trained_text
            else:
                kinds.append([i for i in range(text.steps) if np.array_equal(x, text[i][0])])
        assert kinds.count("replay") == math.floor(len(batches) * 0.3)
        assert [j for j, kind in enumerate(kinds) if kind == "replay"] == [
            j for j in range(len(batches)) if math.floor((j + 1) * 0.3) > math.floor(j * 0.3)]
        assert [kind for kind in kinds if kind != "replay"] == [[i] for i in range(text.steps)]
    assert replayed == list(range(len(replayed)))  # window after window, epoch after epoch


def test_replay_batches_leave_the_new_texts_state_as_it_would_be_without_them(runs):
    """With the weights kept fixed (learning rate 0), a pass with replay batches ends in the state of a pass
    without them: each replay batch reads from the zero state, and the text's state is put back after it."""
    config = tiny_config(runs["text"], init_from=runs["trained"], replay=0.25)
    vocab, text = new_text_batches(runs)
    batches = ReplayBatches(text, base_batches(config, vocab, slice(None)), 0.25)
    replay = Replay(batches)
    states = []
    for data, callbacks in ((text, [TBPTTSchedule(text)]), (batches, [TBPTTSchedule(batches), replay])):
        keras.utils.set_random_seed(1)  # the same weights
        model = build_model(vocab.size, 4, 16, **config.model_args())
        model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(data, epochs=1, callbacks=callbacks, verbose=0, shuffle=False)
        states.append(get_states(model))
    assert replay.count == math.floor(batches.steps * 0.25) > 0
    assert np.abs(states[0][0]).max() > 0
    for without, with_replay in zip(*states):
        np.testing.assert_allclose(with_replay, without, atol=1e-6)


def test_replay_counts_its_batches_and_resumes_inside_an_epoch_exactly(runs):
    """The checkpoints and history.csv count the replay batches trained; a run stopped inside an epoch (by
    its time budget) and resumed ends as the run never stopped does."""
    config = functools.partial(tiny_config, runs["text"], init_from=runs["trained"], replay=0.25, max_epochs=2,
                               **REGULARIZED)
    straight, resumed = str(runs["tmp"] / "replay"), str(runs["tmp"] / "replay-resumed")
    records = train(config(), straight, verbose=0)
    stopped = train(config(max_seconds=0.01), resumed, verbose=0)
    assert 0 < stopped["last"]["batch"] < records["last"]["batch"], stopped["last"]
    again = train(config(), resumed, resume=True, verbose=0)

    steps = records["last"]["batch"]  # of each epoch
    assert steps - math.floor(steps * 0.25) == new_text_batches(runs)[1].steps  # each of the text's batches once
    assert records["last"]["step"] == again["last"]["step"] == 2 * steps
    assert records["last"]["replay_batches"] == again["last"]["replay_batches"] == 2 * math.floor(steps * 0.25)
    assert stopped["last"]["replay_batches"] == math.floor(stopped["last"]["batch"] * 0.25)
    header, *rows = open(os.path.join(straight, "history.csv")).read().split()
    assert header == "epoch,learning_rate,loss,seconds,step,val_loss,replay_batches"
    assert [row.split(",")[-1] for row in rows] == [str(n * math.floor(steps * 0.25)) for n in (1, 2)]
    assert open(os.path.join(resumed, "history.csv")).read().split()[-1].split(",")[-1] == rows[-1].split(",")[-1]
    assert_same_weights(load_model(os.path.join(straight, "last.keras")), load_model(os.path.join(resumed, "last.keras")))


def test_a_minlstm_run_fine_tunes_with_its_vocabulary_grown_blocks_frozen_and_replay(tmp_path):
    """The same options on another family (kerasrnn/models/mingru.py): the grown model gives the old logits before
    the first step; --freeze embedding,0 keeps the embedding and the first block bit for bit in best.keras (weight
    averaging on) and last.keras, which load with them frozen, while the rest trains; --replay counts its batches;
    the run samples. One pass each, dropout on, 64-token batches: each call of `train` traces the family's steps
    for seconds on TensorFlow, and its checkpoints read the start context in 16 calls."""
    shape = dict(model="minlstm", num_layers=2, embedding_size=16, batch_size=4, seq_length=64, learning_rate=1e-2,
                 eval_every=1000, dropout=0.1, max_epochs=1)
    trained, tuned = str(tmp_path / "trained"), str(tmp_path / "tuned")
    train(Config(text=shakespeare_slice(tmp_path, 3000), **shape), trained, verbose=0)
    text = with_new_characters(tmp_path, "new.txt")
    config = Config(text=text, init_from=trained, freeze="embedding,0", replay=0.25, ema=0.9, **shape)
    records = train(config, tuned, verbose=0)
    vocab, old = load_vocab(tuned), load_vocab(trained)
    assert vocab.chars == old.chars + NEW

    source = load_model(os.path.join(trained, "best.keras"), compile=False)
    start = family("minlstm").build(vocab.size, 4, 64, **config.model_args())
    copy_grown(source, start)
    reset_states(source)
    with open(text, encoding="utf-8") as f:
        chunk = old.encode("".join(c for c in f.read() if c in old.chars)[:256]).reshape(4, 64)
    np.testing.assert_allclose(start.predict_on_batch(chunk)[..., :old.size], source.predict_on_batch(chunk),
                               atol=1e-5)

    initial = {w.path: keras.ops.convert_to_numpy(w.value) for w in start.weights}
    for which in ("best", "last"):
        model = load_model(os.path.join(tuned, f"{which}.keras"))
        embedding, (first, second) = model.get_layer("embedding"), core(model).blocks
        assert (embedding.trainable, first.trainable, second.trainable) == (False, False, True)
        frozen, learned = embedding.weights + first.weights, second.weights + model.get_layer("logits").weights
        for w in frozen:
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(w.value), initial[w.path], err_msg=w.path)
        for w in learned:
            assert not np.allclose(keras.ops.convert_to_numpy(w.value), initial[w.path]), w.path
        assert optimizer_slots(model.optimizer, frozen, "momentum") == [None] * len(frozen)  # none made
    steps = records["last"]["batch"]
    assert records["last"]["replay_batches"] == math.floor(steps * 0.25) > 0
    out = io.StringIO()
    sample(tuned, prime="ROMEO→é", length=50, seed=1, out=out)
    assert len(out.getvalue()) > len("ROMEO→é") + 50


@pytest.mark.parametrize("options, message", [
    (dict(freeze="embedding"), "^freeze= goes with fine-tuning: pass init_from='RUN_DIR' too$"),
    (dict(replay=0.5), "^replay= goes with fine-tuning"),
    (dict(init_from="run", freeze="embedding,0,lstm"),
     r"^freeze= names layers among embedding, 0, 1, output \(got 'lstm'\)$"),
    (dict(init_from="run", freeze="output, 1,0,embedding"), "^freeze='output, 1,0,embedding' leaves nothing to train"),
    (dict(init_from="run", replay=-0.1), r"^replay= must be in \[0, 1\) \(got -0.1\)$"),
    (dict(init_from="run", replay=0.2, steps_per_execution=4), "^replay= swaps the recurrent state around each"),
])
def test_bad_fine_tuning_options_are_one_line(options, message):
    with pytest.raises(UserError, match=message):
        tiny_config("text.txt", **options).check()
    assert tiny_config("text.txt", init_from="run", freeze=" 1,embedding").frozen() == [1, "embedding"]
