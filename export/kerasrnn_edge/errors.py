"""The one error type users see: a message that says what is wrong and what to do, naming the options as
the user wrote them (`option`); and how every command (the two command lines, the benchmarks) prints it:
one line, exit 2, no traceback and no usage block (`ArgumentParser`, `one_line_errors`)."""
import argparse
import contextlib
import contextvars
import os
import shlex
import sys

_command_line = contextvars.ContextVar("command_line", default=False)


class KerasrnnError(ValueError):
    """Bad input from the user: what kerasrnn's Python API raises (`kerasrnn.KerasrnnError`), and what the
    command lines print as one line, exiting 2."""


UserError = KerasrnnError  # the name kerasrnn's own code raises it by


class MissingPath(KerasrnnError, FileNotFoundError):
    """A file or directory the user named does not exist: a KerasrnnError that is also a FileNotFoundError."""


class Stopped(Exception):
    """Training stopped on a signal (kerasrnn.signals); a command exits with 128 + its number, as a shell does.
    `at_once`: on a second signal, without finishing what was under way."""

    def __init__(self, signum, message="", at_once=False):
        super().__init__(message)
        self.signum, self.at_once = signum, at_once


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


@contextlib.contextmanager
def one_line_errors(prog=None):
    """A command's main: messages name options as flags (`command_line`); a KerasrnnError is one line on stderr
    and exit 2, a stop by a signal its line and 128 + its number, Ctrl-C elsewhere 130, a closed pipe 1. `prog`:
    the command's name (the script's file name by default, as argparse names it)."""
    prog = prog or os.path.basename(sys.argv[0])
    try:
        with command_line():
            yield
    except KerasrnnError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except Stopped as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(128 + e.signum)
    except BrokenPipeError:  # e.g. piped into head
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line, `PROG: error: WHAT (PROG --help lists the options)`, exit 2:
    the usage block it prints before them buried the line that matters."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


def positive(kind):
    """An argparse type: a number of `kind` (int or float) above 0, such as a time budget or a count."""
    def parse(text):
        value = kind(text)  # a ValueError: argparse says "invalid int value"
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0 (got {text})")
        return value
    parse.__name__ = kind.__name__
    return parse


def non_negative(kind):
    """An argparse type: a number of `kind` at or above 0 (0 meaning none or all, as its help says)."""
    def parse(text):
        value = kind(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
        return value
    parse.__name__ = kind.__name__
    return parse
