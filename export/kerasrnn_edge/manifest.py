"""The one manifest reader (SPEC.md, "Manifest"): checks a bundle before anything runs it.

The exporter's tests and the Java port follow it: format and version first, then every file's
presence and size; a file's sha256 is checked when it is opened (`verified_path`).
"""
import hashlib
import json
import os

import numpy as np

from .errors import MissingPath, UserError
from .vocab import Vocab

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
        self.vocab = Vocab.from_json(doc["vocab"])
        self.state = doc["state"]
        self.files = doc["files"]
        self.batch_files = doc.get("batch_files", [])  # optional (SPEC.md, "Batch models")
        self.start_token, self.start_state = _start(doc, self.vocab, self.state)

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


def _start(doc, vocab, state):
    """The start token and the start state (float32 [1, H] arrays in `state` order), checked."""
    start = doc["start"]
    token = start["token"]
    if not isinstance(token, int) or isinstance(token, bool) or not 0 <= token < vocab.size:
        raise ValueError(f"start token {token!r} is not a token id of the vocabulary")
    arrays = []
    for spec in state:
        values = np.asarray(start["state"][spec["name"]], np.float32)
        if values.size != np.prod(spec["shape"]):
            raise ValueError(f"start state {spec['name']} has {values.size} values, not {np.prod(spec['shape'])}")
        values = values.reshape(spec["shape"])
        if not np.isfinite(values).all():
            raise ValueError(f"start state {spec['name']} is not finite")
        arrays.append(values)
    return token, arrays


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
        raise UserError(f"{path} is not valid JSON ({e}): the bundle is corrupt, export it again") from None
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
            missing = [key for key in ENTRY_FIELDS if key not in entry]
            if missing:
                raise UserError(f"{path} is malformed ({entry['path']} has no {', '.join(missing)}): "
                                "export the bundle again")
    except UserError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path} is malformed (missing or bad field {e}): export the bundle again") from None
    return manifest
