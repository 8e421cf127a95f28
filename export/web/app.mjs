// The page: loads the bundle (manifest.json, step.onnx) from its own origin, checks it, runs the
// sampling contract of contract.mjs over onnxruntime-web (wasm, one thread) and streams the text.
// Settings come from the form or the URL (?prime=ROMEO:&seed=3&temperature=0.8&length=200&run=1).
import { UserError, checkFileTensors, checkManifest, generate, onnxEntry, topProbabilities } from "./contract.mjs";

const $ = (id) => document.getElementById(id);
const form = $("settings");
const FIELDS = ["prime", "temperature", "top_k", "top_p", "length", "seed"];
const field = (name) => form.elements.namedItem(name); // (form.elements.length is the number of fields)
const PAINT_MS = 40; // the text is repainted (and Stop can act) this often while generating

let model = null; // {vocab, step}
let running = null; // {stopped} while generating

function setState(state) {
  document.body.dataset.state = state;
  $("generate").disabled = state === "loading" || state === "running" || model === null;
  $("stop").disabled = state !== "running";
}

function showError(e) {
  const message = e instanceof UserError ? e.message : `Unexpected error (${e?.message ?? e}): reload the page, or export the site again.`;
  $("error").textContent = message;
  if (model === null) $("model").textContent = "no model loaded";
  setState("error");
}

window.addEventListener("unhandledrejection", (event) => showError(event.reason));
window.addEventListener("error", (event) => showError(event.error ?? event.message));

// The bundle directory: this page's own directory, or ?bundle=DIR/ (same origin) for another one.
const params = new URLSearchParams(location.search);
const bundleUrl = new URL(params.get("bundle") ?? "./", location.href);

async function fetchOk(name) {
  const url = new URL(name, bundleUrl);
  let response;
  try {
    response = await fetch(url, { cache: "no-cache" });
  } catch (e) {
    throw new UserError(`${name} could not be fetched (${e.message}): serve the site with kerasrnn serve-web DIR.`);
  }
  if (!response.ok) throw new UserError(`${name} is missing (HTTP ${response.status}): the site is incomplete, export it again with kerasrnn export RUN --web DIR.`);
  return response;
}

async function readManifest() {
  const text = await (await fetchOk("manifest.json")).text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`manifest.json is not valid JSON (${e.message}): the site is corrupt, export it again.`);
  }
}

// The file's bytes, after checking its size and SHA-256 against the manifest (SPEC.md: never run a
// half-copied or corrupted file).
async function verifiedBytes(entry) {
  const bytes = await (await fetchOk(entry.path)).arrayBuffer();
  if (bytes.byteLength !== entry.bytes) {
    throw new UserError(`${entry.path} has ${bytes.byteLength} bytes, not ${entry.bytes} as manifest.json says: the site is incomplete or corrupt, export it again.`);
  }
  if (!crypto.subtle) throw new UserError("This browser cannot check the model's sha256 over plain http from another host: open the page on 127.0.0.1 (kerasrnn serve-web) or over https.");
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== entry.sha256) throw new UserError(`${entry.path} does not match its sha256 in manifest.json: the site is corrupt, export it again.`);
  return new Uint8Array(bytes);
}

async function loadRuntime() {
  try {
    const ort = await import("./ort/ort.wasm.min.mjs");
    ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
    ort.env.wasm.numThreads = 1; // batch-1 steps gain nothing from threads (and threads need cross-origin isolation)
    ort.env.logLevel = "error";
    return ort;
  } catch (e) {
    throw new UserError(`onnxruntime-web could not be loaded from ort/ (${e.message}): export the site again with kerasrnn export RUN --web DIR.`);
  }
}

// The ONNX step model (SPEC.md "Tensors"): the caller holds the states; one run feeds any number of tokens
// through a "steps" entry, one token through a "step" entry (a GPT's, SPEC.md "Transformer step models").
class OnnxStepModel {
  constructor(ort, session, info, oneToken) {
    Object.assign(this, { ort, session, info, oneToken, startToken: info.startToken });
    this.outputs = ["logits", ...info.stateNames.map((n) => `next_${n}`)];
  }

  reset() {
    this.states = this.info.startState.map((values, i) => new this.ort.Tensor("float32", values.slice(), this.info.stateShapes[i]));
  }

  async feed(ids) {
    let logits;
    for (const run of this.oneToken ? ids.map((id) => [id]) : [ids]) {
      const feeds = { token: new this.ort.Tensor("int32", Int32Array.from(run), [run.length]) };
      this.info.stateNames.forEach((name, i) => { feeds[name] = this.states[i]; });
      const out = await this.session.run(feeds, this.outputs);
      this.states = this.info.stateNames.map((name) => out[`next_${name}`]);
      logits = out.logits.data;
    }
    return logits;
  }
}

async function load() {
  const doc = await readManifest();
  const info = checkManifest(doc);
  const entry = onnxEntry(doc);
  const [ort, bytes] = await Promise.all([loadRuntime(), verifiedBytes(entry)]);
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (e) {
    throw new UserError(`onnxruntime-web cannot load ${entry.path} (${e.message}): export the site again with this kerasrnn.`);
  }
  checkFileTensors(doc, entry.path, session.inputMetadata, session.outputMetadata);
  const m = doc.model ?? {};
  const loss = doc.source?.val_loss;
  const shape = m.type === "gpt" ? `GPT ${m.num_layers}×${m.width}, ${m.num_heads} heads, context ${m.context}`
    : m.type !== undefined ? `a ${m.type} model`  // another family: its state is the manifest's list
    : `${m.cell?.toUpperCase() ?? "?"} ${m.num_layers}×${m.rnn_size}`;
  $("model").textContent = `${shape}, ${info.vocab.kind} vocabulary of ${info.vocab.size}` +
    `${typeof loss === "number" ? `, validation loss ${loss.toFixed(3)}` : ""} · onnxruntime-web ${ort.env.versions?.web ?? ""} (wasm)`;
  const step = new OnnxStepModel(ort, session, info, entry.signature === "step");
  await warmUp(step);
  return { vocab: info.vocab, step };
}

// V8 first runs WebAssembly from a quick baseline compile and recompiles hot functions later; until
// then a step costs several times more. Steps on the start token (then thrown away) before the first
// text make its speed the engine's, not the compiler's.
async function warmUp(step, runs = 400, ms = 1500) {
  $("stats").textContent = "warming up the runtime…";
  const started = performance.now();
  step.reset();
  for (let n = 0; n < runs && performance.now() - started < ms; n++) await step.feed([step.startToken]);
  $("stats").textContent = "";
}

function readSettings() {
  const get = (name) => field(name).value.trim();
  const number = (name, label) => {
    const value = Number(get(name));
    if (get(name) === "" || !Number.isFinite(value)) throw new UserError(`${label} must be a number (got "${get(name)}").`);
    return value;
  };
  if (!/^\d+$/.test(get("seed"))) throw new UserError(`seed must be a whole number >= 0 (got "${get("seed")}").`);
  return {
    prime: field("prime").value, // a textarea, not trimmed: spaces and newlines in a prime count
    temperature: number("temperature", "temperature"),
    topK: number("top_k", "top-k"),
    topP: number("top_p", "top-p"),
    length: number("length", "length"),
    seed: BigInt(get("seed")),
  };
}

function updateLink() {
  const query = new URLSearchParams();
  if (params.has("bundle")) query.set("bundle", params.get("bundle"));
  for (const name of FIELDS) query.set(name, field(name).value);
  query.set("run", "1");
  $("link").href = `?${query}`;
}

function tokenLabel(vocab, id) {
  const c = vocab.kind === "char" ? vocab.chars[id] : id < 0x80 ? String.fromCharCode(id) : null;
  if (c === null) return `0x${id.toString(16).toUpperCase()}`;
  return { "\n": "↵", " ": "␣", "\t": "⇥", "\r": "␍" }[c] ?? (c < " " ? `0x${id.toString(16)}` : c);
}

function showTop5(vocab, piece, temperature) {
  const table = $("top5");
  table.replaceChildren();
  for (const [id, p] of topProbabilities(piece.logits, temperature)) {
    const row = table.insertRow();
    row.className = id === piece.token ? "chosen" : "";
    Object.assign(row.insertCell(), { className: "token", textContent: tokenLabel(vocab, id) });
    row.insertCell().innerHTML = `<div class="bar" style="width:${(100 * p).toFixed(1)}%"></div>`;
    Object.assign(row.insertCell(), { className: "p", textContent: `${(100 * p).toFixed(1)}%` });
  }
}

async function run() {
  if (!model || running) return;
  $("error").textContent = "";
  const settings = readSettings();
  updateLink();
  const output = $("output");
  const stats = $("stats");
  running = { stopped: false };
  setState("running");
  let text = settings.prime;
  let count = 0;
  let last = null;
  output.textContent = text;
  const started = performance.now();
  let painted = started;
  const paint = () => {
    const seconds = (performance.now() - started) / 1000;
    const rate = count / Math.max(seconds, 1e-9);
    output.textContent = text;
    const unit = model.vocab.kind === "byte" ? "bytes" : "characters";
    stats.textContent = `${count} of ${settings.length} ${unit} · ${seconds.toFixed(2)} s · ${Math.round(rate).toLocaleString("en")} chars/s`;
    document.body.dataset.charsPerSecond = rate.toFixed(1);
    if (last) showTop5(model.vocab, last, settings.temperature);
  };
  try {
    for await (const piece of generate(model.step, model.vocab, settings)) {
      text += piece.text;
      count++;
      last = piece;
      if (performance.now() - painted > PAINT_MS) {
        paint();
        await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint and Stop be clicked
        painted = performance.now();
        if (running.stopped) break;
      }
    }
    paint();
    setState(running.stopped ? "stopped" : "done");
  } finally {
    running = null;
    if (document.body.dataset.state === "running") setState("error");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run().catch(showError);
});
$("stop").addEventListener("click", () => { if (running) running.stopped = true; });
form.addEventListener("input", updateLink);

for (const name of FIELDS) if (params.has(name)) field(name).value = params.get(name);
updateLink();

try {
  model = await load();
  setState("ready");
  if (params.get("run") === "1") await run();
} catch (e) {
  showError(e);
}
