"""`kerasrnn serve-web DIR`: a static HTTP server on 127.0.0.1 for the web sampler (kerasrnn export --web).

Standard library only (no Keras, no TensorFlow): the MIME types browsers insist on for modules and
WebAssembly, no caching of a re-exported site, and quiet about browsers that drop a download midway.
"""
import functools
import http.server
import os
import sys

from kerasrnn_edge.errors import UserError

MIME_TYPES = {".html": "text/html; charset=utf-8", ".mjs": "text/javascript", ".js": "text/javascript",
              ".wasm": "application/wasm", ".json": "application/json", ".onnx": "application/octet-stream",
              ".tflite": "application/octet-stream", ".png": "image/png", ".txt": "text/plain; charset=utf-8"}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a closed tab, a reload
            super().handle_error(request, client_address)


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")  # a re-exported site is seen at once
        super().end_headers()

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)


def make_server(directory, port=8000, verbose=False):
    """A static HTTP server for `directory` on 127.0.0.1 (not yet serving: call serve_forever())."""
    if not os.path.isfile(os.path.join(directory, "index.html")):
        raise UserError(f"{directory} has no index.html: make the site with kerasrnn export RUN --web {directory}")
    try:
        server = _Server(("127.0.0.1", port), functools.partial(_Handler, directory=os.path.abspath(directory)))
    except OSError as e:
        raise UserError(f"cannot listen on 127.0.0.1:{port} ({e.strerror}): pick another port with --port") from None
    server.verbose = verbose
    return server


def serve(directory, port=8000):
    server = make_server(directory, port, verbose=True)
    print(f"kerasrnn: serving {directory} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
