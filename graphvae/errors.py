"""The package's own error type and the helpers that keep its messages to one short line.

Every expected failure (bad input file, bad flag, unusable output folder) raises a
``ValueError``; problems with a file the user gave raise :class:`DataError`, a
``ValueError`` subclass whose message starts with the file's path. The command line
turns any ``ValueError`` into one line ``graphvae: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import reprlib
import sys
from collections.abc import Callable
from typing import Any

#: Longest quoted cell or value in an error message (characters).
QUOTE_LIMIT = 60
#: Longest error message the command line prints (characters).
MESSAGE_LIMIT = 600


class WriteError(OSError):
    """A failed write of an output file, naming the file (not its temporary name):
    ``cannot write PATH: REASON`` (:func:`graphvae.io.atomic_path` raises it)."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


class DataError(ValueError):
    """A file the user gave cannot be used; the message names the file (and line, if known)."""

    def __init__(self, path: str | os.PathLike | None, problem: str, line: int | None = None):
        where = "" if path is None else str(path)
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        super().__init__(one_line(f"{where}: {problem}" if where else problem))
        self.path = None if path is None else str(path)
        self.line = line


class _BoundedRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        return _int_text(x) if _huge(x) else super().repr_int(x, level)


def _huge(x: object) -> bool:
    """An integer ``repr`` refuses (Python's 4,300-digit limit on ``str(int)``)."""
    return isinstance(x, int) and x.bit_length() > 14_000


def _int_text(x: int) -> str:
    return f"<an integer of {x.bit_length():,} bits>"


def _bounded_repr() -> reprlib.Repr:
    r = _BoundedRepr()
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
    10⁵ deep) would otherwise take hours, or end in a RecursionError; an integer past
    ``str``'s 4,300 digits is named by its size."""
    if isinstance(value, tuple | list | dict | set | frozenset):
        text = _REPR.repr(value)
        return text if len(text) <= limit else f"{text[:limit]}..."
    if _huge(value):                # str() refuses it: a file may hold one
        return _int_text(value)     # type: ignore[arg-type]
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def one_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` on one line (newlines become ``; ``), at most ``limit`` characters."""
    parts = [p.strip() for p in str(message).splitlines() if p.strip()]
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 3] + "..."


#: Where in its C++ sources torch raised (``[enforce fail at inline_container.cc:325] .``),
#: which says nothing about the file.
_TORCH_WHERE = re.compile(r"\[enforce fail at [^\]]*\]\s*\.?\s*")


def describe(err: BaseException) -> str:
    """``Type: message`` of an exception, never an empty string after the colon; without
    the place in torch's C++ sources that a torch error begins with."""
    msg = one_line(_TORCH_WHERE.sub("", str(err)))
    return f"{type(err).__name__}: {msg}" if msg else type(err).__name__


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other error: ``NAME: error:
    ... (see PROG --help)``, exit status 2 (NAME: the program's first word). Flags are
    taken as spelt, never by a prefix (``--epoch`` is not ``--epochs``): a script whose
    prefix was unique would otherwise mean another flag, or fail, once a flag sharing it
    is added."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        name = self.prog.split()[0] if self.prog else "error"
        self.exit(2, f"{name}: error: {one_line(message)} (see {self.prog} --help)\n")

    def add_data_root(self, holds: str) -> None:
        """The benchmarks' ``--data-root``: the folder holding ``holds``, by default
        ``$GRAPHVAE_DATA`` (unset or empty: none given, which the script decides on); an
        empty value is refused, as by the commands' flag, not read as the working folder."""
        def text(value: str) -> str:
            if not value:
                raise argparse.ArgumentTypeError("an empty path; leave the flag out to use "
                                                 "$GRAPHVAE_DATA")
            return value

        self.add_argument("--data-root", type=text, metavar="DIR",
                          default=os.environ.get("GRAPHVAE_DATA") or None,
                          help=f"folder holding {holds} [$GRAPHVAE_DATA]")


def last_line(output: str | bytes | None, limit: int = 500) -> str:
    """The last line of a child's captured output that is not blank (bytes read as
    UTF-8), at most its last ``limit`` characters; ``""`` where there is none: where a
    child says why it failed."""
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    lines = [ln.strip() for ln in (output or "").splitlines() if ln.strip()]
    return lines[-1][-limit:] if lines else ""


def run_script(main: Callable[[], int | None]) -> int:
    """Run a script's ``main()`` (the benchmarks'): an expected failure, a ``ValueError``
    (bad flags, bad files), ``OSError`` or a failed or timed-out child command, is one
    line on stderr and exit status 2 instead of a traceback."""
    import subprocess

    name = os.path.basename(sys.argv[0]) or "script"
    try:
        return main() or 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as err:
        cmd = err.cmd if isinstance(err.cmd, list | tuple) else [err.cmd]
        text = f"a child command failed (exit status {err.returncode}): " \
               f"{' '.join(map(str, cmd))}"
        said = last_line(err.stderr)
        if said:                                    # captured: the child's own reason
            text += f": {said}"
    except subprocess.TimeoutExpired as err:
        cmd = err.cmd if isinstance(err.cmd, list | tuple) else [err.cmd]
        text = f"a child command ran past its {err.timeout:.3g} s: " \
               f"{' '.join(map(str, cmd))}"
    except (ValueError, FloatingPointError) as err:
        text = str(err)
    except OSError as err:
        text = describe(err)
    print(f"{name}: error: {one_line(text)}", file=sys.stderr)
    return 2
