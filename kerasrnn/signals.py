"""SIGTERM and SIGINT during training: schedulers and preemptible machines send SIGTERM before they
stop a job, Ctrl-C sends SIGINT. The first one asks training to stop at the next step boundary with a
checkpoint (callbacks.Preemption acts on it); a second one stops at once."""
import contextlib
import os
import signal
import sys
import threading

from kerasrnn_edge.errors import Stopped  # noqa: F401  (raised here; the commands print it)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_active = None  # the StopSignals block under way, for check_not_stopped


class StopSignals:
    """While the block runs, the first SIGTERM or SIGINT is recorded in `signum`; a second one raises
    Stopped wherever the program is (the write under way is abandoned, its temporary file removed)."""

    def __init__(self):
        self.signum = None
        self.second = None  # the second signal's number
        self.in_flight = False  # whether its Stopped is on its way up (not swallowed)

    def __enter__(self):
        global _active
        _active = self
        on_main_thread = threading.current_thread() is threading.main_thread()  # only it may set handlers
        self._previous = {s: signal.signal(s, self._receive) for s in SIGNALS} if on_main_thread else {}
        self._previous_unraisablehook = sys.unraisablehook
        if on_main_thread:
            sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc):
        global _active
        _active = None
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        sys.unraisablehook = self._previous_unraisablehook

    def _receive(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        elif not self.in_flight:  # (a third signal while the second one's Stopped unwinds changes nothing)
            self.second = signum
            self.stop_at_once()

    def stop_at_once(self):
        self.in_flight = True
        raise Stopped(self.second, at_once=True)

    def _unraisable(self, unraisable):
        """Python runs a signal handler wherever the main thread is, and an exception raised inside a garbage
        collector callback or a finalizer (JAX has one) cannot propagate: it is swallowed. The at-once Stopped
        is not lost there: the signal is sent again from another thread, to land in ordinary code, and meanwhile
        no set of files is renamed into place (`check_not_stopped`)."""
        if not isinstance(unraisable.exc_value, Stopped):
            return self._previous_unraisablehook(unraisable)
        self.in_flight = False
        threading.Timer(0.01, self._send_again, (unraisable.exc_value.signum,)).start()

    def _send_again(self, signum):
        if signal.getsignal(signum) == self._receive and not self.in_flight:  # inside the block, not yet raised again
            os.kill(os.getpid(), signum)


def check_not_stopped():
    """Raises the at-once Stopped if a second signal arrived, even one whose exception was swallowed: called
    before finished files are renamed into place, so a write under way when it came is abandoned."""
    if _active is not None and _active.second is not None:
        _active.stop_at_once()


@contextlib.contextmanager
def deferred():
    """Holds SIGTERM and SIGINT back for the block (they are delivered after it): renaming a set of
    finished files into place is never cut in the middle."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
