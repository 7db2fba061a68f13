"""The package's own error type and the helpers that keep its messages to one short line.

Every expected failure (bad input file, bad flag, unusable output folder) raises a
``ValueError``; problems with a file the user gave raise :class:`DataError`, a
``ValueError`` subclass whose message starts with the file's path. The command line
turns any ``ValueError`` into one line ``graphvae: error: ...`` and exit status 2.
"""

from __future__ import annotations

import os
import reprlib

#: Longest quoted cell or value in an error message (characters).
QUOTE_LIMIT = 60
#: Longest error message the command line prints (characters).
MESSAGE_LIMIT = 600


class DataError(ValueError):
    """A file the user gave cannot be used; the message names the file (and line, if known)."""

    def __init__(self, path: str | os.PathLike | None, problem: str, line: int | None = None):
        where = "" if path is None else str(path)
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        super().__init__(one_line(f"{where}: {problem}" if where else problem))
        self.path = None if path is None else str(path)
        self.line = line


def _bounded_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel = 3
    r.maxtuple = r.maxlist = r.maxarray = r.maxdict = r.maxset = r.maxfrozenset = \
        r.maxdeque = 6
    r.maxstring = r.maxother = r.maxlong = QUOTE_LIMIT
    return r


_REPR = _bounded_repr()


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 10⁵-character cell stays readable).
    Containers are shown three levels and six items deep: a value read from a hostile file
    (a tuple holding the level below twice, 40 levels deep: 2⁴⁰ parts; a list nested
    10⁵ deep) would otherwise take hours, or end in a RecursionError."""
    if isinstance(value, tuple | list | dict | set | frozenset):
        text = _REPR.repr(value)
        return text if len(text) <= limit else f"{text[:limit]}..."
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def one_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` on one line (newlines become ``; ``), at most ``limit`` characters."""
    parts = [p.strip() for p in str(message).splitlines() if p.strip()]
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(err: BaseException) -> str:
    """``Type: message`` of an exception, never an empty string after the colon."""
    msg = one_line(str(err))
    return f"{type(err).__name__}: {msg}" if msg else type(err).__name__
