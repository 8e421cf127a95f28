"""Mixed bfloat16 training (`--precision`): which precision `auto` takes, and that bf16 trains as well as fp32
and resumes exactly. The torch tests run in tests/test_backends.py's run under KERAS_BACKEND=torch; on a CPU
without bf16 instructions their bf16 runs emulated, slower."""
import os

import keras
import numpy as np
import pytest

from conftest import only_on, shakespeare_slice
from kerasrnn import backends
from kerasrnn.config import Config
from kerasrnn.corpus import load_ids
from kerasrnn.models.recurrent import build_model
from kerasrnn.run import load_model
from kerasrnn.train import train
from kerasrnn_edge.errors import UserError, command_line

SMALL = dict(batch_size=8, seq_length=16, rnn_size=32, num_layers=1, embedding_size=16, learning_rate=1e-2,
             eval_every=1000)


def taken(monkeypatch, detected, precision):
    monkeypatch.setenv("KERASRNN_CPU_BF16", detected)
    return backends.set_precision(build_model(10, 2, 4, rnn_size=4, num_layers=1, embedding_size=4), precision)


@only_on("torch", "bf16 training runs on torch")
def test_auto_takes_bf16_on_torch_only_where_the_cpu_has_bf16_instructions(monkeypatch):
    import torch
    if torch.cuda.is_available():
        pytest.skip("on a GPU, auto takes fp32 (bf16 there is not yet measured)")
    assert taken(monkeypatch, "0", "auto") == "fp32"
    assert taken(monkeypatch, "1", "auto") == "bf16"
    assert taken(monkeypatch, "1", "fp32") == "fp32"


@pytest.mark.skipif(keras.backend.backend() == "torch", reason="TensorFlow and JAX train in fp32")
def test_other_backends_take_fp32_and_refuse_bf16_in_one_line(monkeypatch):
    assert taken(monkeypatch, "1", "auto") == "fp32"
    with pytest.raises(UserError, match="^precision='bf16' runs on the torch backend only"):  # the API's keyword
        taken(monkeypatch, "1", "bf16")
    with command_line(), pytest.raises(UserError, match="^--precision bf16 runs on the torch backend only"):
        taken(monkeypatch, "1", "bf16")


@only_on("torch", "bf16 training runs on torch")
def test_bf16_and_fp32_runs_of_300_steps_end_as_good(tmp_path, monkeypatch, capsys):
    """One pass of 300 steps over the text: `auto` (here fp32, detection forced off) and bf16 reach the same
    validation loss, and the first line says which precision each run took."""
    monkeypatch.setenv("KERASRNN_CPU_BF16", "0")
    text = shakespeare_slice(tmp_path, 42_700)
    losses = {}
    for precision, said in (("auto", "fp32"), ("bf16", "bf16")):
        records = train(Config(text=text, max_epochs=1, precision=precision, **SMALL), str(tmp_path / precision),
                        verbose=2)
        assert f" on torch, {said}; " in capsys.readouterr().out.splitlines()[0]
        assert records["last"]["step"] == 300
        losses[said] = records["last"]["val_loss"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], abs=0.02)
    assert losses["fp32"] < 2.5  # both learned: a model that knows nothing scores ln(vocab size) = 4.1


def assert_resumed_equals_straight(straight, resumed):
    """The resumed run's last checkpoint equals the one never stopped, weights and optimizer, and both are fp32;
    returns the one never stopped."""
    a, b = load_model(os.path.join(straight, "last.keras")), load_model(os.path.join(resumed, "last.keras"))
    assert int(a.optimizer.iterations.value) == int(b.optimizer.iterations.value) > 0
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        assert wa.dtype == wb.dtype and "16" not in wa.dtype, wa.path  # checkpoints stay fp32
        np.testing.assert_allclose(keras.ops.convert_to_numpy(wa.value), keras.ops.convert_to_numpy(wb.value),
                                   atol=1e-6, err_msg=wa.path)
    return a


@only_on("torch", "bf16 training runs on torch")
def test_bf16_training_resumed_equals_one_never_stopped_and_saves_fp32(tmp_path):
    text = shakespeare_slice(tmp_path, 3000)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    settings = dict(text=text, precision="bf16", dropout=0.2, ema=0.9, **SMALL)
    train(Config(max_epochs=2, **settings), straight, verbose=0)
    train(Config(max_epochs=1, **settings), resumed, verbose=0)
    train(Config(max_epochs=2, **settings), resumed, resume=True, verbose=0)
    assert_resumed_equals_straight(straight, resumed)


@only_on("torch", "bf16 training runs on torch")
def test_a_mingru_run_trains_in_bf16_where_the_cpu_has_it_and_resumes_exactly_with_fp32_checkpoints(
        tmp_path, monkeypatch, capsys):
    """`auto` on a CPU with bf16 instructions (forced here) trains minGRU blocks (kerasrnn/models/mingru.py) in
    bf16: their products run in bf16 under the steps' autocast, the scan and the carried state in float32, within
    2e-2 of the float32 scan's h; the checkpoints stay float32, and a resumed run equals one never stopped."""
    monkeypatch.setenv("KERASRNN_CPU_BF16", "1")
    text = shakespeare_slice(tmp_path, 3000)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    settings = dict(text=text, model="mingru", conv=True, num_layers=2, embedding_size=16, batch_size=4,
                    seq_length=64, learning_rate=1e-2, eval_every=1000, dropout=0.2, ema=0.9)
    train(Config(max_epochs=2, **settings), straight, verbose=2)
    assert " on torch, bf16; " in capsys.readouterr().out.splitlines()[0]
    train(Config(max_epochs=1, **settings), resumed, verbose=0)
    train(Config(max_epochs=2, **settings), resumed, resume=True, verbose=0)
    a = assert_resumed_equals_straight(straight, resumed)

    import torch
    from kerasrnn.backends.torch import bf16_autocast
    block = a.get_layer("recurrent").blocks[0]
    x = block.norm_1(a.get_layer("embedding")(np.asarray(load_ids(text, "char")[1][:4 * 64]).reshape(4, 64)))
    state = a.get_layer("recurrent").state_weights[0].value
    h, _ = block.rnn.call(x, state)
    with bf16_autocast("cpu"):
        projected = block.rnn.kernel(x)  # (Keras's call gives it back as float32)
        h_bf16, last = block.rnn.call(x, state)
    assert torch.equal(projected, projected.bfloat16().float())  # computed in bf16
    assert h_bf16.dtype == last.dtype == h.dtype == torch.float32
    assert not torch.equal(h_bf16, h_bf16.bfloat16().float())  # the scan's own float32
    h, h_bf16 = keras.ops.convert_to_numpy(h), keras.ops.convert_to_numpy(h_bf16)
    assert 0 < np.abs(h_bf16 - h).max() < 2e-2 * np.abs(h).max()
