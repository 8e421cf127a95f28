"""Files written whole or not at all: each to a temporary name beside its target, renamed into place when
complete (several together with `Writes`), so a killed process or a full disk never leaves a torn file,
and a failed write is one line saying what to do."""
import errno
import json
import os
import tempfile

from kerasrnn_edge.errors import UserError

from .signals import check_not_stopped, deferred

WHAT_TO_DO = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space (disk quota exceeded)",
              errno.EROFS: "the file system is read-only: make it writable or write elsewhere",
              errno.EACCES: "check the permissions", errno.EPERM: "check the permissions",
              errno.EIO: "the disk reported an I/O error: check it"}


def write_error(path, error):
    """The UserError for an OSError met writing `path`: the file, the cause, what to do."""
    blocking = file_in_the_way(path) if error.errno in (errno.EEXIST, errno.ENOTDIR) else None
    if blocking:
        return UserError(f"cannot write {path}: {blocking} is a file where a directory is needed; pass a directory "
                         "(or a path that does not exist yet). The files already there are intact")
    cause = error.strerror or str(error)
    return UserError(f"cannot write {path}: {cause} ({errno.errorcode.get(error.errno, 'error')}); "
                     f"{WHAT_TO_DO.get(error.errno, 'check the disk')}. The files already there are intact")


def file_in_the_way(path):
    """The nearest existing part of `path`'s directory, where it is a file (what makes creating it fail), or None."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return parent if os.path.isfile(parent) else None


class Writes:
    """Files written to temporary names, then renamed over their targets together, in the order written,
    when the block ends; if anything fails, none of them: the temporaries are removed and the files
    already there are untouched. A write that fails (no space, read-only file system, permission denied,
    I/O error) raises the one-line UserError of `write_error`."""

    def __init__(self):
        self._staged = []

    def __enter__(self):
        return self

    def file(self, path, write):
        """Calls `write(tmp_path)` for a temporary beside `path`."""
        directory, name = os.path.split(os.path.abspath(path))
        suffix = os.path.splitext(name)[1]  # Keras insists on the .keras suffix
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=directory)
            os.close(fd)
            self._staged.append((tmp, path))
            write(tmp)
            os.chmod(tmp, 0o644)
        except UserError:  # what `write` found wrong (a missing input is also an OSError)
            raise
        except OSError as e:
            raise write_error(path, e) from None

    def bytes(self, path, data):
        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(data)
        self.file(path, write)

    def text(self, path, text):
        self.bytes(path, text.encode("utf-8"))

    def json(self, path, obj):
        self.text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")

    def model(self, path, model):
        from .distribute import whole_variables
        with whole_variables(model):
            self.file(path, model.save)

    def __exit__(self, kind, error, traceback):
        try:
            if kind is None:
                check_not_stopped()
                with deferred():
                    for tmp, path in self._staged:
                        try:
                            os.replace(tmp, path)
                        except OSError as e:
                            raise write_error(path, e) from None
        finally:
            for tmp, _ in self._staged:
                if os.path.exists(tmp):
                    os.remove(tmp)


def atomic_write(path, write):
    """Calls `write(tmp_path)`, then renames tmp_path over `path`."""
    with Writes() as writes:
        writes.file(path, write)


def write_bytes(path, data):
    with Writes() as writes:
        writes.bytes(path, data)


def write_text(path, text):
    with Writes() as writes:
        writes.text(path, text)


def write_json(path, obj):
    with Writes() as writes:
        writes.json(path, obj)


def save_model(model, path):
    with Writes() as writes:
        writes.model(path, model)
