"""The one manifest reader (SPEC.md, "Manifest"): checks a bundle before anything runs it.

The exporter's tests and the Java port follow it: format and version first, then the manifest against
itself (`_check_consistent`: vocabulary, state, start, every file entry's tensors), then every file's
presence and size; a file's sha256 is checked when it is opened (`verified_path`), and its own inputs
and outputs, as its runtime reports them, against its entries (`check_file_tensors`).
"""
import hashlib
import json
import os

import numpy as np

from .errors import MissingPath, UserError
from .vocab import KINDS, Vocab

MANIFEST = "manifest.json"
FORMAT = "kerasrnn-bundle"
FORMAT_VERSION = 1
SAMPLING_CONTRACT = 2
ENTRY_FIELDS = ("path", "format", "precision", "batch", "signature", "inputs", "outputs", "sha256", "bytes",
                "min_runtime")


class Manifest:
    def __init__(self, bundle_dir, doc):
        self.bundle_dir = bundle_dir
        self.doc = doc
        self.path = os.path.join(bundle_dir, MANIFEST)
        vocab = doc["vocab"]
        if vocab["kind"] in KINDS and vocab.get("size") != _vocab_length(vocab):
            raise self.disagrees("vocab.size", f"is {vocab.get('size')!r}, but the vocabulary lists "
                                               f"{_vocab_length(vocab)} tokens")
        try:
            self.vocab = Vocab.from_json(vocab)
        except UserError as e:
            raise self.disagrees("vocab", f"is not a vocabulary ({e})") from None
        self.state = doc["state"]
        self.files = doc["files"]
        self.batch_files = doc.get("batch_files", [])  # optional (SPEC.md, "Batch models")
        self.start_token, self.start_state = self._start(doc["start"])
        for entry in self.files + self.batch_files:
            missing = [key for key in ENTRY_FIELDS if key not in entry]
            if missing:
                raise UserError(f"{self.path} is malformed ({entry.get('path')} has no {', '.join(missing)}): "
                                "export the bundle again (kerasrnn export)")
        self._check_consistent(doc["model"])

    def disagrees(self, field, what):
        """The one-line error for a manifest field that is wrong or disagrees with the rest of the manifest."""
        return UserError(f"{self.path} is malformed: {field} {what}: export the bundle again (kerasrnn export)")

    def _start(self, start):
        """The start token and the start state (float32 [1, H] arrays in `state` order), checked."""
        token = start["token"]
        if not isinstance(token, int) or isinstance(token, bool) or not 0 <= token < self.vocab.size:
            raise self.disagrees("start.token", f"is not a token id of the {self.vocab.size}-token vocabulary "
                                                f"(start token {token!r})")
        arrays = []
        for i, spec in enumerate(self.state):
            shape = spec["shape"]
            if (not isinstance(shape, list) or len(shape) != 2 or shape[0] != 1 or not isinstance(shape[1], int)
                    or isinstance(shape[1], bool) or shape[1] < 1 or spec["dtype"] != "float32"):
                raise self.disagrees(f"state[{i}] ({spec['name']})", f"is {spec['dtype']} {shape}, not float32 "
                                                                     "[1, width]")
            values = np.asarray(start["state"][spec["name"]], np.float32)
            if values.shape != (shape[1],):
                raise self.disagrees(f"start.state.{spec['name']}", f"has {values.size} values, but state "
                                                                    f"{spec['name']} is {shape}")
            if not np.isfinite(values).all():
                raise self.disagrees(f"start.state.{spec['name']}", "is not finite")
            arrays.append(values.reshape(shape))
        return token, arrays

    def _check_consistent(self, model):
        """The manifest against itself: the state names and widths the model implies (an RNN's layers; a GPT's
        cache: its context C and width W, SPEC.md "Transformer step models"; a model of another `type` implies
        none: its state is the list), and each file entry's inputs and outputs against the state and the
        vocabulary at the entry's batch."""
        names = [spec["name"] for spec in self.state]
        widths = {spec["name"]: spec["shape"][1] for spec in self.state}
        kind = model.get("type", "rnn")
        if kind in ("rnn", "gpt"):
            layers = range(model["num_layers"])
            if kind == "gpt":
                context, width = model["context"], model["width"]
                expected = {**{f"layer{i}_{kv}": context * width for i in layers for kv in "kv"}, "filled": context}
                implied = f"a GPT of {model['num_layers']} layers, context {context} and width {width}"
            else:
                expected = {f"layer{i}_{s}": model["rnn_size"] for i in layers
                            for s in ("hc" if model["cell"] == "lstm" else "h")}
                implied = f"a {model['num_layers']}-layer {model['cell']} of size {model['rnn_size']}"
            if names != list(expected):
                raise self.disagrees("state", f"lists {names}, but model ({implied}) has {list(expected)}")
            for name, width in expected.items():
                if widths[name] != width:
                    raise self.disagrees(f"state ({name})", f"has width {widths[name]}, but model ({implied}) "
                                                            f"implies {width}")
        for key, entries in (("files", self.files), ("batch_files", self.batch_files)):
            for i, entry in enumerate(entries):
                rows = entry["batch"]
                if key == "files" and rows != 1 or rows == 0 or not isinstance(rows, int) or rows < -1:
                    raise self.disagrees(f"{key}[{i}].batch", f"is {rows!r}, not " +
                                         ("1" if key == "files" else "a batch >= 1 (or -1: any)"))
                token = ([rows, -1] if entry["format"] == "onnx" and key == "batch_files"
                         else [-1] if entry["signature"] == "steps" else [rows])
                states = {n: {"shape": [rows, w], "dtype": "float32"} for n, w in widths.items()}
                want = {"inputs": {"token": {"shape": token, "dtype": "int32"}, **states},
                        "outputs": {"logits": {"shape": [rows, self.vocab.size], "dtype": "float32"},
                                    **{f"next_{n}": spec for n, spec in states.items()}}}
                for side in ("inputs", "outputs"):
                    where = f"{key}[{i}] ({entry['path']}) {side}"
                    got = entry[side]
                    if set(got) != set(want[side]):
                        raise self.disagrees(where, f"are {sorted(got)}, but the state implies {sorted(want[side])}")
                    for name, spec in want[side].items():
                        if got[name] != spec:
                            raise self.disagrees(f"{where}.{name}", f"is {got[name]['dtype']} {got[name]['shape']}, "
                                                 f"but the entry's batch, the state and the vocabulary imply "
                                                 f"{spec['dtype']} {spec['shape']}")

    def check_file_tensors(self, entry, path, inputs, outputs):
        """The model file's own inputs and outputs, as its runtime reports them (name -> (shape, dtype), a
        dimension None where the file takes any size), against the entry: a file that is not the one the
        manifest describes (an edited manifest, another export's file) is refused before its first step."""
        for side, reported in (("inputs", inputs), ("outputs", outputs)):
            listed = entry[side]
            if set(reported) != set(listed):
                raise UserError(f"{path} has {side} {sorted(reported)}, but {self.path} lists {sorted(listed)} "
                                f"({entry['path']}, signature {entry['signature']}): the bundle is inconsistent, "
                                "export it again (kerasrnn export)")
            for name, (shape, dtype) in reported.items():
                want = listed[name]
                if dtype != want["dtype"] or len(shape) != len(want["shape"]) or not all(
                        have is None if dim == -1 else have in (None, dim) for have, dim in zip(shape, want["shape"])):
                    shown = [-1 if dim is None else dim for dim in shape]
                    raise UserError(f"{path}: its {side[:-1]} {name!r} is {dtype} {shown}, but {self.path} says "
                                    f"{want['dtype']} {want['shape']} ({entry['path']}, signature "
                                    f"{entry['signature']}, {side}.{name}): the bundle is inconsistent, export it "
                                    "again (kerasrnn export)")

    def find(self, signature, precision=None, fmt=None):
        """File entries with this signature (and precision, format), in manifest order."""
        return [f for f in self.files if f["signature"] == signature
                and precision in (None, f["precision"]) and fmt in (None, f["format"])]

    def find_batch(self, precision=None, fmt=None):
        """The batch models (`batch_files`) of this precision and format, in manifest order."""
        return [f for f in self.batch_files if precision in (None, f["precision"]) and fmt in (None, f["format"])]

    def verified_path(self, entry):
        """The file's path, after checking its sha256 against the manifest."""
        path = bundle_file(self.bundle_dir, entry["path"])
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != entry["sha256"]:
            raise UserError(f"{path} does not match its sha256 in {MANIFEST}: the bundle is corrupt, export it again")
        return path


def _vocab_length(vocab):
    """How many tokens the manifest's `vocab` lists (256 for bytes)."""
    return len(vocab["chars"]) if vocab["kind"] == "char" else len(vocab["pieces"]) if vocab["kind"] == "bpe" else 256


def bundle_file(bundle_dir, name):
    """The path of the file `name` (as the manifest names it) in the bundle, which must stay inside the
    bundle folder: no absolute path, no `..`, no symbolic link leading out."""
    path = os.path.join(bundle_dir, name)
    real_dir = os.path.realpath(bundle_dir)
    if (os.path.isabs(name) or ".." in name.replace("\\", "/").split("/")
            or os.path.commonpath([real_dir, os.path.realpath(path)]) != real_dir):
        raise UserError(f"{os.path.join(bundle_dir, MANIFEST)} names {name!r}, which is outside the bundle folder: "
                        "refusing to read it; use a bundle made by kerasrnn export")
    return path


def read_manifest(bundle_dir):
    path = os.path.join(bundle_dir, MANIFEST)
    if not os.path.exists(bundle_dir):
        raise MissingPath(f"{bundle_dir} does not exist: pass a bundle made by kerasrnn export")
    if not os.path.isdir(bundle_dir):
        raise UserError(f"{bundle_dir} is not a directory: pass a bundle made by kerasrnn export")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise MissingPath(f"{path} is missing: the bundle is incomplete, export it again (kerasrnn export)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}): the bundle is corrupt, export it again "
                        "(kerasrnn export)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"{path} is not a kerasrnn bundle manifest (format is not {FORMAT!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} has bundle format version {doc.get('format_version')!r}; this sampler reads "
                        f"version {FORMAT_VERSION}: upgrade kerasrnn-edge, or export with a matching kerasrnn")
    if doc.get("sampling_contract") != SAMPLING_CONTRACT:
        older = isinstance(doc.get("sampling_contract"), int) and doc["sampling_contract"] < SAMPLING_CONTRACT
        raise UserError(f"{path} asks for sampling contract {doc.get('sampling_contract')!r}; this sampler "
                        f"implements contract {SAMPLING_CONTRACT}: " +
                        ("export the bundle again with this kerasrnn" if older else "upgrade kerasrnn-edge"))
    try:
        manifest = Manifest(bundle_dir, doc)
        for entry in manifest.files + manifest.batch_files:
            file_path = bundle_file(bundle_dir, entry["path"])
            if not os.path.isfile(file_path):
                raise MissingPath(f"{file_path} is missing: the bundle is incomplete, export it again")
            if os.path.getsize(file_path) != entry["bytes"]:
                raise UserError(f"{file_path} has {os.path.getsize(file_path)} bytes, not {entry['bytes']} as "
                                f"{MANIFEST} says: the bundle is incomplete or corrupt, export it again")
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise UserError(f"{path} is malformed (missing or bad field {e}): export the bundle again "
                        "(kerasrnn export)") from None
    return manifest
