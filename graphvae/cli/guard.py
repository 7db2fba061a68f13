"""What a command does when its process is told to stop, or its output goes away.

* **Ctrl-C, SIGTERM and SIGHUP** (``kill``, ``timeout``, Slurm, ``docker stop``, a
  closed SSH session) raise :class:`~graphvae.stopping.Terminated` in the main thread
  (:mod:`graphvae.stopping`): the run's cleanup runs (the
  staging folder of ``--out`` and the temporary files of atomic writes are removed, the
  old ``--out`` stays) and the command ends with one line and exit status 128 + the
  signal's number. A run training with a state first finishes the epoch in progress
  (for :data:`~graphvae.stopping.HOLD_SECONDS` at most) and writes its state there; the
  line names it. See :mod:`graphvae.stopping` for a signal delivered twice, and a
  later one.
* **A reader that goes away** (``graphvae linkpred ... | head -1``; a terminal that
  closes under a process that ignores SIGHUP): writing to stdout or stderr then fails
  with ``EPIPE`` or ``EIO``, which ended a finished run as an error before its ``--out``
  was written. :class:`Forgiving` streams drop what cannot be written, so the run
  completes and writes its files.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TextIO

from graphvae.errors import WriteError, describe
from graphvae.stopping import SIGNALS, Terminated, signals_raise

_GONE = (errno.EPIPE, errno.EIO)


class Forgiving:
    """A text stream that stops writing, silently, once its reader is gone (``EPIPE``,
    ``EIO``): the file descriptor is pointed at ``/dev/null`` so that the interpreter's
    last flush finds nothing to complain of. Everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO, name: str = "the stream"):
        self._stream = stream
        self.name = name
        self.gone = False

    def _guard(self, method: str, *args: Any) -> Any:
        if self.gone:
            return len(args[0]) if args else None
        try:
            return getattr(self._stream, method)(*args)
        except OSError as err:
            if err.errno not in _GONE:
                # named: "No space left on device" alone read as the run's files failing
                # (``> /dev/full``), and they had been written
                raise WriteError(err.errno, err.strerror or describe(err),
                                 self.name) from None
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
        new = [Forgiving(s, name) if s is not None else stack.enter_context(
            open(os.devnull, "w", encoding="utf-8", errors="backslashreplace"))
            for s, name in zip(old, ("standard output", "standard error"))]
        sys.stdout, sys.stderr = new  # type: ignore[assignment]
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old


__all__ = ["SIGNALS", "Forgiving", "Terminated", "forgiving_streams", "signals_raise"]
