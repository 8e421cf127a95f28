"""The static web sampler: a bundle -> a site (`kerasrnn export RUN --web DIR`; kerasrnn/serve_web.py
serves it).

The site is the page (export/web: index.html, app.mjs, contract.mjs), the bundle's ONNX step model
with a manifest that lists only it (so the site is itself a bundle `kerasrnn-edge sample` reads), and
onnxruntime-web's own files from its npm package (export/web/package.json pins it), so the page needs
nothing beyond its own origin.
"""
import functools
import os
import shutil
import subprocess
import sys

from kerasrnn.files import atomic_write, write_json
from kerasrnn_edge.errors import UserError
from kerasrnn_edge.manifest import MANIFEST, read_manifest

WEB_SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
APP_FILES = ("index.html", "app.mjs", "contract.mjs")
RUNTIME_DIST = os.path.join("node_modules", "onnxruntime-web", "dist")
# The wasm build of onnxruntime-web: its module, the Emscripten glue it imports, and the binary.
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def runtime_dir(source=WEB_SOURCE):
    """onnxruntime-web's dist directory in export/web/node_modules; runs `npm ci` there if it is missing."""
    if not os.path.isdir(source):
        raise UserError(f"{source} is missing: export --web needs kerasrnn's source tree (git clone, pip install -e .)")
    dist = os.path.join(source, RUNTIME_DIST)
    if not all(os.path.isfile(os.path.join(dist, f)) for f in RUNTIME_FILES):
        npm = shutil.which("npm")
        if npm is None:
            raise UserError(f"the web sampler needs onnxruntime-web from npm: install Node.js and npm, then run "
                            f"npm ci in {source}")
        print(f"kerasrnn: installing onnxruntime-web (npm ci in {source})", file=sys.stderr)
        done = subprocess.run([npm, "ci", "--omit=dev", "--no-audit", "--no-fund"], cwd=source, capture_output=True,
                              text=True)
        if done.returncode != 0 or not all(os.path.isfile(os.path.join(dist, f)) for f in RUNTIME_FILES):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"npm ci in {source} failed ({last}): run it there yourself and fix what it reports")
    return dist


def write_site(bundle_dir, out_dir, source=WEB_SOURCE):
    """Writes the web sampler of the bundle in `bundle_dir` to `out_dir`; returns the site's manifest."""
    dist = runtime_dir(source)
    manifest = read_manifest(bundle_dir)
    entries = [f for f in manifest.files if f["format"] == "onnx" and f["precision"] == "fp32"]
    if not entries:
        raise UserError(f"{bundle_dir} has no fp32 ONNX file: export the bundle again with this kerasrnn")
    os.makedirs(os.path.join(out_dir, "ort"), exist_ok=True)
    copies = [(manifest.verified_path(entries[0]), entries[0]["path"])]
    copies += [(os.path.join(source, f), f) for f in APP_FILES]
    copies += [(os.path.join(dist, f), os.path.join("ort", f)) for f in RUNTIME_FILES]
    for src, dst in copies:
        atomic_write(os.path.join(out_dir, dst), functools.partial(shutil.copyfile, src))
    doc = dict({k: v for k, v in manifest.doc.items() if k != "batch_files"}, files=entries)  # the page runs one stream
    write_json(os.path.join(out_dir, MANIFEST), doc)  # last, as in a bundle
    return doc
