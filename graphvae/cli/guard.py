"""What a command does when its process is told to stop, or its output goes away.

* **SIGTERM and SIGHUP** (``kill``, ``timeout``, Slurm, ``docker stop``, a closed SSH
  session) raise :class:`Terminated` in the main thread, as Ctrl-C raises
  ``KeyboardInterrupt``: the run's cleanup runs (the staging folder of ``--out`` and the
  temporary files of atomic writes are removed, the old ``--out`` stays) and the command
  ends with one line and exit status 128 + the signal's number. A second signal while
  cleaning up ends the process at once, as the default would have.
* **A reader that goes away** (``graphvae linkpred ... | head -1``; a terminal that
  closes under a process that ignores SIGHUP): writing to stdout or stderr then fails
  with ``EPIPE`` or ``EIO``, which ended a finished run as an error before its ``--out``
  was written. :class:`Forgiving` streams drop what cannot be written, so the run
  completes and writes its files.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TextIO

#: The signals a command turns into :class:`Terminated`, with the word its last line uses
#: (SIGHUP where the platform has it).
SIGNALS = {signal.SIGTERM: "terminated",
           **({signal.SIGHUP: "hung up"} if hasattr(signal, "SIGHUP") else {})}


class Terminated(BaseException):
    """The process received ``signum`` (a ``BaseException``, like ``KeyboardInterrupt``,
    so that no ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def word(self) -> str:
        return SIGNALS.get(signal.Signals(self.signum), "terminated")


def _raise(signum: int, frame: Any) -> None:
    for sig in SIGNALS:                     # a second signal: the default (end at once)
        if signal.getsignal(sig) is _raise:
            signal.signal(sig, signal.SIG_DFL)
    raise Terminated(signum)


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` inside the block (in the main thread
    only: elsewhere Python cannot set handlers) where they have their default handling (an
    ignored SIGHUP under ``nohup`` stays ignored); the old handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # only signals left at their default: one the process was told to ignore stays
    # ignored (nohup sets SIGHUP so, and a run under it must outlive its terminal), and a
    # program calling main() keeps its own handlers
    old = {sig: signal.signal(sig, _raise) for sig in SIGNALS
           if signal.getsignal(sig) is signal.SIG_DFL}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


_GONE = (errno.EPIPE, errno.EIO)


class Forgiving:
    """A text stream that stops writing, silently, once its reader is gone (``EPIPE``,
    ``EIO``): the file descriptor is pointed at ``/dev/null`` so that the interpreter's
    last flush finds nothing to complain of. Everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.gone = False

    def _guard(self, method: str, *args: Any) -> Any:
        if self.gone:
            return len(args[0]) if args else None
        try:
            return getattr(self._stream, method)(*args)
        except OSError as err:
            if err.errno not in _GONE:
                raise
            self.gone = True
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, self._stream.fileno())
                os.close(null)
            except (OSError, ValueError, AttributeError):   # no descriptor (a test's stream)
                pass
            return len(args[0]) if args else None

    def write(self, text: str) -> int:
        return self._guard("write", text)

    def flush(self) -> None:
        self._guard("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def forgiving_streams() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` as :class:`Forgiving` streams inside the block. A
    stream closed when the process started (``>&-``, ``2>&-``) is ``None`` in Python,
    which print() skips but progress bars and direct writes do not: it writes to
    ``/dev/null`` instead."""
    old = sys.stdout, sys.stderr
    with ExitStack() as stack:
        # any text a real stream takes: UTF-8, and what it cannot encode (a surrogate from
        # a file name that is not UTF-8) escaped, as Python's own stderr does
        new = [Forgiving(s) if s is not None else stack.enter_context(
            open(os.devnull, "w", encoding="utf-8", errors="backslashreplace")) for s in old]
        sys.stdout, sys.stderr = new  # type: ignore[assignment]
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old


__all__ = ["SIGNALS", "Forgiving", "Terminated", "forgiving_streams", "signals_raise"]
