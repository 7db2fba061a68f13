"""Stopping on a signal: Ctrl-C, SIGTERM and SIGHUP as an exception, held back while a
training epoch finishes so that its state can be written.

* :func:`signals_raise` (the command line's ``main`` enters it): Ctrl-C (SIGINT), SIGTERM
  and SIGHUP (``kill``, ``timeout``, Slurm, ``docker stop``, a closed SSH session) raise
  :class:`Terminated` in the main thread, so that the run's cleanup runs.
* :func:`held` (:func:`graphvae.training.fit` enters it when it writes a training state
  or trains data-parallel): inside it the first such signal is only noted, and the loop
  ends at the end of the epoch in progress, writes the state there and raises
  :class:`Terminated` with the state's file and epoch, so that ``--resume`` loses none of
  the finished work. Schedulers send SIGKILL some seconds after SIGTERM (``docker stop``
  10 s; Slurm, Kubernetes and torchrun 30 s), and a run killed so gets no cleanup at all:
  a stop is held :data:`HOLD_SECONDS` at most, checked after each training step
  (:func:`stop_if_overdue`; data-parallel processes agree on :func:`overdue` at each
  step, so all stop at the same one), so an epoch that has not ended by then stops at
  its next step (the state of the last write stays, and :class:`Terminated` names it). A held
  Ctrl-C says so on stderr, since a person is waiting: a second one (after
  :data:`DUPLICATE_SECONDS`) stops at once.

**One stop, delivered twice.** Slurm signals every process of a job step and torchrun
passes the signal it gets on to its workers, so a worker receives the same stop twice,
milliseconds apart. A signal within :data:`DUPLICATE_SECONDS` of the first is that same
stop and is ignored. A later one stops a held epoch at once; once the stop is acted on
(the cleanup runs), a later one ends the process at once, as the default would have.
Each of these later signals has its copy too: one within :data:`DUPLICATE_SECONDS` of the
last signal acted on is ignored alike. A
process that ends after a stop (``signals_raise(exiting=True)``, the ``graphvae``
command's entry point) ignores these signals while the interpreter shuts down, so that
the second copy cannot kill it after its last line.

A stop noted in a block that then ends with another exception (the loss diverged) counts
as acted on: that exception ends the run, and its message is the one shown.

Everything here runs in the main thread (signal handlers run there), so no lock is
needed; but Python runs a handler between two bytecodes, of the handler itself too, so a
copy that arrives while the first signal's handler runs is handled inside it. Each call
therefore takes a ticket first (one C call, which nothing interrupts), and the first
ticket's call alone decides the stop: a copy handled inside it is told by its later
ticket (a worker once took such a copy for "stop at once", wrote no state and left the
other process in a collective). Outside :func:`signals_raise` (a program that imports
the package), nothing here changes what the signals do.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The signals a command turns into :class:`Terminated`, with the word its last line uses
#: (SIGHUP where the platform has it).
SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated",
           **({signal.SIGHUP: "hung up"} if hasattr(signal, "SIGHUP") else {})}

#: The line a held Ctrl-C writes on stderr (``{seconds}``: :data:`HOLD_SECONDS`;
#: ``{then}``: what the epoch's end brings, :data:`HELD_SAVES` where a state is written).
HELD_LINE = ("graphvae: stopping when this epoch ends{then} ({seconds:g} s at most; Ctrl-C "
             "again, after {again:g} s, to stop at once)\n")
HELD_SAVES = ", once its training state is written"

#: The longest a stop waits for the epoch in progress to end (seconds, checked after each
#: training step): below the 10 s that ``docker stop`` allows before its SIGKILL, the
#: shortest of the usual grace periods.
HOLD_SECONDS = 8.0

#: A signal this soon after the first (seconds) is the same stop delivered twice.
DUPLICATE_SECONDS = 2.0


class Terminated(BaseException):
    """The process received ``signum`` (a ``BaseException``, like ``KeyboardInterrupt``,
    so that no ``except Exception`` swallows it). ``saved``: ``(path, epoch)`` of the
    training state that was last written before stopping, when one was."""

    def __init__(self, signum: int, saved: tuple[Path, int] | None = None):
        super().__init__(signum)
        self.signum = signum
        self.saved = saved

    @property
    def word(self) -> str:
        return SIGNALS.get(signal.Signals(self.signum), "terminated")


class _Stop:
    """The stop of this command: the first signal (``signum``, ``at``), whether it was
    acted on (``acted``: a :class:`Terminated` was raised for it, or another exception
    ends the run), and the training state the command last wrote (``written``: ``(path,
    epoch)``), which a stop names wherever it comes."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.at: float | None = None    # when the first signal came (None: not yet set)
        self.last: float | None = None  # when the last signal acted on came
        self.acted = False
        self.written: tuple[Path, int] | None = None
        self.tickets = itertools.count()    # one a call, in the order the calls began

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


_STOP = _Stop()


class Held:
    """A :func:`held` block: the signal it noted (``signum``; ``None`` while none came).
    Its owner records each training state it writes in ``written`` (``(path, epoch)``),
    which a stop names, also one that comes after the block (evaluation, exports)."""

    def __init__(self, active: bool, saves: bool = True) -> None:
        self.signum: int | None = None
        self.active, self.saves = active, saves

    @property
    def written(self) -> tuple[Path, int] | None:
        return _STOP.written

    @written.setter
    def written(self, value: tuple[Path, int] | None) -> None:
        if self.active:                 # (the main thread's command only)
            _STOP.written = value

    def terminated(self) -> Terminated:
        """The exception that acts on the noted stop, naming ``written``."""
        assert self.signum is not None
        if next(_STOP.tickets) == 0:    # another process's stop: its own copy may follow
            _STOP.signum = self.signum
            _STOP.at = _STOP.last = time.monotonic()
        _STOP.acted = True
        return Terminated(self.signum, _STOP.written)


#: Each signal's handling that :func:`signals_raise` replaces (Python's own for SIGINT).
_DEFAULT: dict[int, Any] = {signal.SIGINT: signal.default_int_handler}

_HELD: list[Held] = []          # the open held() blocks of the main thread, innermost last


def _holding() -> Held | None:
    """The innermost active :func:`held` block."""
    return next((note for note in reversed(_HELD) if note.active), None)


def _raise(signum: int, frame: Any) -> None:
    ticket = next(_STOP.tickets)            # first: a copy handled inside this call
    now = time.monotonic()                  # (the module docstring) gets a later one
    if ticket > 0:
        last = _STOP.last
        if last is None or now - last < DUPLICATE_SECONDS:
            return                          # the same stop, delivered twice
        _STOP.last = now                    # before acting, so that its copy is one
    else:
        _STOP.signum = signum
        _STOP.at = _STOP.last = now
        note = _holding()
        if note is not None and note.signum is None:
            note.signum = signum            # noted: acted on at the epoch's end
            if signum == signal.SIGINT and os.environ.get("RANK", "0") in ("", "0"):
                # (rank 0 of a data-parallel run speaks for all; os.write: a handler may
                # interrupt a print)
                with contextlib.suppress(OSError):
                    os.write(2, held_line(note.saves).encode())
            return
    if ticket > 0 and _STOP.acted:          # told again while cleaning up: end at once
        if signum == signal.SIGINT:         # as Python's Ctrl-C (a notebook calling main()
            raise KeyboardInterrupt         # lives on; the command ends with status 130)
        for sig in SIGNALS:
            if signal.getsignal(sig) is _raise:
                signal.signal(sig, signal.SIG_DFL)
        signal.raise_signal(signum)
        return
    _STOP.acted = True                      # not held, or told again while held: now
    raise Terminated(signum, _STOP.written)


def held_line(saves: bool = True) -> str:
    """The line a held Ctrl-C writes (``saves``: the block writes a training state)."""
    return HELD_LINE.format(then=HELD_SAVES if saves else "", seconds=HOLD_SECONDS,
                            again=DUPLICATE_SECONDS)


def last_written() -> tuple[Path, int] | None:
    """``(path, epoch)`` of the training state this command last wrote and still keeps
    (a ``KeyboardInterrupt`` from a Ctrl-C outside :func:`signals_raise` names it too)."""
    return _STOP.written


def states_removed() -> None:
    """The command removed its training states (it completed): a stop names none now."""
    _STOP.written = None


def _overdue_note() -> Held | None:
    """The held block whose stop was noted more than :data:`HOLD_SECONDS` ago and is not
    acted on, if any (main thread only: a fit in another thread holds nothing)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    note = next((n for n in reversed(_HELD) if n.active and n.signum is not None), None)
    if note is not None and not _STOP.acted and _STOP.at is not None \
            and time.monotonic() - _STOP.at > HOLD_SECONDS:
        return note
    return None


def stop_if_overdue() -> None:
    """Raise the held stop (:meth:`Held.terminated`) if it was noted more than
    :data:`HOLD_SECONDS` ago; the training loop calls this after each step."""
    note = _overdue_note()
    if note is not None:
        raise note.terminated()


def overdue() -> int:
    """The number of the held stop if :func:`stop_if_overdue` would raise it now, else 0:
    data-parallel processes decide together whether any of them is overdue."""
    note = _overdue_note()
    return 0 if note is None or note.signum is None else note.signum


@contextmanager
def signals_raise(exiting: bool = False) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Terminated` inside the block (in the main
    thread only: elsewhere Python cannot set handlers) where they have their default
    handling, Python's ``KeyboardInterrupt`` for SIGINT (an ignored SIGHUP under ``nohup``
    stays ignored, as does the SIGINT of a background job); the old handlers come back
    after it.
    ``exiting``: the process ends after the block (the ``graphvae`` command): after a stop
    the signals are ignored instead (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # only signals left at their default: one the process was told to ignore stays
    # ignored (nohup sets SIGHUP so, and a run under it must outlive its terminal), and a
    # program calling main() keeps its own handlers (a nested block installs nothing)
    old = {sig: signal.signal(sig, _raise) for sig in SIGNALS
           if signal.getsignal(sig) is _DEFAULT.get(sig, signal.SIG_DFL)}
    if old:
        _STOP.reset()
    try:
        yield
    finally:
        ignore = exiting and _STOP.signum is not None
        # a signal between two restores raised out of here and left the other handler ours:
        # blocked meanwhile, it comes after, to the restored handler
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNALS)) \
            if hasattr(signal, "pthread_sigmask") else None
        try:
            for sig, handler in old.items():
                signal.signal(sig, signal.SIG_IGN if ignore else handler)
            if old:
                _STOP.reset()
        finally:
            if blocked is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


@contextmanager
def held(enabled: bool = True, saves: bool = True) -> Iterator[Held]:
    """Inside the block, the first Ctrl-C / SIGTERM / SIGHUP that would raise :class:`Terminated`
    is noted in the :class:`Held` it yields instead; the block's owner acts on it
    (``raise note.terminated()``; the training loop does at the epoch's end) and calls
    :func:`stop_if_overdue` where it can stop early. Held only where
    :func:`signals_raise` handles the signal, in the main thread, and with ``enabled``. A
    signal noted but not acted on raises when the block ends without an exception; with
    one, that exception ends the run instead."""
    main = threading.current_thread() is threading.main_thread()
    note = Held(enabled and main and any(signal.getsignal(sig) is _raise for sig in SIGNALS),
                saves)
    if not main:                 # another thread's block must not hide the main thread's
        yield note
        return
    _HELD.append(note)
    try:
        yield note
    except BaseException:
        if note.signum is not None:
            _STOP.acted = True              # the exception ends the run: cleaning up now
        raise
    finally:
        _HELD.remove(note)
    if note.signum is not None and not _STOP.acted:
        raise note.terminated()


__all__ = ["DUPLICATE_SECONDS", "HELD_LINE", "HELD_SAVES", "HOLD_SECONDS", "SIGNALS", "Held",
           "Terminated", "held", "held_line", "signals_raise", "states_removed",
           "stop_if_overdue", "overdue"]
