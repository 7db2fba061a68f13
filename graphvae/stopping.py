"""Stopping on a signal: SIGTERM and SIGHUP as an exception, held back while a training
epoch finishes so that its state can be written.

* :func:`signals_raise` (the command line's ``main`` enters it): SIGTERM and SIGHUP
  (``kill``, ``timeout``, Slurm, ``docker stop``, a closed SSH session) raise
  :class:`Terminated` in the main thread, as Ctrl-C raises ``KeyboardInterrupt``, so that
  the run's cleanup runs. A second signal while cleaning up ends the process at once, as
  the default would have.
* :func:`held` (:func:`graphvae.training.fit` enters it when it writes a training state):
  inside it the first such signal is only noted, and the loop ends at the end of the
  epoch in progress, writes the state there and raises :class:`Terminated` with the
  state's file and epoch, so that ``--resume`` loses nothing of the work done. A second
  signal raises at once; a third ends the process. Ctrl-C is not held: it stops at once,
  and the state of the last write is kept.

Outside :func:`signals_raise` (a program that imports the package), nothing here changes
what the signals do.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The signals a command turns into :class:`Terminated`, with the word its last line uses
#: (SIGHUP where the platform has it).
SIGNALS = {signal.SIGTERM: "terminated",
           **({signal.SIGHUP: "hung up"} if hasattr(signal, "SIGHUP") else {})}


class Terminated(BaseException):
    """The process received ``signum`` (a ``BaseException``, like ``KeyboardInterrupt``,
    so that no ``except Exception`` swallows it). ``saved``: ``(path, epoch)`` of the
    training state written before stopping, when one was."""

    def __init__(self, signum: int, saved: tuple[Path, int] | None = None):
        super().__init__(signum)
        self.signum = signum
        self.saved = saved

    @property
    def word(self) -> str:
        return SIGNALS.get(signal.Signals(self.signum), "terminated")


class Held:
    """The signal :func:`held` noted (``signum``; ``None`` while none came)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.active = False


_HELD: list[Held] = []          # the innermost held() block, while one is open


def _raise(signum: int, frame: Any) -> None:
    if _HELD and _HELD[-1].active and _HELD[-1].signum is None:
        _HELD[-1].signum = signum           # the first: noted, acted on at the epoch's end
        return
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


@contextmanager
def held(enabled: bool = True) -> Iterator[Held]:
    """Inside the block, the first SIGTERM / SIGHUP that would raise :class:`Terminated`
    is noted in the :class:`Held` it yields instead; the block's owner acts on it (the
    training loop: at the epoch's end). Held only where :func:`signals_raise` handles the
    signal, in the main thread, and with ``enabled``. A signal noted but not acted on
    raises when the block ends without an exception."""
    note = Held()
    note.active = enabled and threading.current_thread() is threading.main_thread() and any(
        signal.getsignal(sig) is _raise for sig in SIGNALS)
    _HELD.append(note)
    try:
        yield note
    finally:
        _HELD.remove(note)
    if note.signum is not None:
        raise Terminated(note.signum)


__all__ = ["SIGNALS", "Held", "Terminated", "held", "signals_raise"]
