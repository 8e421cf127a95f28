"""Corpus preparation speed and memory: the C and header files of Linux 6.1, prepared into token ids.

Needs Debian's kernel source (nothing of it is committed):

    apt-get install linux-source-6.1                                  # /usr/src/linux-source-6.1.tar.xz
    mkdir -p /tmp/linux-6.1 && tar -xJf /usr/src/linux-source-6.1.tar.xz -C /tmp/linux-6.1   # the tree

    python benchmarks/corpus_prep.py [SOURCE ...] [--tokens char|byte] [--peer-mb 100]

Each SOURCE (default: the extracted tree, then the tarball) is prepared with --include '*.c' --include
'*.h' by kerasrnn.corpus.load_ids in a fresh subprocess with an empty cache; the line printed gives the
text's MB, the seconds, MB/s and the subprocess's peak RSS (its VmHWM: its
ru_maxrss would count the parent's memory at the fork). With --peer-mb N the first N MB
of the joined text are also prepared both ways in one run, alternating: the streaming preparation and the
whole-file decode it replaced (`Vocab.fit` of the file's bytes, as load_ids did before), for a ratio
measured under the same load.
"""
import json
import os
import subprocess
import sys
import tempfile

from kerasrnn_edge.errors import ArgumentParser, non_negative, one_line_errors

SOURCES = ["/tmp/linux-6.1", "/usr/src/linux-source-6.1.tar.xz"]
INCLUDE = ["*.c", "*.h"]

CHILD = r"""
import json, resource, sys, time
from kerasrnn import corpus
from kerasrnn_edge.vocab import Vocab
how, path, include, tokens = json.loads(sys.argv[1])
start = time.perf_counter()
if how == "stream":
    vocab, ids = corpus.load_ids(corpus.Source(path, include), tokens)
else:
    vocab, ids = Vocab.fit(open(path, "rb").read(), tokens)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])  # kB; ru_maxrss keeps the parent's
print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "tokens": len(ids), "vocab": vocab.size,
                  "rss_mb": peak / 1024}))
"""


def prepare(how, path, include, tokens, text_bytes):
    """Prepares in a fresh process with an empty cache; returns its figures."""
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([how, path, include, tokens])],
                             env={**os.environ, "KERASRNN_CACHE": cache}, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr.strip().splitlines()[-1])
    result = json.loads(out.stdout)
    result["mb"] = text_bytes / 1e6
    return result


def show(label, r):
    print(f"{label}: {r['mb']:,.1f} MB ({r['tokens']:,} tokens, vocab {r['vocab']}) in {r['seconds']:.1f} s = "
          f"{r['mb'] / r['seconds']:.1f} MB/s ({r['cpu']:.1f} CPU s: {r['mb'] / r['cpu']:.1f} MB per CPU s), "
          f"peak RSS {r['rss_mb']:,.0f} MB", flush=True)


def main():
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="*", default=SOURCES)
    parser.add_argument("--tokens", default="char")
    parser.add_argument("--peer-mb", type=non_negative(float), default=0,
                        help="also compare with the whole-file decode on this many MB")
    args = parser.parse_args()
    from kerasrnn import corpus
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{os.cpu_count()} CPUs", flush=True)
    text_bytes = None
    for path in args.sources:
        if not os.path.exists(path):
            print(f"{path}: not here (see this script's docstring)")
            continue
        if text_bytes is None:  # the joined text's bytes (byte ids), the same from the tree and the tarball
            text_bytes = corpus.prepare(corpus.Source(path, INCLUDE), "byte")[1]
        show(f"{path} ({args.tokens})", prepare("stream", path, INCLUDE, args.tokens, text_bytes))
    if args.peer_mb:
        path = next(p for p in args.sources if os.path.exists(p))
        with tempfile.NamedTemporaryFile(suffix=".txt") as slice_file:
            _, _, fill = corpus.prepare(corpus.Source(path, INCLUDE), "byte")  # byte ids: the joined text
            fill(slice_file, 0)
            slice_file.seek(0)
            cut = slice_file.read(int(args.peer_mb * 1e6))
            cut = cut[:len(cut.decode("utf-8", errors="ignore").encode("utf-8"))]  # whole characters
            slice_file.seek(0)
            slice_file.truncate()
            slice_file.write(cut)
            slice_file.flush()
            for how in ("stream", "whole-file", "stream", "whole-file"):
                show(f"first {args.peer_mb:g} MB, {how}", prepare(how, slice_file.name, [], args.tokens, len(cut)))


if __name__ == "__main__":
    with one_line_errors():
        main()
