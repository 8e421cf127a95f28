"""The one error type users see: a message that says what is wrong and what to do, naming the options as
the user wrote them (`option`)."""
import contextlib
import contextvars
import shlex

_command_line = contextvars.ContextVar("command_line", default=False)


class KerasrnnError(ValueError):
    """Bad input from the user: what kerasrnn's Python API raises (`kerasrnn.KerasrnnError`), and what the
    command lines print as one line, exiting 2."""


UserError = KerasrnnError  # the name kerasrnn's own code raises it by


class MissingPath(KerasrnnError, FileNotFoundError):
    """A file or directory the user named does not exist: a KerasrnnError that is also a FileNotFoundError."""


@contextlib.contextmanager
def command_line():
    """For the block (a command's main), messages name options as the command line spells them."""
    token = _command_line.set(True)
    try:
        yield
    finally:
        _command_line.reset(token)


def option(name, value=None):
    """An option named in a message: `--include '*.c'` on the command line (as a shell takes it),
    `include='*.c'` elsewhere (the Python API's keyword); a switch (value True) is `--resume` or `resume=True`."""
    if _command_line.get():
        flag = "--" + name.replace("_", "-")
        return flag if value is None or value is True else f"{flag} {shlex.quote(str(value))}"
    return f"{name}=" if value is None else f"{name}={value!r}"
