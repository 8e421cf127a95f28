// node --test (in export/web): the JavaScript contract against export/sampling_vectors.json, the
// vectors every sampler (Python, Java) checks itself against.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { SplitMix64, Vocab, beamSearch, choose, generate, checkManifest, streamSeed } from "./contract.mjs";

const vectors = JSON.parse(readFileSync(new URL("../sampling_vectors.json", import.meta.url), "utf8"));

test("vectors are for contract 2", () => assert.equal(vectors.contract_version, 2));

test("SplitMix64 outputs", () => {
  for (const { seed, next_u64, next_double } of vectors.rng) {
    const rng = new SplitMix64(seed);
    assert.deepEqual(next_u64.map(() => rng.nextU64().toString()), next_u64, `seed ${seed}`);
    const again = new SplitMix64(seed);
    assert.deepEqual(next_double.map(() => again.nextDouble()), next_double, `seed ${seed}`);
  }
});

test("choose: every case, every id", () => {
  assert.ok(vectors.cases.length > 0);
  for (const c of vectors.cases) {
    const rng = new SplitMix64(c.seed);
    const logits = Float32Array.from(c.logits);
    const settings = { temperature: c.temperature, topK: c.top_k, topP: c.top_p, argmax: c.argmax };
    const ids = Array.from({ length: c.draws }, () => choose(logits, rng, settings));
    assert.deepEqual(ids, c.ids, c.name);
  }
});

// make_sampling_vectors.TableModel: feed number n after a reset, counting from `start`, of token t
// returns row (start + n + t) mod rows.
class TableModel {
  constructor(table, startToken, start) {
    Object.assign(this, { table: table.map((row) => Float32Array.from(row)), startToken, start });
  }
  reset() { this.feeds = this.start; }
  async feed(ids) {
    let logits;
    for (const t of ids) logits = this.table[(this.feeds++ + t) % this.table.length];
    return logits;
  }
}

// The text of a generate case over the table model.
async function generated(table, vocab, c) {
  const model = new TableModel(table, c.start_token, c.start);
  let text = "";
  for await (const piece of generate(model, new Vocab(vocab), {
    prime: c.prime, length: c.length, temperature: c.temperature, topK: c.top_k, topP: c.top_p,
    seed: c.seed, argmax: c.argmax, stop: c.stop ?? [],
  })) text += piece.text;
  return text;
}

test("generate: every text", async () => {
  const { vocab, table, cases } = vectors.generate;
  assert.ok(cases.length > 0);
  for (const c of cases) assert.equal(await generated(table, vocab, c), c.text, c.name);
});

test("bpe tokenization: every case's ids, and its text back from them", () => {
  const { vocab, cases } = vectors.tokenization;
  const bpe = new Vocab(vocab);
  assert.ok(cases.length > 0);
  for (const { text, ids } of cases) {
    assert.deepEqual(bpe.encode(text), ids, JSON.stringify(text));
    const decode = bpe.decoder();
    assert.equal(ids.map(decode).join(""), text);
  }
});

test("bpe generate: every text", async () => {
  const { vocab, table, generate: cases } = vectors.tokenization;
  assert.ok(cases.length > 0);
  for (const c of cases) assert.equal(await generated(table, vocab, c), c.text, c.name);
});

test("stream seeds", () => {
  for (const { seed, i, stream_seed } of vectors.generate.many.stream_seeds) {
    assert.deepEqual(i.map((index) => streamSeed(seed, index).toString()), stream_seed, `seed ${seed}`);
  }
});

test("many samples: stream i is generate with its stream seed, cut after its first `until`", async () => {
  const { vocab, table, many } = vectors.generate;
  assert.ok(many.cases.length > 0);
  for (const c of many.cases) {
    const texts = [];
    for (let i = 0; i < c.num_samples; i++) {
      const model = new TableModel(table, c.start_token, c.start);
      let text = "";
      for await (const piece of generate(model, new Vocab(vocab), {
        prime: c.prime, length: c.length, temperature: c.temperature, topK: c.top_k, topP: c.top_p,
        seed: streamSeed(c.seed, i), argmax: c.argmax, until: c.until,
      })) text += piece.text;
      texts.push(text);
    }
    assert.deepEqual(texts, c.texts, c.name);
  }
});

test("generate refuses a prime outside the vocabulary, naming the characters", async () => {
  const model = new TableModel(vectors.generate.table, 0, 0);
  const pieces = generate(model, new Vocab(vectors.generate.vocab), { prime: "ROMEO: hi", length: 5 });
  await assert.rejects(pieces.next(), /outside the vocabulary: "h" "i"; remove them/);
});

test("a grown (unsorted) char vocabulary: ids follow its order; a character listed twice is refused", () => {
  // a fine-tuned run's list: the old run's sorted characters, then the new ones (export/SPEC.md)
  const grown = new Vocab({ kind: "char", size: 8, chars: ["\n", " ", "a", "b", "ß", "é", "→", "!"] });
  assert.deepEqual(grown.encode("a→é! ß\n"), [2, 6, 5, 7, 1, 4, 0]);
  assert.deepEqual([7, 6, 2].map(grown.decoder()), ["!", "→", "a"]);
  assert.throws(() => new Vocab({ kind: "char", chars: ["a", "b", "a"] }), /listed twice/);
});

test("byte decoding holds back partial UTF-8 and replaces invalid bytes (as Python's 'replace')", () => {
  // Pieces from Python: codecs.getincrementaldecoder("utf-8")(errors="replace").decode(bytes((b,))) per byte.
  const bytes = [0xef, 0xbb, 0xbf, 0x41, 0xe2, 0x82, 0xac, 0xff, 0xc3, 0x28, 0xf0, 0x9f, 0x98, 0x80, 0xed, 0xa0, 0x80, 0xe0, 0x80, 0xf0, 0x9f, 0x41, 0xe2];
  const expected = ["", "", "\ufeff", "A", "", "", "€", "\ufffd", "", "\ufffd(", "", "", "", "😀", "", "", "\ufffd\ufffd\ufffd", "", "\ufffd\ufffd", "", "", "\ufffdA", ""];
  const decode = new Vocab({ kind: "byte", size: 256 }).decoder();
  assert.deepEqual(bytes.map(decode), expected);
});

test("manifest checks: format version, contract, and the manifest against itself", () => {
  const good = {
    format: "kerasrnn-bundle", format_version: 1, sampling_contract: 2, vocab: { kind: "byte", size: 256 },
    model: { cell: "gru", num_layers: 1, rnn_size: 2 }, state: [{ name: "layer0_h", shape: [1, 2], dtype: "float32" }],
    start: { token: 10, state: { layer0_h: [0.5, -1] } }, files: [],
  };
  const tensors = (rows, token) => ({
    inputs: { token: { shape: token, dtype: "int32" }, layer0_h: { shape: [rows, 2], dtype: "float32" } },
    outputs: { logits: { shape: [rows, 256], dtype: "float32" }, next_layer0_h: { shape: [rows, 2], dtype: "float32" } },
  });
  const batchFile = { path: "step_b16_fp32.tflite", format: "tflite", signature: "step", batch: 16, ...tensors(16, [16]) };
  assert.deepEqual(checkManifest(good).startState, [Float32Array.of(0.5, -1)]);
  assert.deepEqual(checkManifest(good).batchFiles, []);
  assert.equal(checkManifest({ ...good, batch_files: [batchFile] }).batchFiles[0].batch, 16);
  assert.throws(() => checkManifest({ ...good, batch_files: [{ ...batchFile, ...tensors(16, [8]) }] }),
    /^Error: manifest\.json is malformed: batch_files\[0\] \(step_b16_fp32\.tflite\) inputs\.token is int32 \[8\], but the entry's batch, the state and the vocabulary imply int32 \[16\]: export the bundle again \(kerasrnn export\)$/);
  assert.throws(() => checkManifest({ ...good, batch_files: {} }), /batch_files is not a list/);
  assert.throws(() => checkManifest({ ...good, format_version: 2 }), /format version 2; this page reads version 1/);
  assert.throws(() => checkManifest({ ...good, sampling_contract: 1 }), /contract 1; .* export the bundle again/);
  assert.throws(() => checkManifest({ ...good, start: { token: 256, state: good.start.state } }), /start token 256/);
  assert.throws(() => checkManifest({ ...good, model: { ...good.model, rnn_size: 3 } }), /state \(layer0_h\) has width 2, but model \(a 1-layer gru of size 3\) implies 3/);
  assert.throws(() => checkManifest({ ...good, vocab: { kind: "char", size: 3, chars: ["a", "b"] } }), /vocab\.size is 3, but the vocabulary lists 2 tokens/);
});

test("stop strings: every text", async () => {
  for (const part of [vectors.generate, vectors.tokenization]) {
    assert.ok(part.stop.length > 0);
    for (const c of part.stop) assert.equal(await generated(part.table, part.vocab, c), c.text, c.name);
  }
});

// make_sampling_vectors.BeamTableModel: feeding token t to a row in state s sets it to
// (7 s + t + 1) mod rows and returns that row.
class BeamTableModel {
  constructor(table, startToken, start, batch) {
    Object.assign(this, { table: table.map((row) => Float32Array.from(row)), startToken, start, batch });
  }
  reset() { this.states = Array(this.batch).fill(this.start); }
  select(rows) { this.states = rows.map((r) => this.states[r]); }
  async feed(rows) {
    return rows.map((ids, r) => {
      for (const t of ids) this.states[r] = (7 * this.states[r] + t + 1) % this.table.length;
      return this.table[this.states[r]];
    });
  }
}

test("beam search: every sequence of every case", async () => {
  const parts = [
    ...vectors.generate.beam.cases.map((c) => [vectors.generate.vocab, vectors.generate.beam[c.name.includes("ties") ? "ties_table" : "table"], c]),
    ...vectors.tokenization.beam.map((c) => [vectors.tokenization.vocab, vectors.tokenization.table, c]),
  ];
  assert.ok(parts.length > 0);
  for (const [vocab, table, c] of parts) {
    const beams = await beamSearch(new BeamTableModel(table, c.start_token, c.start, c.width), new Vocab(vocab), {
      prime: c.prime, length: c.length, width: c.width, lengthPenalty: c.length_penalty, stop: c.stop,
    });
    assert.deepEqual(beams.map((b) => [b.ids, b.text, b.stopped]), c.beams.map((b) => [b.ids, b.text, b.stopped]), c.name);
    beams.forEach((b, i) => assert.ok(Math.abs(b.score - c.beams[i].score) < 1e-9, `${c.name} score ${i}`));
  }
});
