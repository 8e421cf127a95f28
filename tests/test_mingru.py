"""minGRU and minLSTM (kerasrnn/models/mingru.py): the parallel form against the step recurrence and a float64
reference loop, the carried state across stateful batches, and no gradient into it. On every backend
(tests/test_backends.py runs this file under each other one). Every parallel form (`FORMS`) is checked against the
reference on each; the stack runs the backend's own."""
import os

import keras
import numpy as np
import pytest
from keras import layers, ops

from conftest import shakespeare_slice
from kerasrnn.config import Config
from kerasrnn.corpus import load_ids
from kerasrnn.data import StreamBatches, split, start_context
from kerasrnn.models import family_of, mingru
from kerasrnn.models.language_model import copy_weights, get_start, get_states, reset_states
from kerasrnn.models.mingru import FORMS, MinBlock, MinRecurrent, MinRNN
from kerasrnn.run import load_model, load_vocab
from kerasrnn.sample import step_model
from kerasrnn.train import train

B, T, F, U = 3, 37, 5, 6  # T odd, so that the pairwise scan pads


def assert_close(got, want):
    """Within 1e-5 of `want`, relative to its largest element where that exceeds 1 (a gradient summed over
    saturated inputs of 40 reaches hundreds, and float32 sums in another order differ by more than 1e-5 there)."""
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, float(np.max(np.abs(want)))))


@pytest.fixture(params=list(FORMS))
def form(request, monkeypatch):
    """Runs the test with every parallel form in place of the backend's own."""
    monkeypatch.setitem(mingru.SCANS, keras.backend.backend(), request.param)
    return request.param


def numpy(x):
    return None if x is None else ops.convert_to_numpy(x)


def value_and_grads(fn, variables):
    """fn() -> a scalar loss, and its gradients as to `variables` (keras.Variables) on this backend; None where
    the loss does not depend on one."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def loss(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn()
        value, grads = jax.value_and_grad(loss)([v.value for v in variables])
        return numpy(value), [numpy(g) for g in grads]
    if backend == "torch":
        import torch
        value = fn()
        grads = torch.autograd.grad(value, [v.value for v in variables], allow_unused=True)
        return numpy(value), [numpy(g) for g in grads]
    import tensorflow as tf
    with tf.GradientTape() as tape:
        value = fn()
    return numpy(value), [numpy(g) for g in tape.gradient(value, variables)]


def randomize(layer, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    for weight in layer.trainable_weights:
        weight.assign(rng.normal(0, scale, weight.shape).astype("float32"))


def inputs(seed, saturated, shape=(B, T, F)):
    """Random inputs; `saturated` scales them so that the gates are mostly within 1e-6 of 0 or of 1."""
    x = np.random.default_rng(seed).normal(0, 1, shape).astype("float32")
    return x * 40 if saturated else x


def reference(rnn, x, h0):
    """A float64 loop of the paper's recurrence from the layer's kernel: minGRU's z = σ(W_z x), minLSTM's
    f, i = σ(W_f x), σ(W_i x) normalised by their sum; h̃ = g(W_h x); h = (1 − z) h + z h̃."""
    def sigmoid(v):
        return 1 / (1 + np.exp(-v))  # in float64, not 0 down to v = -700: i / (f + i) has no 0 / 0 here
    projected = np.float64(x) @ np.float64(numpy(rnn.kernel.kernel))
    parts = np.split(projected, 2 if rnn.cell == "gru" else 3, axis=-1)
    if rnn.cell == "gru":
        hidden, z = parts[0], sigmoid(parts[1])
    else:
        hidden, f, i = parts[0], sigmoid(parts[1]), sigmoid(parts[2])
        z = i / (f + i)
    candidate = np.where(hidden >= 0, hidden + 0.5, sigmoid(hidden))
    h, outputs = np.float64(h0), []
    for t in range(x.shape[1]):
        h = (1 - z[:, t]) * h + z[:, t] * candidate[:, t]
        outputs.append(h)
    return np.stack(outputs, axis=1)


@pytest.mark.parametrize("saturated", [False, True], ids=["gates", "saturated-gates"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_parallel_form_equals_the_reference_and_the_step_recurrence(cell, saturated, form):
    """Outputs, final state and the gradient of every weight, by the parallel form and by stepping one position at
    a time, against a float64 loop."""
    rnn = MinRNN(U, cell)
    rnn.build((B, T, F))
    randomize(rnn, 0)
    x = inputs(1, saturated)
    h0 = np.abs(np.random.default_rng(2).normal(0, 1, (B, U))).astype("float32")  # h is positive
    w = ops.convert_to_tensor(np.random.default_rng(3).normal(0, 1, (B, T, U)).astype("float32"))

    def parallel():
        return rnn(x, h0)

    def stepped():
        h, outputs = h0, []
        for t in range(T):
            h = rnn.step(x[:, t], h)
            outputs.append(h)
        return ops.stack(outputs, axis=1), h

    want = reference(rnn, x, h0)
    results = {}
    for name, run in (("parallel", parallel), ("step", stepped)):
        outputs, last = run()
        loss, grads = value_and_grads(lambda: ops.sum(run()[0] * w), rnn.trainable_weights)
        results[name] = numpy(outputs), numpy(last), grads
        assert numpy(outputs).dtype == np.float32
        assert all(np.isfinite(v).all() for v in (numpy(outputs), *grads))
        assert_close(numpy(outputs), want)
        assert_close(numpy(last), want[:, -1])
    if saturated:
        z = numpy(ops.sigmoid(mingru.split_gates(cell, rnn.kernel(x))[0]))
        assert np.mean((z < 1e-6) | (z > 1 - 1e-6)) > 0.4  # (minLSTM: 1/2 where f and i both saturate at 1)
    for got, want_grad in zip(results["parallel"][2], results["step"][2]):
        assert_close(got, want_grad)


def stack_model(cell, conv, length=None, dropout=0.0):
    """Embedding -> MinRecurrent (2 blocks) -> logits, at batch B, every weight random."""
    tokens = keras.Input(batch_shape=(B, length), dtype="int32")
    x = layers.Embedding(11, 8, name="embedding")(tokens)
    x = MinRecurrent(cell, 8, 2, conv=conv, dropout=dropout, name="recurrent")(x)
    model = keras.Model(tokens, layers.Dense(11, name="logits")(x))
    randomize(model, 4)
    return model


def states(model):
    return [numpy(w.value) for w in model.get_layer("recurrent").state_weights]


@pytest.mark.parametrize("conv", [False, True], ids=["", "conv"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_stack_equals_its_steps_and_a_sequence_cut_into_stateful_batches_equals_the_whole(cell, conv):
    """The stack over the whole sequence, over the same sequence in three stateful batches, and stepped one
    position at a time (`MinRecurrent.step`): the same outputs and carried states, and the same gradients."""
    model = stack_model(cell, conv)
    stack, embedding, logits = (model.get_layer(name) for name in ("recurrent", "embedding", "logits"))
    x = np.random.default_rng(5).integers(0, 11, (B, 24)).astype("int32")
    w = ops.convert_to_tensor(np.random.default_rng(6).normal(0, 1, (B, 24, 11)).astype("float32"))
    whole = numpy(model(x))
    whole_states = states(model)
    assert len(whole_states) == (4 if conv else 2)
    assert not any(np.allclose(s, 0) for s in whole_states)

    for weight in stack.state_weights:
        weight.assign(ops.zeros_like(weight.value))
    batches = np.concatenate([numpy(model(x[:, i:i + 8])) for i in range(0, 24, 8)], axis=1)
    assert_close(batches, whole)
    for got, want in zip(states(model), whole_states):
        assert_close(got, want)

    def stepped():
        carried, outputs = [ops.zeros_like(weight.value) for weight in stack.state_weights], []
        for t in range(x.shape[1]):
            y, carried = stack.step(embedding(x[:, t]), carried)
            outputs.append(logits(y))
        return ops.stack(outputs, axis=1), carried

    steps, carried = stepped()
    assert_close(numpy(steps), whole)
    for got, want in zip(carried, whole_states):
        assert_close(numpy(got), want)

    def reset_and(run):
        for weight in stack.state_weights:
            weight.assign(ops.zeros_like(weight.value))
        return ops.sum(run() * w)
    _, want_grads = value_and_grads(lambda: reset_and(lambda: model(x)), model.trainable_weights)
    _, got_grads = value_and_grads(lambda: reset_and(lambda: stepped()[0]), model.trainable_weights)
    for got, want in zip(got_grads, want_grads):
        assert_close(got, want)


@pytest.mark.parametrize("conv", [False, True], ids=["", "conv"])
def test_no_gradient_flows_into_the_carried_state(conv):
    """A block's output depends on the state it starts from, its gradient does not (truncated BPTT)."""
    block = MinBlock(8, "gru", conv=conv)
    block.build((B, 12, 8))
    randomize(block, 7)
    x = inputs(8, False, (B, 12, 8))
    carried = [keras.Variable(np.abs(np.random.default_rng(9).normal(0, 1, (B, n))).astype("float32"))
               for n in block.state_sizes()]
    zeros = [ops.zeros((B, n)) for n in block.state_sizes()]
    assert not np.allclose(numpy(block(x, [v.value for v in carried])[0]), numpy(block(x, zeros)[0]), atol=1e-3)
    _, grads = value_and_grads(lambda: ops.sum(block(x, [v.value for v in carried])[0] ** 2),
                               [*carried, *block.trainable_weights])
    for grad in grads[:len(carried)]:
        assert grad is None or not np.any(grad)
    assert all(grad is not None and np.any(grad) for grad in grads[len(carried):])


def test_fit_carries_the_state_from_batch_to_batch():
    """Truncated BPTT through `model.fit`'s steps (JAX's stateless ones too): with a learning rate of 0, the state
    after training on three consecutive batches is the state after reading the whole sequence."""
    x = np.random.default_rng(10).integers(0, 11, (B, 24)).astype("int32")
    model = stack_model("lstm", True, length=8)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.concatenate([x[:, i:i + 8] for i in range(0, 24, 8)]), np.zeros((3 * B, 8), "int32"),
              batch_size=B, shuffle=False, verbose=0)
    after_fit = states(model)
    whole = stack_model("lstm", True)
    whole(x)
    for got, want in zip(after_fit, states(whole)):
        assert_close(got, want)


def test_a_saved_model_loads_with_its_configuration_and_weights(tmp_path):
    model = stack_model("lstm", True, dropout=0.1)
    model.get_layer("recurrent").blocks[0].trainable = False
    x = np.random.default_rng(11).integers(0, 11, (B, 9)).astype("int32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    stack = loaded.get_layer("recurrent")
    assert (stack.cell, stack.width, stack.num_layers, stack.conv, stack.dropout) == ("lstm", 8, 2, True, 0.1)
    assert stack.get_config()["frozen"] == [0]
    assert_close(numpy(loaded(x)), numpy(model(x)))
    for got, want in zip(states(loaded), states(model)):
        assert_close(got, want)


@pytest.fixture
def mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy("float32")


def test_the_state_stays_float32_under_a_bfloat16_policy(mixed_bfloat16):
    """Under Keras's mixed_bfloat16 the products run in bf16, the recurrence and the carried state in float32: with
    the RNN's kernel zero (z = 1/2, h̃ = g(0) = 1/2), one step from h0 gives h0 / 2 + 1/4 to float32's precision,
    where a bf16 h0 would be 4e-3 off."""
    tokens = keras.Input(batch_shape=(B, 1), dtype="int32")
    stack = MinRecurrent("gru", 8, 2, name="recurrent")
    model = keras.Model(tokens, stack(layers.Embedding(11, 8)(tokens)))
    for block in stack.blocks:
        block.rnn.kernel.kernel.assign(ops.zeros_like(block.rnn.kernel.kernel.value))
    h0 = [np.random.default_rng(13).uniform(1, 2, w.shape).astype("float32") for w in stack.state_weights]
    for weight, value in zip(stack.state_weights, h0):
        weight.assign(value)
    h, _ = stack.blocks[0].rnn.call(inputs(12, False, (B, 300, 8)), h0[0])
    assert ops.convert_to_numpy(h).dtype == np.float32
    model(np.zeros((B, 1), "int32"))
    for got, start in zip(states(model), h0):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, start / 2 + 0.25, rtol=1e-6)


# --- training: truncated BPTT through kerasrnn's training loop ---

def tiny_run(text, model, **overrides):
    """A minGRU or minLSTM run of seconds: dropout and weight averaging on, so that resuming must restore the random
    generators and the averages; 64-token batches, so that each checkpoint's start state is 16 calls (kerasrnn's
    START_CONTEXT), not 64, on torch's eager calls."""
    return Config(**{**dict(text=text, model=model, num_layers=2, embedding_size=16, expansion=1.5, batch_size=4,
                            seq_length=64, learning_rate=1e-2, eval_every=1000, dropout=0.2, ema=0.9, max_epochs=2),
                     **overrides})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A minGRU run with the convolution (whose state is two per block) of two passes over 3,000 characters, and the
    same run stopped after one pass and resumed. (Each call of `train` traces its steps for seconds: one family
    here; tests/test_finetune.py trains a minLSTM run.)"""
    tmp = tmp_path_factory.mktemp("mingru")
    config = tiny_run(shakespeare_slice(tmp, 3000), "mingru", conv=True)
    straight, resumed = str(tmp / "straight"), str(tmp / "resumed")
    records = train(config, straight, verbose=0)
    train(tiny_run(config.text, "mingru", conv=True, max_epochs=1), resumed, verbose=0)
    resumed_records = train(config, resumed, resume=True, verbose=0)
    return dict(config=config, straight=straight, resumed=resumed, records=records, resumed_records=resumed_records)


def test_a_resumed_run_equals_one_never_stopped(runs):
    """Weights, carried and start states, the optimizer's slots and averages, within 1e-6."""
    assert runs["resumed_records"]["last"]["keras_epoch"] == 1
    a, b = (load_model(os.path.join(runs[which], "last.keras")) for which in ("straight", "resumed"))
    assert int(a.optimizer.iterations.value) == int(b.optimizer.iterations.value) > 0
    assert len(a.optimizer.variables) == len(b.optimizer.variables) > len(a.trainable_weights) * 3  # + averages
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_allclose(numpy(wa.value), numpy(wb.value), rtol=0, atol=1e-6, err_msg=wa.path)
    assert runs["records"]["best"]["val_loss"] < np.log(load_vocab(runs["straight"]).size) - 0.5  # it learned


def test_the_start_state_and_validation_of_a_trained_run(runs):
    """best.keras's start state is the state a batch-1 copy reaches reading the start context from zeros, not zeros,
    and `kerasrnn sample`'s step model starts from it; the recorded validation loss is best.keras's over the
    validation streams from the zero state."""
    config, run_dir = runs["config"], runs["straight"]
    vocab, ids = load_ids(config.text, "char")
    train_ids, val_ids, _ = split(ids, config.train_frac, config.val_frac)
    best = load_model(os.path.join(run_dir, "best.keras"))
    context, token = start_context(StreamBatches(train_ids, config.batch_size, config.seq_length).tokens, vocab,
                                   config.seq_length)
    reader = family_of(best).rebuild(best, 1)
    reset_states(reader)
    reader(context[None].astype(np.int32))
    start_token, start = get_start(best)
    assert start_token == token and vocab.decode([token]) == "\n"
    for got, want in zip(start, get_states(reader)):
        assert np.abs(got).max() > 0.1
        assert_close(got, want[0])
    stepper = step_model(best)
    stepper.reset()
    assert stepper.start_token == token
    for got, want in zip(get_states(stepper.model), start):
        np.testing.assert_array_equal(got[0], want)

    model = family_of(best).build(vocab.size, config.batch_size, config.seq_length, **config.model_args())
    copy_weights(best, model)  # (on JAX, evaluate may take the arrays the two models now share: best is done)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    val_loss = model.evaluate(StreamBatches(val_ids, config.batch_size, config.seq_length), verbose=0)
    assert val_loss == pytest.approx(runs["records"]["best"]["val_loss"], abs=1e-5)
