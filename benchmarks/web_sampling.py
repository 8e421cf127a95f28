"""Web sampling speed: chars/s in headless Chromium (one wasm thread) beside Python's runtimes, same run.

Two untrained models (speed does not depend on the weights), vocab 65: the `tiny` preset (1x256 LSTM,
embedding 64) and the char-rnn-sized 3x512 LSTM (embedding 128). For each, `length` characters after
the prime "ROMEO:" at temperature 0.8, seed 3 (chars/s: the whole generate call, prime included):

- the page itself (`kerasrnn export --web`, onnxruntime-web): the rate it shows, repainting as it goes
  (after its warm-up on load: 400 steps or 1.5 s, see app.mjs);
- the bare generate loop in the browser (contract.mjs, no page) on onnxruntime-web (ONNX fp32) and on
  LiteRT.js (@litertjs/core, TFLite fp32 and int8);
- Python: `EdgeSampler.generate` on onnxruntime (fp32) and ai-edge-litert (fp32, int8).

Each browser text is compared with the Python text of the same file. Needs chromium, chromium-driver,
selenium, and `npm ci` in export/web (LiteRT.js is its devDependency).

    python benchmarks/web_sampling.py [--length 2000] [--repeats 3]
"""
import datetime
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from kerasrnn.config import Config  # noqa: E402
from kerasrnn.models.recurrent import build_model  # noqa: E402
from kerasrnn.files import save_model, write_json  # noqa: E402
from kerasrnn_edge.errors import ArgumentParser, one_line_errors  # noqa: E402
from kerasrnn_edge.sampler import EdgeSampler  # noqa: E402
from kerasrnn_edge.vocab import Vocab  # noqa: E402
from kerasrnn.export import export_bundle  # noqa: E402
from kerasrnn.serve_web import make_server  # noqa: E402
from kerasrnn_export.web import WEB_SOURCE, write_site  # noqa: E402
from test_web import open_browser  # noqa: E402

CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # tiny-shakespeare's 65
MODELS = {"tiny (1×256)": dict(cell="lstm", rnn_size=256, num_layers=1, embedding_size=64),
          "3×512": dict(cell="lstm", rnn_size=512, num_layers=3, embedding_size=128)}
SETTINGS = dict(prime="ROMEO:", temperature=0.8, seed=3)
LITERT = os.path.join(WEB_SOURCE, "node_modules", "@litertjs")

# The bare loop: contract.mjs's generate over one runtime, nothing painted. ?runtime=ort|litert&file=...
BENCH_PAGE = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="importmap">{"imports": {"@litertjs/wasm-utils": "./litert/wasm-utils/dist/index.js"}}</script>
<body data-state="loading"><script type="module">
import { checkManifest, generate } from "./contract.mjs";
const q = new URLSearchParams(location.search);
const doc = await (await fetch("bundle/manifest.json")).json();
const info = checkManifest(doc);
const bytes = new Uint8Array(await (await fetch("bundle/" + q.get("file"))).arrayBuffer());
let model;
if (q.get("runtime") === "ort") {
  const ort = await import("./ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  model = { startToken: info.startToken,
    reset() { this.states = info.startState.map((s, i) => new ort.Tensor("float32", s.slice(), info.stateShapes[i])); },
    async feed(ids) {
      const feeds = { token: new ort.Tensor("int32", Int32Array.from(ids), [ids.length]) };
      info.stateNames.forEach((n, i) => { feeds[n] = this.states[i]; });
      const out = await session.run(feeds);
      this.states = info.stateNames.map((n) => out["next_" + n]);
      return out.logits.data;
    } };
} else {
  const litert = await import("./litert/core/dist/index.js");
  await litert.loadLiteRt(new URL("./litert/core/wasm/", location.href).href);
  const compiled = await litert.loadAndCompile(bytes, { accelerator: "wasm" });
  model = { startToken: info.startToken,
    reset() { this.states = info.startState.map((s) => s.slice()); },
    async feed(ids) {  // one run per token: the TFLite files have only "step"
      let logits;
      for (const id of ids) {
        const inputs = { token: new litert.Tensor(Int32Array.of(id), [1]) };
        info.stateNames.forEach((n, i) => { inputs[n] = new litert.Tensor(this.states[i], info.stateShapes[i]); });
        const out = await compiled.run("step", inputs);
        logits = out.logits.toTypedArray().slice();
        this.states = info.stateNames.map((n) => out["next_" + n].toTypedArray().slice());
        for (const t of [...Object.values(inputs), ...Object.values(out)]) t.delete();
      }
      return logits;
    } };
}
// The page's warm-up (app.mjs warmUp): V8 recompiles hot WebAssembly functions after a while.
const warm = performance.now();
model.reset();
for (let n = 0; n < 400 && performance.now() - warm < 1500; n++) await model.feed([info.startToken]);
const settings = { prime: q.get("prime"), length: Number(q.get("length")), temperature: Number(q.get("temperature")), seed: q.get("seed") };
let text = settings.prime;
const started = performance.now();
for await (const piece of generate(model, info.vocab, settings)) text += piece.text;
document.body.dataset.charsPerSecond = settings.length / ((performance.now() - started) / 1000);
document.getElementById("output").textContent = text;
document.body.dataset.state = "done";
</script><pre id="output"></pre></body>
"""


def make_site(directory, model_settings):
    vocab = Vocab("char", CHARS)
    run_dir = os.path.join(directory, "run")
    os.makedirs(run_dir)
    save_model(build_model(vocab.size, 1, None, **model_settings), os.path.join(run_dir, "best.keras"))
    write_json(os.path.join(run_dir, "config.json"), Config(**model_settings).to_json())
    write_json(os.path.join(run_dir, "vocab.json"), vocab.to_json())
    bundle, site = os.path.join(directory, "site", "bundle"), os.path.join(directory, "site")
    export_bundle(run_dir, bundle)
    write_site(bundle, site)
    with open(os.path.join(site, "bench.html"), "w") as f:
        f.write(BENCH_PAGE)
    for package, folders in [("core", ("dist", "wasm")), ("wasm-utils", ("dist",))]:
        for folder in folders:
            shutil.copytree(os.path.join(LITERT, package, folder), os.path.join(site, "litert", package, folder))
    return site, bundle


def python_rate(bundle, runtime, precision, length):
    sampler = EdgeSampler.load(bundle, runtime, precision)
    sum(1 for _ in sampler.generate(length=400, **SETTINGS))  # warm-up, as the page's
    start = time.perf_counter()
    text = SETTINGS["prime"] + "".join(sampler.generate(length=length, **SETTINGS))
    return length / (time.perf_counter() - start), text


def browser_rate(browser, url, timeout=600):
    browser.get(url)
    deadline = time.monotonic() + timeout
    while browser.execute_script("return document.body.dataset.state") not in ("done", "error"):
        if time.monotonic() > deadline:
            raise TimeoutError(url)
        time.sleep(0.05)
    error = browser.execute_script("return document.getElementById('error')?.textContent")
    if error:
        raise RuntimeError(error)
    rate = float(browser.execute_script("return document.body.dataset.charsPerSecond"))
    return rate, browser.execute_script("return document.getElementById('output').textContent")


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=2000, help="characters per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each (the best is shown)")
    args = parser.parse_args()
    if not os.path.isdir(LITERT):
        sys.exit(f"{LITERT} is missing: run npm ci in {WEB_SOURCE}")
    print(f"{datetime.date.today()}  {platform.processor() or platform.machine()}  load average "
          f"{os.getloadavg()[0]:.2f}  {args.length} chars after {SETTINGS['prime']!r}, best of {args.repeats}")
    with tempfile.TemporaryDirectory() as directory:
        browser = open_browser(os.path.join(directory, "chromium-profile"))
        try:
            print(f"browser: {browser.capabilities['browserName']} {browser.capabilities['browserVersion']}")
            for name, model_settings in MODELS.items():
                site, bundle = make_site(os.path.join(directory, name.split()[0]), model_settings)
                server = make_server(site, 0)
                threading.Thread(target=server.serve_forever, daemon=True).start()
                base = f"http://127.0.0.1:{server.server_address[1]}/"
                query = urllib.parse.urlencode({**SETTINGS, "length": args.length})
                reference = {}
                rows = []
                for runtime, precision in [("onnxruntime", "fp32"), ("ai-edge-litert", "fp32"),
                                           ("ai-edge-litert", "int8")]:
                    results = [python_rate(bundle, runtime, precision, args.length) for _ in range(args.repeats)]
                    reference[runtime, precision] = results[0][1]
                    rows.append((f"Python {runtime} {precision}", max(r[0] for r in results), ""))
                for label, url, same_as in [
                        ("page (index.html), onnxruntime-web fp32", f"index.html?{query}&run=1",
                         ("onnxruntime", "fp32")),
                        ("bare loop, onnxruntime-web fp32", f"bench.html?{query}&runtime=ort&file=step.onnx",
                         ("onnxruntime", "fp32")),
                        ("bare loop, LiteRT.js fp32", f"bench.html?{query}&runtime=litert&file=step_fp32.tflite",
                         ("ai-edge-litert", "fp32")),
                        ("bare loop, LiteRT.js int8", f"bench.html?{query}&runtime=litert&file=step_int8.tflite",
                         ("ai-edge-litert", "int8"))]:
                    try:
                        results = [browser_rate(browser, base + url) for _ in range(args.repeats)]
                    except Exception as e:  # a runtime that cannot run the file is a row, not the end
                        rows.append((label, float("nan"), f"failed: {' '.join(str(e).split())[:150]}"))
                        continue
                    notes = []
                    for key in dict.fromkeys([same_as, ("onnxruntime", "fp32")]):
                        same = all(text == reference[key] for _, text in results)
                        notes.append(f"text {'=' if same else '≠'} Python {' '.join(key)}")
                    rows.append((label, max(r[0] for r in results), ", ".join(notes)))
                server.shutdown()
                server.server_close()
                print(f"\n{name} LSTM ({os.path.getsize(os.path.join(bundle, 'step.onnx')) / 1e6:.1f} MB ONNX)")
                python_ort = rows[0][1]
                for label, rate, note in rows:
                    print(f"  {label:<44} {rate:>9,.0f} chars/s  {rate / python_ort:5.2f}×  {note}", flush=True)
        finally:
            browser.quit()


if __name__ == "__main__":
    with one_line_errors():
        main()
