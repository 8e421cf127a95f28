"""Corpora: trees and archives read as the joined text, the cache, the one-line errors, bounded memory,
the named corpora."""
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib

import numpy as np
import pytest

from conftest import REPO, SHAKESPEARE, run_cli, shakespeare_slice
from kerasrnn import corpus
from kerasrnn.config import Config
from kerasrnn_edge.errors import UserError
from kerasrnn_edge.vocab import Vocab

FILES = {  # a tree with non-ASCII text and files the globs leave out
    "b.c": "int b(void) { return 'é'; }\n",
    "a.h": "#define A 1\n",
    "sub/c.c": "/* 你好 — chunk boundaries cut these characters */\nint c;",
    "sub/notes.txt": "not chosen\n",
    "sub/deep/d.txt": "chosen by the glob with a slash 😀\n",
    "z.c": "",
}
INCLUDE = ["*.c", "*/deep/*"]
CHOSEN = ["b.c", "sub/c.c", "sub/deep/d.txt", "z.c"]  # sorted paths


def make_tree(root):
    for name, text in FILES.items():
        path = root / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "src"


def make_source(root, kind):
    """The tree itself, or an archive of it (its members under src/)."""
    tree = make_tree(root)
    if kind == "dir":
        return tree
    path = root / f"src.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name in reversed(list(FILES)):  # stored out of order
                z.write(tree / name, f"src/{name}")
    else:
        with tarfile.open(path, "w:" + kind.removeprefix("tar").lstrip(".")) as tar:
            for name in reversed(list(FILES)):
                tar.add(tree / name, f"src/{name}")
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASRNN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("kind", ["dir", "tar", "tar.gz", "tar.xz", "zip"])
def test_tree_and_archives_give_the_ids_of_the_joined_text(tmp_path, cache, kind, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK", 5)  # chunks cut multi-byte characters and files
    source = corpus.Source(make_source(tmp_path, kind), INCLUDE)
    joined = corpus.SEPARATOR.join(FILES[name] for name in CHOSEN).encode()
    for tokens in ("char", "byte"):
        vocab, ids = corpus.load_ids(source, tokens)
        reference_vocab, reference_ids = Vocab.fit(joined, tokens)
        assert vocab == reference_vocab and ids.dtype == vocab.dtype
        np.testing.assert_array_equal(ids, reference_ids)


def test_cache_is_reused_and_prepared_again_when_a_file_changes(tmp_path, cache):
    tree = make_tree(tmp_path)
    vocab, ids = corpus.load_ids(corpus.Source(tree, INCLUDE), "char")
    cached = sorted(os.listdir(cache))
    stamps = [os.stat(cache / name).st_mtime_ns for name in cached]
    again_vocab, again = corpus.load_ids(corpus.Source(tree, INCLUDE), "char")
    assert again_vocab == vocab and isinstance(again, np.memmap)
    assert sorted(os.listdir(cache)) == cached and [os.stat(cache / n).st_mtime_ns for n in cached] == stamps
    (tree / "sub" / "c.c").write_text("int c = 2;")
    edited_vocab, edited = corpus.load_ids(corpus.Source(tree, INCLUDE), "char")
    assert edited_vocab.decode(edited).startswith(FILES["b.c"] + "\nint c = 2;\n")
    corpus.load_ids(corpus.Source(tree, INCLUDE), "byte")
    assert len(os.listdir(cache)) == len(cached) + 4  # the edited text and the byte ids: new entries


@pytest.mark.parametrize("chunk", [4, 1 << 20])
@pytest.mark.parametrize("content, offset", [(b"caf\xc3\xa9 ok \xff rest", 9), (b"ends inside \xe4\xbd", 12)])
def test_invalid_utf8_in_a_tree_is_one_line_with_the_file_and_its_offset(tmp_path, cache, monkeypatch, chunk,
                                                                           content, offset):
    monkeypatch.setattr(corpus, "CHUNK", chunk)
    tree = make_tree(tmp_path)
    (tree / "sub" / "latin.c").write_bytes(content)
    with pytest.raises(UserError) as error:
        corpus.load_ids(corpus.Source(tree, INCLUDE), "char")
    assert str(error.value) == (f"{tree}/sub/latin.c is not valid UTF-8 (byte offset {offset}): train in byte "
                                "mode with tokens='byte', or convert it to UTF-8")
    _, ids = corpus.load_ids(corpus.Source(tree, INCLUDE), "byte")
    assert content in ids.tobytes()


def test_sources_that_give_no_text_are_one_line(tmp_path, cache):
    tree = make_tree(tmp_path)
    with pytest.raises(UserError, match=r"no file of .* matches include='\*\.rs': check the globs"):
        corpus.load_ids(corpus.Source(tree, ["*.rs"]), "char")
    with pytest.raises(UserError, match=r"src include='z\.c' is empty"):
        corpus.load_ids(corpus.Source(tree, ["z.c"]), "char")
    with pytest.raises(UserError, match="is one file: pass a directory or a .tar"):
        corpus.Source(tree / "b.c", ["*.c"])
    with pytest.raises(UserError, match="does not exist"):
        corpus.Source(tmp_path / "missing.tar.xz")
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="is not a readable archive"):
        corpus.load_ids(corpus.Source(tmp_path / "broken.tar.gz"), "char")
    for kind in ("tar.xz", "zip"):
        whole = make_source(tmp_path / kind, kind).read_bytes()
        (tmp_path / f"cut.{kind}").write_bytes(whole[:len(whole) // 2])
        with pytest.raises(UserError, match=rf"cut.{kind} (is not a readable archive|could not be read to its end)"):
            corpus.load_ids(corpus.Source(tmp_path / f"cut.{kind}"), "char")
    with pytest.raises(UserError, match="include= chooses files of text="):
        Config(include=["*.c"]).check()


def test_preparation_memory_is_bounded_whatever_the_text_size(tmp_path, cache):
    """50 MB of text (a tenth of it not ASCII) prepared in a fresh process: its peak memory grows by far
    less than the text's size."""
    shakespeare = open(SHAKESPEARE, encoding="utf-8").read()
    copies = 50_000_000 // len(shakespeare.encode("utf-8"))
    path = tmp_path / "big.txt"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(copies):
            f.write(shakespeare if i % 10 else shakespeare.replace("e", "é"))
    # VmHWM, the peak RSS of the process's own memory (ru_maxrss would count this process's at the fork)
    child = ("import json, sys; from kerasrnn import corpus; "
             "peak = lambda: int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024; "
             "before = peak(); vocab, ids = corpus.load_ids(sys.argv[1], 'char'); "
             "print(json.dumps([len(ids), vocab.size, peak() - before]))")
    run = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True,
                         env={**os.environ, "KERASRNN_CACHE": str(cache)})
    assert run.returncode == 0, run.stderr
    tokens, size, grown = json.loads(run.stdout)
    assert tokens == copies * len(shakespeare) and size == len(set(shakespeare) | {"é"})
    assert grown < os.path.getsize(path) / 2, f"peak memory grew by {grown / 1e6:.0f} MB"  # whole: 36 times


def test_corpus_list_and_get_names(tmp_path):
    listed = run_cli("corpus", "list", env={"KERASRNN_LINUX_SOURCE": str(tmp_path / "none.tar.xz")})
    assert listed.returncode == 0, listed.stderr
    for name in ("python-stdlib", "shakespeare", "linux", "names"):
        assert f"\n{name} " in "\n" + listed.stdout
    assert "none.tar.xz (apt-get install linux-source-6.1); not here" in listed.stdout
    out = tmp_path / "names.txt"
    got = run_cli("corpus", "get", "names", "--out", out)
    assert got.returncode == 0 and got.stdout.strip() == str(out), got.stderr
    names = out.read_text().splitlines()
    import names as names_package
    census = set()
    for file in corpus.NAMES_FILES:
        with open(os.path.join(os.path.dirname(names_package.__file__), file)) as f:
            census |= {line.split()[0].capitalize() for line in f}
    assert names == sorted(census, key=lambda n: hashlib.sha256(n.encode()).hexdigest())  # shuffled, each once
    assert run_cli("corpus", "get", "names").stdout.strip().endswith("census-names.txt")


def test_linux_corpus_absent_says_how_to_get_it(tmp_path):
    result = run_cli("train", "--corpus", "linux", "--run-dir", tmp_path / "run",
                     env={"KERASRNN_LINUX_SOURCE": str(tmp_path / "linux-source-6.1.tar.xz")})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "linux-source-6.1.tar.xz, which is not here: apt-get install linux-source-6.1" in lines[0]
    assert "--include '*.c' --include '*.h'" in lines[0]


@pytest.mark.parametrize("damage", ["truncated", "zero-filled", "bit-flipped"])
def test_a_damaged_cache_entry_is_prepared_again_with_one_line(tmp_path, cache, capfd, damage):
    """A cache entry whose .npy does not check out (its size, its header, the checksum of its ids) is said
    in one line and prepared again; the ids are those of a fresh preparation, and the entry is whole again."""
    text = shakespeare_slice(tmp_path, 20_000)
    vocab, ids = corpus.load_ids(text, "char")  # a fresh preparation
    fresh = np.array(ids)
    [entry] = cache.glob("ids-*.npy")
    data = bytearray(entry.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2:]
    elif damage == "zero-filled":  # the ids' blocks (as a crash can leave a file's blocks unwritten)
        data[ids.offset:] = bytes(len(data) - ids.offset)
    else:
        data[ids.offset + len(fresh) // 2] ^= 0x04
    entry.write_bytes(data)
    capfd.readouterr()

    again_vocab, again = corpus.load_ids(text, "char")
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kerasrnn: the cached token ids {entry} are damaged ("), lines
    assert lines[0].endswith("): preparing them again")
    assert again_vocab == vocab
    np.testing.assert_array_equal(again, fresh)
    corpus.load_ids(text, "char")
    assert capfd.readouterr().err == ""


def test_training_on_a_damaged_cache_says_so_in_one_line_and_trains(tmp_path, cache):
    """The command line: a truncated entry (once `ValueError: mmap length is greater than file size`)."""
    text = shakespeare_slice(tmp_path, 6000)
    fresh = np.array(corpus.load_ids(text, "char")[1])
    [entry] = cache.glob("ids-*.npy")
    entry.write_bytes(entry.read_bytes()[:-100])
    result = run_cli("train", "--text", text, "--run-dir", tmp_path / "run", "--max-epochs", "1", "--batch-size", "4",
                     "--seq-length", "16", "--rnn-size", "16", "--num-layers", "1", env={"KERASRNN_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"kerasrnn: the cached token ids {entry} are damaged "
                                          f"({os.path.getsize(entry) - 100:,} bytes, not {os.path.getsize(entry):,}): "
                                          "preparing them again"]
    np.testing.assert_array_equal(corpus.load_ids(text, "char")[1], fresh)


def test_two_processes_preparing_the_same_corpus_at_once_both_succeed(tmp_path, cache):
    """Each writes the entry under temporary names and renames it into place: both get the ids, whole."""
    text = tmp_path / "big.txt"
    slice_ = open(shakespeare_slice(tmp_path, 40_000), encoding="utf-8").read()
    text.write_text(slice_ * 500, encoding="utf-8")  # 20 MB: long enough to prepare that the two overlap
    child = ("import os, sys, time, zlib; from kerasrnn import corpus\n"
             "open(sys.argv[2] + '.ready', 'w').close()\n"
             "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"
             "vocab, ids = corpus.load_ids(sys.argv[1], 'char')\n"
             "print(vocab.size, len(ids), zlib.crc32(ids.tobytes()))\n")
    go = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", child, str(text), str(tmp_path / f"p{i}"), str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                  env={**os.environ, "KERASRNN_CACHE": str(cache)}) for i in range(2)]
    deadline = time.time() + 120
    while not all((tmp_path / f"p{i}.ready").exists() for i in range(2)):
        assert time.time() < deadline, "the processes did not start"
        time.sleep(0.01)
    go.touch()
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0] and [err for _, err in outputs] == ["", ""], outputs
    vocab, ids = corpus.load_ids(text, "char")
    assert [out.split() for out, _ in outputs] == [[str(vocab.size), str(len(ids)), str(zlib.crc32(ids.tobytes()))]] * 2
    assert len(list(cache.iterdir())) == 2  # one entry, no temporaries left
