"""The package's own error type and the helpers that keep its messages to one short line.

Every expected failure (bad input file, bad flag, unusable output folder) raises a
``ValueError``; problems with a file the user gave raise :class:`DataError`, a
``ValueError`` subclass whose message starts with the file's path. The command line
turns any ``ValueError`` into one line ``graphvae: error: ...`` and exit status 2.
"""

from __future__ import annotations

import os

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


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 10⁵-character cell stays readable)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(str(value))} characters)"


def one_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` on one line (newlines become ``; ``), at most ``limit`` characters."""
    parts = [p.strip() for p in str(message).splitlines() if p.strip()]
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(err: BaseException) -> str:
    """``Type: message`` of an exception, never an empty string after the colon."""
    msg = one_line(str(err))
    return f"{type(err).__name__}: {msg}" if msg else type(err).__name__
