"""A bundle whose manifest.json was edited (a state shape, a GPT's context, the vocabulary cut short, a batch
file's or the ONNX "steps" entry's token shape, the JSON cut in half) is refused before the first step, in
one line naming the file and the field, by all three readers: `kerasrnn-edge` (LiteRT and onnxruntime), the
Java core (CheckBundle, as the app checks its copy) and the web page (onnxruntime-web in Chromium). The
bundle is byte-identical afterwards.

Edits of one field are caught by the manifest against itself; edits made "everywhere" (every place the
manifest states the width, so that it agrees with itself) only by the model files' own signatures.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading

import pytest

from conftest import REPO, shakespeare_slice

CORE_SOURCES = os.path.join(REPO, "android_demo", "core", "src", "main", "java")
TFLITE, ONNX = "step_fp32.tflite", "step.onnx"


def widen(doc, name, by):
    """Makes state `name` `by` wider everywhere the manifest states its width."""
    next(s for s in doc["state"] if s["name"] == name)["shape"][1] += by
    doc["start"]["state"][name] += [0.0] * by
    for entry in doc["files"] + doc.get("batch_files", []):
        entry["inputs"][name]["shape"][1] += by
        entry["outputs"][f"next_{name}"]["shape"][1] += by


def lstm_wider_everywhere(doc):
    doc["model"]["rnn_size"] += 1
    for state in doc["state"]:
        widen(doc, state["name"], 1)


def context_everywhere(doc):
    doc["model"]["context"] += 1
    widen(doc, "filled", 1)
    for i in range(doc["model"]["num_layers"]):
        for kv in "kv":
            widen(doc, f"layer{i}_{kv}", doc["model"]["width"])


def cut_vocabulary(doc, everywhere=False):
    doc["vocab"]["chars"] = doc["vocab"]["chars"][:-3]
    if everywhere:
        doc["vocab"]["size"] -= 3
        for entry in doc["files"] + doc.get("batch_files", []):
            entry["outputs"]["logits"]["shape"][1] -= 3


# name: (bundle, edit of the parsed manifest or None to cut the JSON in half, what the one line names);
# {model} is the file the runtime reads: step_fp32.tflite (LiteRT, Java), step.onnx (onnxruntime, the page)
CASES = {
    "state-shape": ("lstm", lambda doc: doc["state"][1]["shape"].__setitem__(1, 17), ("manifest.json", "layer0_c")),
    "state-everywhere": ("lstm", lstm_wider_everywhere, ("{model}", "manifest.json says", "layer")),
    "context": ("gpt", lambda doc: doc["model"].update(context=doc["model"]["context"] + 1),
                ("manifest.json", "context 17", "layer0_k")),
    "context-everywhere": ("gpt", context_everywhere, ("{model}", "manifest.json says")),
    "vocabulary-cut-short": ("lstm", cut_vocabulary, ("manifest.json", "vocab.size")),
    "vocabulary-cut-everywhere": ("lstm", lambda doc: cut_vocabulary(doc, everywhere=True),
                                  ("{model}", "manifest.json says", "logits")),
    "batch-token": ("lstm", lambda doc: doc["batch_files"][0]["inputs"]["token"]["shape"].__setitem__(0, 3),
                    ("manifest.json", "step_b2_fp32.tflite", "token")),
    "steps-token": ("lstm", lambda doc: doc["files"][3]["inputs"]["token"]["shape"].__setitem__(0, 8),
                    ("manifest.json", "step.onnx", "token")),
    "truncated-json": ("lstm", None, ("manifest.json", "not valid JSON")),
}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """A tiny LSTM (with batch files) and a tiny GPT of context 16, exported once for the module."""
    from kerasrnn.config import Config
    from kerasrnn.train import train
    from kerasrnn.export import export_bundle

    base = tmp_path_factory.mktemp("bundles")
    text = shakespeare_slice(base, 5_000)
    made = {}
    for kind, model in [("lstm", dict(cell="lstm")), ("gpt", dict(model="gpt", num_heads=2, context=16))]:
        config = Config(text=text, rnn_size=16, num_layers=2, embedding_size=8, batch_size=8, seq_length=16,
                        max_epochs=1, eval_every=50, seed=1, **model)
        train(config, str(base / f"{kind}-run"), verbose=0)
        made[kind] = base / kind
        export_bundle(str(base / f"{kind}-run"), str(made[kind]), batch=2 if kind == "lstm" else None)
    return made


@pytest.fixture(scope="module")
def edited(bundles, tmp_path_factory):
    """Each case's bundle (a copy with manifest.json edited), in one folder, the page's site."""
    site = tmp_path_factory.mktemp("site")
    for name, (kind, edit, _) in CASES.items():
        shutil.copytree(bundles[kind], site / name)
        text = (site / name / "manifest.json").read_text(encoding="utf-8")
        if edit is None:
            text = text[:len(text) // 2]
        else:
            doc = json.loads(text)
            edit(doc)
            text = json.dumps(doc, indent=1)
        (site / name / "manifest.json").write_text(text, encoding="utf-8")
    return site


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def assert_names(line, name, model):
    for fragment in CASES[name][2]:
        assert fragment.format(model=model) in line, line
    assert "export" in line, line


def test_kerasrnn_edge_and_the_java_core_accept_the_unedited_bundles(bundles, java_classes):
    """The checks refuse only what is wrong: the bundles as exported pass (the page: tests/test_web.py)."""
    from kerasrnn_edge.sampler import EdgeSampler

    for bundle in bundles.values():
        for runtime in ("ai-edge-litert", "onnxruntime"):
            sampler = EdgeSampler.load(str(bundle), runtime)
            assert len("".join(sampler.generate("", 5, seed=1))) == 5
            if bundle.name == "lstm":
                assert len(sampler.generate_batch("", 5, num_samples=2, seed=1)) == 2
        done = java_check(java_classes, bundle)
        assert done.returncode == 0 and done.stdout.startswith("ok: a 2-layer"), done.stderr


@pytest.mark.parametrize("runtime", ["ai-edge-litert", "onnxruntime"])
@pytest.mark.parametrize("name", list(CASES))
def test_kerasrnn_edge_refuses_an_edited_bundle_in_one_line(edited, name, runtime, capsys):
    from kerasrnn_edge import cli

    before = digests(edited / name)
    assert cli.main(["sample", str(edited / name), "--runtime", runtime, "--length", "5"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("kerasrnn-edge: error: "), err
    assert_names(err, name, TFLITE if runtime == "ai-edge-litert" else ONNX)
    assert digests(edited / name) == before


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory):
    """The core compiled (javac), or a skip where there is no JDK."""
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("javac/java not found: install a JDK (Debian: default-jdk-headless)")
    classes = tmp_path_factory.mktemp("java-classes")
    sources = [os.path.join(root, n) for root, _, names in os.walk(CORE_SOURCES) for n in names if n.endswith(".java")]
    subprocess.run(["javac", "--release", "8", "-nowarn", "-encoding", "UTF-8", "-d", str(classes), *sources], check=True)
    return classes


def java_check(classes, bundle):
    return subprocess.run(["java", "-cp", str(classes), "org.kerasrnn.edge.CheckBundle", str(bundle)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", list(CASES))
def test_java_core_refuses_an_edited_bundle_in_one_line(edited, name, java_classes):
    before = digests(edited / name)
    done = java_check(java_classes, edited / name)
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(f"error: {edited / name}: "), done.stderr
    assert_names(done.stderr, name, TFLITE)
    assert digests(edited / name) == before


@pytest.fixture(scope="module")
def page(bundles, edited, tmp_path_factory):
    """The page over the edited bundles (each opened with ?bundle=NAME/), served, in headless Chromium."""
    from test_web import node_or_skip, open_browser

    node_or_skip()
    from kerasrnn.serve_web import make_server
    from kerasrnn_export.web import write_site

    write_site(str(bundles["lstm"]), str(edited))  # the page and its runtime (and a bundle at the root, unused)
    httpd = make_server(str(edited), port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    browser = open_browser(str(tmp_path_factory.mktemp("chromium-profile")))
    yield browser, f"http://127.0.0.1:{httpd.server_address[1]}/"
    browser.quit()
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("name", list(CASES))
def test_page_refuses_an_edited_bundle_in_one_sentence(edited, page, name):
    from test_web import open_page, page_text

    browser, url = page
    before = digests(edited / name)
    assert open_page(browser, f"{url}?bundle={name}/") == "error"
    message = page_text(browser, "error")
    assert "\n" not in message and re.match(r"^(manifest\.json|step\.onnx)\b", message), message
    assert_names(message, name, ONNX)
    assert page_text(browser, "model") == "no model loaded"
    assert digests(edited / name) == before
