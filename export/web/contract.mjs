// The sampling contract of export/SPEC.md (contract version 2) in JavaScript: SplitMix64, choose,
// generate, the vocabulary and the manifest checks. The page (app.mjs) and the node tests
// (contract.test.mjs) both use this one file; it needs no runtime and no DOM.

export const FORMAT = "kerasrnn-bundle";
export const FORMAT_VERSION = 1;
export const SAMPLING_CONTRACT = 2;

// A mistake the user can fix, said in one sentence (the page shows it as it is).
export class UserError extends Error {}

// SplitMix64 on BigInt: every product and sum wrapped to 64 bits.
export class SplitMix64 {
  constructor(seed) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }

  nextU64() {
    this.state = BigInt.asUintN(64, this.state + 0x9e3779b97f4a7c15n);
    let z = this.state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  }

  // 53 random bits: the Number conversion is exact below 2^53.
  nextDouble() {
    return Number(this.nextU64() >> 11n) * 2 ** -53;
  }
}

// The seed of stream `i` of a batch sampled with `seed` (SPEC.md "Many samples"): `seed` for stream 0;
// for i >= 1 the i-th number a SplitMix64 seeded with `seed` returns. Seeds and i: anything BigInt takes.
export function streamSeed(seed, i) {
  const index = BigInt.asUintN(64, BigInt(i));
  if (index === 0n) return BigInt.asUintN(64, BigInt(seed));
  return new SplitMix64(BigInt.asUintN(64, BigInt(seed) + (index - 1n) * 0x9e3779b97f4a7c15n)).nextU64();
}

export function checkParams({ temperature = 1, topK = 0, topP = 1, length = 0 } = {}) {
  if (!(temperature > 0)) throw new UserError(`temperature must be > 0 (got ${temperature}); use argmax for greedy decoding`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new UserError(`top-k must be a whole number >= 0 (got ${topK}); 0 keeps every token`);
  if (!(topP > 0 && topP <= 1)) throw new UserError(`top-p must be in (0, 1] (got ${topP}); 1 keeps every token`);
  if (!(Number.isInteger(length) && length >= 0)) throw new UserError(`length must be a whole number >= 0 (got ${length})`);
}

// Ids sorted by value descending, ties by smaller id first (numpy's stable argsort of -values).
function descending(values) {
  const ids = Array.from(values, (_, i) => i);
  return ids.sort((a, b) => (values[a] > values[b] ? -1 : values[a] < values[b] ? 1 : a - b));
}

// One token id from `logits` (V float32 values), drawing at most one number from `rng`.
// Every step is IEEE double arithmetic in the order SPEC.md gives (Math.exp may differ from numpy's
// exp by an ulp, as Java's does).
export function choose(logits, rng, { temperature = 1, topK = 0, topP = 1, argmax = false } = {}) {
  const V = logits.length;
  if (argmax) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let x = Float64Array.from(logits, (v) => v / temperature);
  if (topK > 0 && topK < V) {
    const kept = new Float64Array(V).fill(-Infinity);
    for (const i of descending(x).slice(0, topK)) kept[i] = x[i];
    x = kept;
  }
  let m = -Infinity;
  for (const v of x) if (v > m) m = v;
  const w = x.map((v) => Math.exp(v - m));
  if (topP < 1) {
    const order = descending(w);
    const cum = new Float64Array(V);
    let sum = 0;
    order.forEach((id, j) => { cum[j] = sum += w[id]; });
    const target = topP * cum[V - 1];
    let n = 0;
    while (n < V && !(cum[n] >= target)) n++;
    for (const id of order.slice(n + 1)) w[id] = 0;
  }
  const cum = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) cum[i] = sum += w[i];
  const target = rng.nextDouble() * cum[V - 1];
  for (let i = 0; i < V; i++) if (target < cum[i]) return i;
  for (let i = V - 1; i > 0; i--) if (w[i] > 0) return i;
  return 0;
}

// The vocabulary of a manifest's `vocab`: "char" (ids index `chars` in its order, which a fine-tuned
// run's grown vocabulary leaves unsorted), "byte" (ids are byte values) or "bpe" (ids index `pieces`:
// a text piece, a byte value, or null for the unknown piece; SPEC.md "Vocabulary").
export class Vocab {
  constructor({ kind, chars, pieces } = {}) {
    if (kind === "bpe") {
      const texts = Array.isArray(pieces) ? pieces.filter((p) => typeof p === "string") : [];
      const bytes = Array.isArray(pieces) ? pieces.filter((p) => Number.isInteger(p) && p >= 0 && p < 256) : [];
      if (!Array.isArray(pieces) || new Set(texts).size !== texts.length || new Set(bytes).size !== 256
          || texts.some((p) => p === "" || p.includes("\n"))
          || texts.length + bytes.length + pieces.filter((p) => p === null).length !== pieces.length) {
        throw new UserError("the vocabulary is malformed (its pieces are not 256 byte pieces and distinct text pieces): export the bundle again");
      }
      this.pieces = pieces;
      this.index = new Map();
      this.byteIds = new Array(256);
      const utf8 = new TextEncoder();
      this.pieceBytes = pieces.map((p, i) => {
        if (typeof p === "string") {
          this.index.set(p, i);
          return utf8.encode(p);
        }
        if (p === null) return new Uint8Array(0);
        this.byteIds[p] = i;
        return Uint8Array.of(p);
      });
    } else if (kind === "char") {
      if (!Array.isArray(chars) || chars.some((c) => typeof c !== "string" || [...c].length !== 1)) {
        throw new UserError("the vocabulary is malformed (chars is not a list of single characters): export the bundle again");
      }
      this.chars = chars;
      this.index = new Map(chars.map((c, i) => [c, i]));
      if (this.index.size !== chars.length) {
        throw new UserError("the vocabulary is malformed (a character is listed twice): export the bundle again");
      }
    } else if (kind !== "byte") {
      throw new UserError(`the vocabulary kind ${JSON.stringify(kind)} is unknown: upgrade the web sampler, or export the bundle again`);
    }
    this.kind = kind;
    this.size = kind === "char" ? chars.length : kind === "bpe" ? pieces.length : 256;

  }

  // Ids of a prime; characters outside a char vocabulary are an error naming them.
  encode(text) {
    if (this.kind === "byte") return Array.from(new TextEncoder().encode(text));
    if (this.kind === "bpe") {
      // No text piece holds a line feed, so each line is encoded alone (SPEC.md), the line feed a byte piece.
      return text.split("\n").flatMap((line, i) => (i ? [this.byteIds[10]] : []).concat(this.bpe(line)));
    }
    const unknown = [...new Set([...text].filter((c) => !this.index.has(c)))].sort();
    if (unknown.length) {
      const shown = unknown.slice(0, 20).map((c) => JSON.stringify(c)).join(" ");
      throw new UserError(`the prime has characters outside the vocabulary: ${shown}${unknown.length > 20 ? ` … (${unknown.length} in all)` : ""}; remove them`);
    }
    return [...text].map((c) => this.index.get(c));
  }

  // SPEC.md's BPE encoding of a line: merge the adjacent pair whose concatenation is the text piece of
  // smallest id (the leftmost on a tie) until none is; then pieces, or the byte pieces of a character.
  bpe(line) {
    const symbols = [...line];
    for (;;) {
      let best = -1;
      let bestId = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const id = this.index.get(symbols[i] + symbols[i + 1]);
        if (id !== undefined && id < bestId) [best, bestId] = [i, id];
      }
      if (best < 0) break;
      symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
    }
    const utf8 = new TextEncoder();
    return symbols.flatMap((s) => (this.index.has(s) ? [this.index.get(s)] : Array.from(utf8.encode(s), (b) => this.byteIds[b])));
  }

  // A function id -> text for streaming. Bytes go through an incremental UTF-8 decoder that holds
  // back an incomplete sequence and writes U+FFFD for an invalid one, as Python's "replace" does;
  // ignoreBOM keeps a leading U+FEFF, which Python's "utf-8" codec keeps too. Never flushed: an
  // incomplete sequence at the end is not printed, as in kerasrnn-edge.
  // A bpe id is the bytes of its piece, decoded the same way.
  decoder() {
    if (this.kind === "char") return (id) => this.chars[id];
    const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    let afterED = false;
    let held = "";
    const decodeByte = (b) => {
      const text = utf8.decode(Uint8Array.of(b), { stream: true });
      // ED A0..BF starts a UTF-16 surrogate: TextDecoder replaces it at once, Python only when a
      // third byte comes. Hold it back too, so that a text ending there prints what Python prints.
      if (afterED && b >= 0xa0 && b <= 0xbf) {
        afterED = false;
        held = text;
        return "";
      }
      afterED = b === 0xed;
      const out = held + text;
      held = "";
      return out;
    };
    if (this.kind === "byte") return decodeByte;
    return (id) => Array.from(this.pieceBytes[id], decodeByte).join("");
  }
}

export function checkStop(stop) {
  if (stop.some((s) => !s)) throw new UserError("a stop string must not be empty: give the text that ends the generation");
}

// Where `text` ends by the stop strings (SPEC.md "Stop strings"): the start of the leftmost occurrence
// of any, or -1; `checked`: the length of a prefix known to hold none.
export function stopIndex(text, stop, checked = 0) {
  let cut = -1;
  for (const s of stop) {
    const i = text.indexOf(s, Math.max(0, checked - s.length + 1));
    if (i >= 0 && (cut < 0 || i < cut)) cut = i;
  }
  return cut;
}

// Streams text up to the first stop string, never past it: add(piece) returns what may be written now,
// holding back a tail that could begin a stop string; `stopped` once one has occurred.
export class StopText {
  constructor(stop) { Object.assign(this, { stop, text: "", shown: 0, stopped: false }); }
  add(piece) {
    const checked = this.text.length;
    this.text += piece;
    let end = stopIndex(this.text, this.stop, checked);
    this.stopped = end >= 0;
    if (!this.stopped) {
      let held = 0;
      for (const s of this.stop) for (let k = 1; k < s.length; k++) if (k > held && this.text.endsWith(s.slice(0, k))) held = k;
      end = this.text.length - held;
    }
    const out = this.text.slice(this.shown, end);
    this.shown = end;
    return out;
  }
  rest() {
    const out = this.text.slice(this.shown);
    this.shown = this.text.length;
    return out;
  }
}

// Yields {text, token, logits} `length` times, or until the text so far ends with `until` (a stream of
// SPEC.md "Many samples"; "" never stops), or holds a `stop` string (SPEC.md "Stop strings": then
// `text` is what may be written, the stop string never is): `logits` are those `token` was chosen from.
// `model` is any step model: `startToken`, `reset()` (to the start state) and
// `async feed(ids) -> logits after the last id`. Bad settings and prime characters throw before
// anything is fed.
export async function* generate(model, vocab, { prime = "", length = 100, temperature = 1, topK = 0, topP = 1, seed = 0, argmax = false, until = "", stop = [] } = {}) {
  checkParams({ temperature, topK, topP, length });
  checkStop(stop);
  const ids = vocab.encode(prime);
  const rng = new SplitMix64(seed);
  const decode = vocab.decoder();
  const stopped = new StopText(stop);
  model.reset();
  let logits = await model.feed([model.startToken, ...ids]);
  let text = "";
  for (let n = 0; n < length; n++) {
    const token = choose(logits, rng, { temperature, topK, topP, argmax });
    let piece = decode(token);
    if (stop.length) piece = stopped.add(piece) + (stopped.stopped || n + 1 < length ? "" : stopped.rest());
    yield { text: piece, token, logits };
    if (stopped.stopped || (until && (text += piece).endsWith(until))) return;
    if (n + 1 < length) logits = await model.feed([token]);
  }
}

// log softmax of float32 logits in double (SPEC.md "Beam search", step 2).
export function logProbs(logits) {
  let m = -Infinity;
  for (const v of logits) if (v > m) m = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - m);
  const log = Math.log(sum);
  return Float64Array.from(logits, (v) => (v - m) - log);
}

// Beam search (SPEC.md "Beam search"): the `width` best sequences, best first, each {ids, text, logProb,
// score, stopped}. `model` is a batched step model: `batch` (>= width rows), `startToken`, `reset()`,
// `async feed(rows)` (one array of ids per row -> one logits array per row, after the last id) and
// `select(rows)` (row r takes row rows[r]'s state).
export async function beamSearch(model, vocab, { prime = "", length = 100, width = 4, lengthPenalty = 0, stop = [] } = {}) {
  if (!(Number.isInteger(width) && width >= 1)) throw new UserError(`the beam width must be a whole number >= 1 (got ${width})`);
  if (!(lengthPenalty >= 0)) throw new UserError(`the length penalty must be >= 0 (got ${lengthPenalty})`);
  checkStop(stop);
  if (model.batch < width) throw new UserError(`a beam of ${width} needs a batch model of at least ${width} rows`);
  const ids = vocab.encode(prime);
  const textOf = (seq) => { const decode = vocab.decoder(); return seq.map(decode).join(""); };
  model.reset();
  let logits = await model.feed(Array.from({ length: model.batch }, () => [model.startToken, ...ids]));
  let live = [{ ids: [], logProb: 0 }];
  const finished = [];
  for (let n = 0; n < length; n++) {
    const candidates = [];
    live.forEach((beam, parent) => {
      logProbs(logits[parent]).forEach((lp, token) => candidates.push({ score: beam.logProb + lp, token, parent }));
    });
    candidates.sort((a, b) => (a.score > b.score ? -1 : a.score < b.score ? 1 : a.token - b.token || a.parent - b.parent));
    const kept = [];
    for (const { score, token, parent } of candidates.slice(0, width)) {
      const seq = { ids: [...live[parent].ids, token], logProb: score, parent };
      if (stop.length && stopIndex(textOf(seq.ids), stop) >= 0) finished.push(seq);
      else kept.push(seq);
    }
    live = kept;
    if (!kept.length || n + 1 === length) break;
    const pad = Array(model.batch - kept.length).fill(kept[0]);
    model.select([...kept, ...pad].map((seq) => seq.parent));
    logits = await model.feed([...kept, ...pad].map((seq) => [seq.ids[seq.ids.length - 1]]));
  }
  const result = [...finished.map((seq) => [seq, true]), ...live.map((seq) => [seq, false])].map(([seq, stopped]) => {
    const text = textOf(seq.ids);
    return { ids: seq.ids, text: stopped ? text.slice(0, stopIndex(text, stop)) : text, logProb: seq.logProb,
      score: seq.logProb / ((5 + seq.ids.length) / 6) ** lengthPenalty, stopped };
  });
  result.sort((a, b) => b.score - a.score);  // stable: ties keep the order above
  return result.slice(0, width);
}

// The checks of SPEC.md "Implementing a sampler", step 1, on a parsed manifest.json, and the manifest
// against itself as kerasrnn-edge checks it (export/kerasrnn_edge/manifest.py): the vocabulary's size, the
// state the model implies, every file entry's tensors at its batch. Returns {vocab, stateNames,
// stateShapes, startToken, startState (Float32Arrays), batchFiles (the optional batch models, SPEC.md
// "Batch models"; the page runs one stream and does not use them)}.
export function checkManifest(doc) {
  if (!doc || typeof doc !== "object" || doc.format !== FORMAT) {
    throw new UserError(`manifest.json is not a kerasrnn bundle manifest (format is not "${FORMAT}"): export the site again with kerasrnn export RUN --web DIR`);
  }
  if (doc.format_version !== FORMAT_VERSION) {
    throw new UserError(`manifest.json has bundle format version ${JSON.stringify(doc.format_version)}; this page reads version ${FORMAT_VERSION}: export the site again with a matching kerasrnn`);
  }
  if (doc.sampling_contract !== SAMPLING_CONTRACT) {
    const older = Number.isInteger(doc.sampling_contract) && doc.sampling_contract < SAMPLING_CONTRACT;
    throw new UserError(`manifest.json asks for sampling contract ${JSON.stringify(doc.sampling_contract)}; this page implements contract ${SAMPLING_CONTRACT}: ${older ? "export the bundle again with this kerasrnn" : "export the site again with a newer kerasrnn"}`);
  }
  const vocab = new Vocab(doc.vocab);
  if (doc.vocab.size !== vocab.size) throw malformed(`vocab.size is ${JSON.stringify(doc.vocab.size)}, but the vocabulary lists ${vocab.size} tokens`);
  if (!Array.isArray(doc.state) || !Array.isArray(doc.files)) throw malformed("no state or files list");
  if (doc.batch_files !== undefined && !Array.isArray(doc.batch_files)) throw malformed("batch_files is not a list");
  const start = doc.start;
  if (!start || typeof start !== "object") throw malformed("no start");
  if (!Number.isInteger(start.token) || start.token < 0 || start.token >= vocab.size) {
    throw malformed(`start.token is not a token id of the ${vocab.size}-token vocabulary (start token ${JSON.stringify(start.token)})`);
  }
  const widths = doc.state.map(({ name, shape, dtype }, i) => {
    if (!Array.isArray(shape) || shape.length !== 2 || shape[0] !== 1 || !(Number.isInteger(shape[1]) && shape[1] >= 1) || dtype !== "float32") {
      throw malformed(`state[${i}] (${name}) is ${dtype} ${JSON.stringify(shape)}, not float32 [1, width]`);
    }
    return shape[1];
  });
  const startState = doc.state.map(({ name, shape }) => {
    const values = start.state?.[name];
    if (!Array.isArray(values) || values.length !== shape[1]) throw malformed(`start.state.${name} does not have ${shape[1]} values, as state ${name} is ${JSON.stringify(shape)}`);
    if (!values.every((v) => typeof v === "number" && Number.isFinite(v))) throw malformed(`start state ${name} is not finite`);
    return Float32Array.from(values);
  });
  checkStateOfModel(doc.model ?? {}, doc.state.map((s) => s.name), widths);
  for (const [key, entries] of [["files", doc.files], ["batch_files", doc.batch_files ?? []]]) {
    entries.forEach((entry, i) => checkEntry(`${key}[${i}]`, entry, key === "batch_files", doc.state, vocab.size));
  }
  return {
    vocab,
    stateNames: doc.state.map((s) => s.name),
    stateShapes: doc.state.map((s) => s.shape),
    startToken: start.token,
    startState,
    batchFiles: doc.batch_files ?? [],
  };
}

const malformed = (what) => new UserError(`manifest.json is malformed: ${what}: export the bundle again (kerasrnn export)`);
const show = (spec) => `${spec?.dtype} ${JSON.stringify(spec?.shape)}`;

// The state names and widths the model implies: layer{i}_h (and _c for an LSTM) of rnn_size; a GPT's
// layer{i}_k and layer{i}_v of context * width, then filled of context (SPEC.md "Transformer step models"); a model
// of another type implies none (its state is the manifest's list).
function checkStateOfModel(model, names, widths) {
  if (model.type !== undefined && model.type !== "gpt") return;
  const layers = Array.from({ length: Number.isInteger(model.num_layers) ? model.num_layers : 0 }, (_, i) => i);
  const gpt = model.type === "gpt";
  const expected = gpt
    ? [...layers.flatMap((i) => ["k", "v"].map((kv) => [`layer${i}_${kv}`, model.context * model.width])), ["filled", model.context]]
    : layers.flatMap((i) => (model.cell === "lstm" ? ["h", "c"] : ["h"]).map((s) => [`layer${i}_${s}`, model.rnn_size]));
  const implied = gpt ? `a GPT of ${model.num_layers} layers, context ${model.context} and width ${model.width}`
    : `a ${model.num_layers}-layer ${model.cell} of size ${model.rnn_size}`;
  if (names.join() !== expected.map(([name]) => name).join()) {
    throw malformed(`state lists ${JSON.stringify(names)}, but model (${implied}) has ${JSON.stringify(expected.map(([name]) => name))}`);
  }
  expected.forEach(([name, width], i) => {
    if (widths[i] !== width) throw malformed(`state (${name}) has width ${widths[i]}, but model (${implied}) implies ${width}`);
  });
}

// A file entry's inputs and outputs against the state and the vocabulary at the entry's batch (SPEC.md "Tensors").
function checkEntry(where, entry, batchFile, state, vocabSize) {
  const rows = entry?.batch;
  if (!(batchFile ? Number.isInteger(rows) && (rows >= 1 || rows === -1) : rows === 1)) {
    throw malformed(`${where}.batch is ${JSON.stringify(rows)}, not ${batchFile ? "a batch >= 1 (or -1: any)" : "1"}`);
  }
  const token = entry.format === "onnx" && batchFile ? [rows, -1] : entry.signature === "steps" ? [-1] : [rows];
  const states = state.map(({ name, shape }) => [name, { shape: [rows, shape[1]], dtype: "float32" }]);
  const want = {
    inputs: Object.fromEntries([["token", { shape: token, dtype: "int32" }], ...states]),
    outputs: Object.fromEntries([["logits", { shape: [rows, vocabSize], dtype: "float32" }], ...states.map(([n, spec]) => [`next_${n}`, spec])]),
  };
  for (const side of ["inputs", "outputs"]) {
    const got = entry[side] ?? {};
    const at = `${where} (${entry.path}) ${side}`;
    if (Object.keys(got).sort().join() !== Object.keys(want[side]).sort().join()) {
      throw malformed(`${at} are ${JSON.stringify(Object.keys(got).sort())}, but the state implies ${JSON.stringify(Object.keys(want[side]).sort())}`);
    }
    for (const [name, spec] of Object.entries(want[side])) {
      if (show(got[name]) !== show(spec)) {
        throw malformed(`${at}.${name} is ${show(got[name])}, but the entry's batch, the state and the vocabulary imply ${show(spec)}`);
      }
    }
  }
}

// The model file's own inputs and outputs, as onnxruntime-web reports them (session.inputMetadata and
// outputMetadata: name, type, shape with a string for a free dimension), against every manifest entry
// of that file ("step" and "steps" describe one graph): a file the manifest does not describe is
// refused before its first step.
export function checkFileTensors(doc, path, inputs, outputs) {
  const reported = { inputs, outputs };
  for (const entry of [...doc.files, ...(doc.batch_files ?? [])].filter((e) => e.path === path)) {
    for (const side of ["inputs", "outputs"]) {
      const names = reported[side].map((t) => t.name).sort();
      if (names.join() !== Object.keys(entry[side]).sort().join()) {
        throw new UserError(`${path} has ${side} ${JSON.stringify(names)}, but manifest.json lists ${JSON.stringify(Object.keys(entry[side]).sort())}: the bundle is inconsistent, export it again (kerasrnn export)`);
      }
      for (const { name, type, shape } of reported[side]) {
        const want = entry[side][name];
        const fits = shape.length === want.shape.length && shape.every((have, i) => (want.shape[i] === -1 ? typeof have === "string" : typeof have === "string" || have === want.shape[i]));
        if (type !== want.dtype || !fits) {
          const shown = shape.map((d) => (typeof d === "string" ? -1 : d));
          throw new UserError(`${path}: its ${side.slice(0, -1)} "${name}" is ${type} ${JSON.stringify(shown)}, but manifest.json says ${show(want)} (signature ${entry.signature}, ${side}.${name}): the bundle is inconsistent, export it again (kerasrnn export)`);
        }
      }
    }
  }
}

// The file entry the page runs: ONNX fp32, "steps" (a prime in one run) or else "step".
export function onnxEntry(doc) {
  const entries = doc.files.filter((f) => f.format === "onnx" && f.precision === "fp32");
  const entry = entries.find((f) => f.signature === "steps") ?? entries.find((f) => f.signature === "step");
  if (!entry) throw new UserError("the bundle has no fp32 ONNX file (step.onnx): export the site again with kerasrnn export RUN --web DIR");
  return entry;
}

// Probabilities at `temperature` (softmax of logits / temperature), the `n` most likely as [id, p].
export function topProbabilities(logits, temperature, n = 5) {
  const x = Float64Array.from(logits, (v) => v / temperature);
  let m = -Infinity;
  for (const v of x) if (v > m) m = v;
  const w = x.map((v) => Math.exp(v - m));
  const total = w.reduce((a, b) => a + b, 0);
  return descending(w).slice(0, n).map((id) => [id, w[id] / total]);
}
