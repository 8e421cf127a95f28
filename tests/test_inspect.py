"""kerasrnn inspect against references: the recomputed insides against the Keras layers, the cell finder
against a model with a planted quote cell (and a random one that must not pass), the n-gram baseline
against texts whose entropy is known, the command's errors and outputs."""
import json
import os

import h5py
import keras
import numpy as np
import pytest

from conftest import run_cli, shakespeare_slice
from kerasrnn import models
from kerasrnn.config import Config
from kerasrnn.inspect.main import cell_finder
from kerasrnn.inspect.ngram import NGram
from kerasrnn.inspect.recompute import start_states
from kerasrnn.models.language_model import core, get_states, set_start, set_states
from kerasrnn.models.recurrent import build_model
from kerasrnn.files import save_model, write_json
from kerasrnn_edge.vocab import Vocab
from kerasrnn.models.recurrent_graphs import from_model

V, B, T, E, H = 11, 2, 9, 5, 6


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_recomputed_states_equal_the_keras_layers(cell):
    model = build_model(V, B, None, cell, rnn_size=H, num_layers=2, embedding_size=E)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # random biases and states too, so a misplaced one shows
        if weight.dtype.startswith("float"):
            weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    ids = rng.integers(0, V, (B, T))
    initial = get_states(model)
    trace = from_model(model).forward(ids, initial, gates=True)

    stack, per_layer = core(model), len(initial) // 2
    x = model.get_layer("embedding")(ids)
    for layer, rnn in enumerate(stack.rnns):
        x, *states = rnn(x, initial_state=initial[layer * per_layer:(layer + 1) * per_layer])
        np.testing.assert_allclose(trace.h[layer], keras.ops.convert_to_numpy(x), atol=1e-5)
        np.testing.assert_allclose(trace.states[layer * per_layer], keras.ops.convert_to_numpy(states[0]), atol=1e-5)
        if cell == "lstm":
            np.testing.assert_allclose(trace.c[layer][:, -1], keras.ops.convert_to_numpy(states[1]), atol=1e-5)
            np.testing.assert_allclose(trace.states[layer * 2 + 1], keras.ops.convert_to_numpy(states[1]), atol=1e-5)
    set_states(model, initial)
    np.testing.assert_allclose(trace.logits, keras.ops.convert_to_numpy(model(ids)), atol=1e-4)
    assert len(trace.c) == (2 if cell == "lstm" else 0)
    assert set(trace.gates) == {"lstm": {"input", "forget", "output"}, "gru": {"update", "reset"}, "rnn": set()}[cell]
    for per_layer_gates in trace.gates.values():
        assert all(((g >= 0) & (g <= 1)).all() for g in per_layer_gates)


@pytest.mark.parametrize("name, conv", [("mingru", True), ("minlstm", False)])
def test_recomputed_min_blocks_equal_the_keras_model(name, conv):
    """minGRU and minLSTM: the numpy recomputation (each block's h step by step) gives the Keras model's logits and
    final states from random weights and states, and gates in [0, 1] (minLSTM's two summing to 1)."""
    family = models.family(name)
    model = family.build(V, B, None, num_layers=2, width=8, conv=conv)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if weight.dtype.startswith("float"):
            weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    ids = rng.integers(0, V, (B, T))
    initial = get_states(model)
    weights = family.recompute(model)
    trace = weights.forward(ids, initial, gates=True)
    np.testing.assert_allclose(trace.logits, keras.ops.convert_to_numpy(model(ids)), atol=1e-4)
    for got, expected in zip(trace.states, get_states(model), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [h.shape for h in trace.h] == [(B, T, weights.units)] * 2 and weights.units == 12
    assert set(trace.gates) == ({"update"} if name == "mingru" else {"forget", "input"})
    for per_layer_gates in trace.gates.values():
        assert all(((g >= 0) & (g <= 1)).all() for g in per_layer_gates)
    if name == "minlstm":
        np.testing.assert_allclose(trace.gates["forget"][0] + trace.gates["input"][0], 1, atol=1e-6)


CHARS = ' "abcdefgh'


def quoted_text(length=2000, seed=0):
    """Random words, with quotes opened and closed at random: only memory tells inside from outside."""
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(list('"') + list("abcdefgh ") * 3, size=length))


def planted_model(units=4):
    """A 1-layer LSTM whose cell 0 flips its sign at each '"': at a quote the forget gate closes, the input
    gate opens and the candidate is minus the cell's own output (plus a nudge, so zero goes inside);
    elsewhere the cell keeps its value. Its start state is outside (c = -1). The other cells stay 0."""
    vocab = Vocab("char", CHARS)
    model = build_model(vocab.size, 1, None, "lstm", rnn_size=units, num_layers=1, embedding_size=1)
    for weight in model.weights:
        if weight.dtype.startswith("float"):
            weight.assign(np.zeros(weight.shape, "float32"))
    embedding = np.zeros((vocab.size, 1), "float32")
    embedding[CHARS.index('"')] = 1                      # the one input: "is this a quote"
    kernel, recurrent_kernel, bias = (np.zeros((1, 4 * units)), np.zeros((units, 4 * units)), np.zeros(4 * units))
    i, f, g, o = 0, units, 2 * units, 3 * units          # cell 0 of each gate, Keras order i, f, c, o
    kernel[0, i], bias[i] = 20, -10                      # input gate: open at a quote only
    kernel[0, f], bias[f] = -20, 10                      # forget gate: closed at a quote only
    recurrent_kernel[0, g], bias[g] = -10, 2             # candidate: the opposite of the cell's sign
    bias[o] = 10                                         # output gate: open
    model.get_layer("embedding").embeddings.assign(embedding)
    cell = core(model).rnns[0].cell
    for variable, value in ((cell.kernel, kernel), (cell.recurrent_kernel, recurrent_kernel), (cell.bias, bias)):
        variable.assign(value.astype("float32"))
    start_c = np.zeros(units, "float32")
    start_c[0] = -1
    set_start(model, CHARS.index(" "), [np.tanh(start_c) * (1 / (1 + np.exp(-10))), start_c])
    return model, vocab


def quote_ranking(model, vocab, text):
    weights = from_model(model)
    ids = vocab.encode(text)
    trace = weights.forward(np.concatenate([[weights.start_token], ids])[None], start_states(weights))
    signals = [trace.h[0][0, 1:], trace.c[0][0, 1:]]
    found = {f["name"]: f for f in cell_finder(text, signals, weights.rnn_size)}
    return found["inside quotes"]["cells"]


def test_the_planted_quote_cell_ranks_first():
    model, vocab = planted_model()
    best = quote_ranking(model, vocab, quoted_text())[0]
    assert best["cell"] == 0 and best["score"] > 0.95, best


def test_a_random_model_has_no_quote_cell():
    keras.utils.set_random_seed(1)
    vocab = Vocab("char", CHARS)
    model = build_model(vocab.size, 1, None, "lstm", rnn_size=32, num_layers=1, embedding_size=8)
    best = quote_ranking(model, vocab, quoted_text())[0]
    assert max(best["score"], 1 - best["score"]) < 0.8, best


def test_ngram_on_periodic_and_uniform_text():
    periodic = np.tile(np.arange(7), 3000)
    for n in range(2, 6):
        assert NGram(periodic, n, 7).losses(periodic[:5000]).mean() < 0.01
    rng = np.random.default_rng(0)
    for k, orders in ((2, 5), (4, 5), (16, 2)):  # enough text that every context is seen often
        model = NGram(rng.integers(0, k, 200_000), orders, k)
        for n in range(1, orders + 1):
            assert abs(model.losses(rng.integers(0, k, 20_000), n).mean() - np.log(k)) < 0.02 * np.log(k)


def test_training_saves_samples_every_n_steps(tmp_path):
    text = shakespeare_slice(tmp_path, 4000)
    tiny = ["--batch-size", "4", "--seq-length", "16", "--rnn-size", "16", "--num-layers", "1", "--embedding-size", "8"]
    result = run_cli("train", "--text", text, "--run-dir", tmp_path / "run", "--max-epochs", "1",
                     "--sample-every", "10", *tiny)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "run" / "samples.jsonl", encoding="utf-8") as f:
        samples = [json.loads(line) for line in f]
    assert [s["step"] for s in samples] == [10, 20, 30, 40, 50]  # 56 steps in the pass
    assert all(len(s["text"]) == 200 for s in samples)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """A run directory holding the planted model, trained (so to speak) on a quoted text."""
    tmp = tmp_path_factory.mktemp("inspect")
    text = tmp / "quotes.txt"
    text.write_text(quoted_text(6000, seed=2), encoding="utf-8")
    model, vocab = planted_model()
    run_dir = tmp / "run"
    os.makedirs(run_dir)
    config = Config(text=str(text), cell="lstm", rnn_size=4, num_layers=1, embedding_size=1, seq_length=16)
    write_json(run_dir / "config.json", config.to_json())
    write_json(run_dir / "vocab.json", vocab.to_json())
    save_model(model, str(run_dir / "best.keras"))
    return run_dir


def test_inspect_writes_the_report_and_lstmvis(planted_run, tmp_path):
    out, lstmvis = tmp_path / "report.html", tmp_path / "lstmvis"
    result = run_cli("inspect", planted_run, "--chars", "500", "--out", out, "--lstmvis", lstmvis)
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    page = json.loads(html.split('<script type="application/json" id="data">')[1].split("</script>")[0])
    assert len(page["ids"]) == 500 and len(page["top"][0]) == 5
    assert [m["reset"] for m in page["memory"]] == [1, 2, 4, 8, 16, 32, 64, 128, 256, "never"]
    quotes = next(f for f in page["features"] if f["name"] == "inside quotes")
    assert quotes["cells"][0]["cell"] == 0 and quotes["cells"][0]["score"] > 0.95
    with h5py.File(lstmvis / "states.hdf5") as f:
        assert f["states1"].shape == f["output1"].shape == (500, 4)
    with h5py.File(lstmvis / "train.hdf5") as f:
        assert f["word_ids"].shape == (500,)
    assert "path: states1" in (lstmvis / "lstm.yml").read_text()
    assert len((lstmvis / "words.dict").read_text(encoding="utf-8").splitlines()) == len(CHARS)


def test_inspect_errors_are_one_line(planted_run, tmp_path):
    missing = run_cli("inspect", tmp_path / "nowhere")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    foreign = tmp_path / "foreign.txt"
    foreign.write_text('abc "xyz" é', encoding="utf-8")
    refused = run_cli("inspect", planted_run, "--text", foreign, "--out", tmp_path / "r.html")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "'x' 'y' 'z' 'é'" in refused.stderr and "--skip-unknown" in refused.stderr
    skipped = run_cli("inspect", planted_run, "--text", foreign, "--skip-unknown", "--out", tmp_path / "r.html")
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 4 characters outside the vocabulary: 'x' 'y' 'z' 'é'" in skipped.stdout


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,2400"]


@pytest.fixture
def browser(tmp_path):
    """Debian's chromium, headless, through Selenium; logging the console and every network request."""
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_the_report_in_a_browser(planted_run, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    out = tmp_path / "report.html"
    assert run_cli("inspect", planted_run, "--chars", "400", "--out", out).returncode == 0
    browser.get_log("performance")  # drop what the browser itself loaded at start-up
    browser.get(out.as_uri())
    messages = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    requested = {m["params"]["request"]["url"] for m in messages if m["method"] == "Network.requestWillBeSent"}
    assert requested == {out.as_uri()}
    assert browser.get_log("browser") == []  # no console errors, nor anything else

    guesses = browser.execute_script(
        "return Array.from(document.querySelectorAll('#strip .col'), c => c.querySelectorAll('.g').length)")
    assert len(guesses) == 240 and set(guesses) == {5}
    colours = "return Array.from(document.querySelectorAll('#strip .ch'), c => c.style.background)"
    before = browser.execute_script(colours)
    assert browser.find_element(By.ID, "cell").get_attribute("value") == "0"  # the quote cell, found first
    browser.find_element(By.ID, "next").click()
    assert browser.find_element(By.ID, "cell").get_attribute("value") == "1"
    after = browser.execute_script(colours)
    assert len(set(before)) > 2 and before != after

    pattern = browser.find_element(By.ID, "pattern")
    pattern.clear()
    pattern.send_keys('"[^"]*"')
    browser.find_element(By.ID, "find").click()
    first_row = browser.find_element(By.CSS_SELECTOR, "#patternresult td.cellname")
    assert first_row.text.endswith("#0")
    assert browser.get_log("browser") == []

    path = tmp_path / "shot.png"
    browser.save_screenshot(str(path))
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 100 and (pixels < 200).any()
