"""The web sampler (export/web): its JavaScript contract under node, then the page itself in Debian's
headless Chromium (Selenium, /usr/bin/chromedriver) against `kerasrnn-edge sample` on the same files.

One site, one server and one browser for the module: the char model (LSTM) at the site's root, a byte
model (GRU), a GPT (its 200 characters past its context of 32), a bpe model (subword pieces: the page tokenizes
the prime by SPEC.md) and damaged copies of the bundle in subdirectories, opened with ?bundle=DIR/.
"""
import codecs
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from conftest import REPO, run_cli, shakespeare_slice

WEB = os.path.join(REPO, "export", "web")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Without these Chromium keeps trying to reach Google's services, and this machine has no network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1200,900"]
SAMPLE = dict(prime="ROMEO:", seed=3, temperature=0.8, top_k=0, length=200)


def node_or_skip():
    if shutil.which("node") is None:
        pytest.skip("node not found: install Node.js 20 (Debian: nodejs) to test the web sampler's JavaScript")


def test_js_contract_against_the_vectors():
    node_or_skip()
    done = subprocess.run(["node", "--test", "contract.test.mjs"], cwd=WEB, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout


def test_byte_decoding_matches_python_piece_by_piece():
    """Random byte streams, rich in invalid and incomplete UTF-8: the JavaScript decoder returns the same
    piece for every byte as Python's incremental "replace" decoder (so the text agrees wherever it stops)."""
    node_or_skip()
    rng = random.Random(15)
    pool = list(range(0, 0x80, 9)) + list(range(0x80, 0x100))
    streams = [[rng.choice(pool) for _ in range(rng.randint(1, 9))] for _ in range(5000)]
    script = """import('./contract.mjs').then(({Vocab}) => {
      const streams = JSON.parse(require('fs').readFileSync(0, 'utf8'));
      console.log(JSON.stringify(streams.map((s) => s.map(new Vocab({kind: 'byte'}).decoder()))));
    });"""
    done = subprocess.run(["node", "-e", script], cwd=WEB, input=json.dumps(streams), capture_output=True,
                          text=True, timeout=60, check=True)
    for stream, pieces in zip(streams, json.loads(done.stdout)):
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        assert pieces == [decode(bytes((b,))) for b in stream], [hex(b) for b in stream]


# The page in Chromium ----------------------------------------------------------------------------------

def train_tiny(base, **settings):
    from kerasrnn.config import Config
    from kerasrnn.train import train

    os.makedirs(base, exist_ok=True)
    run_dir = os.path.join(base, "run")
    config = Config(text=shakespeare_slice(base, 20_000), rnn_size=32, num_layers=2, embedding_size=16,
                    batch_size=8, seq_length=32, max_epochs=1, eval_every=50, seed=1, **settings)
    train(config, run_dir, verbose=0)
    return run_dir


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site directory: the char model's site made by the CLI, the byte and bpe models', and damaged bundles."""
    node_or_skip()
    from kerasrnn.export import export_bundle
    from kerasrnn_export.web import write_site

    base = tmp_path_factory.mktemp("web")
    char_run = train_tiny(str(base.joinpath("char")), cell="lstm")
    byte_run = train_tiny(str(base.joinpath("byte-run")), cell="gru", tokens="byte")
    root = base / "site"
    done = run_cli("export", char_run, "--web", root)
    assert done.returncode == 0, done.stderr
    assert f"kerasrnn serve-web {root}" in done.stdout
    export_bundle(byte_run, str(base / "byte-bundle"))
    write_site(str(base / "byte-bundle"), str(root / "byte"))
    gpt_run = train_tiny(str(base.joinpath("gpt-run")), model="gpt", num_heads=2, context=32)
    export_bundle(gpt_run, str(base / "gpt-bundle"))
    write_site(str(base / "gpt-bundle"), str(root / "gpt"))
    bpe_run = train_tiny(str(base.joinpath("bpe-run")), cell="lstm", tokens="bpe", vocab_size=400)
    export_bundle(bpe_run, str(base / "bpe-bundle"))
    write_site(str(base / "bpe-bundle"), str(root / "bpe"))

    def damaged(name, change):
        os.makedirs(root / name)
        for f in ("manifest.json", "step.onnx"):
            shutil.copyfile(root / f, root / name / f)
        change(root / name)

    def truncate(d):
        data = (d / "step.onnx").read_bytes()
        (d / "step.onnx").write_bytes(data[:len(data) // 2])

    def flip_a_byte(d):
        data = bytearray((d / "step.onnx").read_bytes())
        data[len(data) // 2] ^= 0x40
        (d / "step.onnx").write_bytes(bytes(data))

    def format_version_2(d):
        doc = json.loads((d / "manifest.json").read_text())
        (d / "manifest.json").write_text(json.dumps(dict(doc, format_version=2)))

    damaged("truncated", truncate)
    damaged("flipped", flip_a_byte)
    damaged("missing", lambda d: os.remove(d / "step.onnx"))
    damaged("version2", format_version_2)
    return root


@pytest.fixture(scope="module")
def server(site):
    from kerasrnn.serve_web import make_server

    httpd = make_server(str(site), port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def open_browser(tmp_dir):
    """Debian's chromium, headless, through chromium-driver; skips where they are not installed."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("chromium / chromium-driver not installed (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_dir}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = open_browser(str(tmp_path_factory.mktemp("chromium-profile")))
    yield driver
    driver.quit()


def wait_for(browser, states, timeout=120):
    """Waits until the page's state (body's data-state) is one of `states`; returns it."""
    deadline = time.monotonic() + timeout
    while (state := browser.execute_script("return document.body.dataset.state")) not in states:
        assert time.monotonic() < deadline, f"the page is still {state!r} after {timeout} s"
        time.sleep(0.05)
    return state


def open_page(browser, url, until=("done", "error", "stopped")):
    browser.get(url)
    return wait_for(browser, until)


def page_text(browser, element_id):
    return browser.execute_script(f"return document.getElementById('{element_id}').textContent")


def query(**settings):
    return "?" + urllib.parse.urlencode({**settings, "run": 1})


def edge_sample(bundle_dir, prime, seed, temperature, top_k, length):
    """What `kerasrnn-edge sample` prints on onnxruntime at fp32, without its trailing newline."""
    done = subprocess.run([sys.executable, "-m", "kerasrnn_edge.cli", "sample", str(bundle_dir), "--runtime",
                           "onnxruntime", "--precision", "fp32", "--prime", prime, "--seed", str(seed),
                           "--temperature", str(temperature), "--top-k", str(top_k), "--length", str(length)],
                          capture_output=True, text=True, encoding="utf-8", check=True, timeout=120)
    assert done.stdout.endswith("\n")
    return done.stdout[:-1]


@pytest.mark.parametrize("bundle, prime", [("", "ROMEO:"), ("byte/", "ROMEO:"), ("byte/", "Ça va?\n\nROMEO:"),
                                           ("gpt/", "ROMEO:"), ("bpe/", "ROMEO:\nWhat 😀 ▁ naïve")],
                         ids=["char-lstm", "byte-gru", "byte-gru-two-line-prime", "char-gpt", "bpe-lstm"])
def test_page_writes_what_kerasrnn_edge_prints(site, server, browser, bundle, prime, tmp_path):
    sample = dict(SAMPLE, prime=prime)
    expected = edge_sample(site / bundle, **sample)
    browser.get_log("browser")  # drop what earlier pages logged
    state = open_page(browser, server + query(**sample, **({"bundle": bundle} if bundle else {})))
    assert (state, page_text(browser, "error")) == ("done", "")
    assert page_text(browser, "output") == expected
    assert len(expected) > len(prime) + 150  # (a byte model's 200 bytes may be fewer characters)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert browser.find_element("id", "top5").text.count("%") == 5
    assert "chars/s" in page_text(browser, "stats")
    screenshot = tmp_path / "page.png"
    browser.save_screenshot(str(screenshot))
    from PIL import Image
    pixels = np.asarray(Image.open(screenshot).convert("L"), np.float32)
    assert pixels.std() > 20, "the screenshot is (nearly) blank"


@pytest.mark.parametrize("bundle, message", [
    ("truncated/", r"^step\.onnx has \d+ bytes, not \d+ as manifest\.json says: .* export it again\.$"),
    ("flipped/", r"^step\.onnx does not match its sha256 in manifest\.json: the site is corrupt, export it again\.$"),
    ("missing/", r"^step\.onnx is missing \(HTTP 404\): .* export it again with kerasrnn export RUN --web DIR\.$"),
    ("version2/", r"^manifest\.json has bundle format version 2; this page reads version 1: .*$"),
    ("nowhere/", r"^manifest\.json is missing \(HTTP 404\)"),
])
def test_a_damaged_bundle_is_one_sentence_on_the_page(server, browser, bundle, message):
    assert open_page(browser, server + query(bundle=bundle)) == "error"
    assert re.search(message, page_text(browser, "error")), page_text(browser, "error")
    assert browser.find_element("id", "error").is_displayed()


def test_prime_outside_the_vocabulary(server, browser):
    assert open_page(browser, server + query(prime="ROMEO: ☃", length=10)) == "error"
    assert page_text(browser, "error") == 'the prime has characters outside the vocabulary: "☃"; remove them'


def test_stop(server, browser):
    open_page(browser, server + query(prime="ROMEO:", length=10_000_000), until=("running",))
    time.sleep(0.3)
    browser.find_element("id", "stop").click()
    assert wait_for(browser, ("stopped",), timeout=10) == "stopped"
    assert page_text(browser, "output").startswith("ROMEO:") and len(page_text(browser, "output")) > 10


def test_served_with_the_right_types(server):
    for path, mime in [("", "text/html; charset=utf-8"), ("app.mjs", "text/javascript"),
                       ("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
                       ("step.onnx", "application/octet-stream"), ("manifest.json", "application/json")]:
        with urllib.request.urlopen(server + path) as response:
            assert response.headers["Content-Type"] == mime, path


def test_serve_web_command(site, tmp_path):
    server = subprocess.Popen([sys.executable, "-m", "kerasrnn", "serve-web", str(site), "--port", "0"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline()).group()
        with urllib.request.urlopen(url + "ort/ort-wasm-simd-threaded.mjs") as response:
            assert response.headers["Content-Type"] == "text/javascript"
    finally:
        server.terminate()
        server.wait(timeout=10)
    done = run_cli("serve-web", tmp_path)
    assert done.returncode == 2
    assert done.stderr == (f"kerasrnn: error: {tmp_path} has no index.html: make the site with "
                           f"kerasrnn export RUN --web {tmp_path}\n")


def test_export_web_without_npm_says_what_to_run(tmp_path, monkeypatch):
    from kerasrnn_edge.errors import UserError
    from kerasrnn_export.web import runtime_dir

    source = tmp_path / "web"
    source.mkdir()
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    with pytest.raises(UserError, match=r"install Node\.js and npm, then run npm ci in .*web$"):
        runtime_dir(str(source))
