"""Stopping on a signal: SIGTERM and SIGHUP as an exception, held back while a training
epoch finishes so that its state can be written.

* :func:`signals_raise` (the command line's ``main`` enters it): SIGTERM and SIGHUP
  (``kill``, ``timeout``, Slurm, ``docker stop``, a closed SSH session) raise
  :class:`Terminated` in the main thread, as Ctrl-C raises ``KeyboardInterrupt``, so that
  the run's cleanup runs.
* :func:`held` (:func:`graphvae.training.fit` enters it when it writes a training state
  or trains data-parallel): inside it the first such signal is only noted, and the loop
  ends at the end of the epoch in progress, writes the state there and raises
  :class:`Terminated` with the state's file and epoch, so that ``--resume`` loses none of
  the finished work. A stop is held :data:`HOLD_SECONDS` at most: schedulers send SIGKILL
  some seconds after SIGTERM (``docker stop`` 10 s; Slurm, Kubernetes and torchrun 30 s),
  and a run killed so gets no cleanup at all, so an epoch that has not ended by then is
  stopped where it is (the state of the last write stays). Ctrl-C is never held.

**One stop, delivered twice.** Slurm signals every process of a job step and torchrun
passes the signal it gets on to its workers, so a worker receives the same stop twice,
milliseconds apart. A signal within :data:`DUPLICATE_SECONDS` of the first is that same
stop and is ignored. A later one stops a held epoch at once; once the stop is acted on
(the cleanup runs), a later one ends the process at once, as the default would have.

Outside :func:`signals_raise` (a program that imports the package), nothing here changes
what the signals do.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The signals a command turns into :class:`Terminated`, with the word its last line uses
#: (SIGHUP where the platform has it).
SIGNALS = {signal.SIGTERM: "terminated",
           **({signal.SIGHUP: "hung up"} if hasattr(signal, "SIGHUP") else {})}

#: The longest a stop waits for the epoch in progress to end (seconds): below the 10 s
#: that ``docker stop`` allows before its SIGKILL, the shortest of the usual grace periods.
HOLD_SECONDS = 8.0

#: A signal this soon after the first (seconds) is the same stop delivered twice.
DUPLICATE_SECONDS = 2.0


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


class _Stop:
    """The stop of this command: the first signal (``signum``, ``at``), and whether it was
    acted on (``acted``: a :class:`Terminated` was raised for it)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.at = 0.0
        self.acted = False

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


_STOP = _Stop()


class Held:
    """A :func:`held` block: the signal it noted (``signum``; ``None`` while none came)."""

    def __init__(self, active: bool) -> None:
        self.signum: int | None = None
        self.active = active
        self._alarm: Any = None          # SIGALRM's handler before the cap was armed

    def terminated(self, saved: tuple[Path, int] | None = None) -> Terminated:
        """The exception that acts on the noted stop (the cap is disarmed)."""
        assert self.signum is not None
        if _STOP.signum is None:     # another process's stop: this one's own copy may follow
            _STOP.signum, _STOP.at = self.signum, time.monotonic()
        _STOP.acted = True
        self._disarm()
        return Terminated(self.signum, saved)

    def _arm(self) -> None:
        if hasattr(signal, "setitimer"):
            self._alarm = signal.signal(signal.SIGALRM, _cap_reached)
            signal.setitimer(signal.ITIMER_REAL, HOLD_SECONDS)

    def _disarm(self) -> None:
        if self._alarm is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._alarm)
            self._alarm = None


_HELD: list[Held] = []          # the open held() blocks of the main thread, innermost last


def _holding() -> Held | None:
    """The innermost active :func:`held` block that has noted no signal yet."""
    for note in reversed(_HELD):
        if note.active:
            return note if note.signum is None else None
    return None


def _raise(signum: int, frame: Any) -> None:
    now = time.monotonic()
    if _STOP.signum is not None and now - _STOP.at < DUPLICATE_SECONDS:
        return                              # the same stop, delivered twice
    if _STOP.signum is None:
        _STOP.signum, _STOP.at = signum, now
        note = _holding()
        if note is not None:                # noted: acted on at the epoch's end
            note.signum = signum
            note._arm()
            return
    elif _STOP.acted:                       # told again while cleaning up: end at once
        for sig in SIGNALS:
            if signal.getsignal(sig) is _raise:
                signal.signal(sig, signal.SIG_DFL)
        signal.raise_signal(signum)
        return
    for note in _HELD:                      # told again while held: stop the epoch now
        note._disarm()
    _STOP.acted = True
    raise Terminated(signum)


def _cap_reached(signum: int, frame: Any) -> None:
    """SIGALRM: the epoch did not end within :data:`HOLD_SECONDS` of the stop."""
    if _STOP.signum is None or _STOP.acted:
        return
    _STOP.acted = True
    raise Terminated(_STOP.signum)


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
    _STOP.reset()
    old = {sig: signal.signal(sig, _raise) for sig in SIGNALS
           if signal.getsignal(sig) is signal.SIG_DFL}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        _STOP.reset()


@contextmanager
def held(enabled: bool = True) -> Iterator[Held]:
    """Inside the block, the first SIGTERM / SIGHUP that would raise :class:`Terminated`
    is noted in the :class:`Held` it yields instead, for at most :data:`HOLD_SECONDS`;
    the block's owner acts on it (``raise note.terminated(...)``; the training loop does
    at the epoch's end). Held only where :func:`signals_raise` handles the signal, in the
    main thread, and with ``enabled``. A signal noted but not acted on raises when the
    block ends without an exception."""
    main = threading.current_thread() is threading.main_thread()
    note = Held(enabled and main and any(signal.getsignal(sig) is _raise for sig in SIGNALS))
    if not main:                 # another thread's block must not hide the main thread's
        yield note
        return
    _HELD.append(note)
    try:
        yield note
    finally:
        _HELD.remove(note)
        note._disarm()
    if note.signum is not None and not _STOP.acted:
        raise note.terminated()


__all__ = ["DUPLICATE_SECONDS", "HOLD_SECONDS", "SIGNALS", "Held", "Terminated", "held",
           "signals_raise"]
