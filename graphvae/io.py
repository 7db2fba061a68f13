"""Reading users' text files (decoding, CSV rows, JSON, zip-stored torch files), and, from
:mod:`graphvae.atomic`, writing each output file atomically (:func:`atomic_path`,
:func:`save_atomic`, :func:`write_json`, :func:`write_text`), so that a kill never leaves
a half-written file. A run's whole output folder is written by :mod:`graphvae.run_folder`.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from pathlib import Path
from typing import Any

from graphvae.atomic import (  # noqa: F401 - given from here too, as before
    NAME_MAX,
    atomic_path,
    check_output_file,
    json_text,
    results_file,
    save_atomic,
    umask,
    write_json,
    write_text,
)
from graphvae.errors import DataError, WriteError, describe  # noqa: F401 - WriteError given from here too
from graphvae.torch_files import (  # noqa: F401 - given from here too, as before
    check_zip_stored,
    load_torch,
)
from graphvae.weight_checks import (  # noqa: F401 - given from here too, as before
    check_weight_storage,
    nan_weight,
)

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
         (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` if given, else ``$GRAPHVAE_DATA``, else ``./data``; a one-line
    ``ValueError`` when it names a file (each reader would fail on a path under it)."""
    if data_root is not None:
        if not str(data_root):          # Path("") is the working folder
            raise ValueError("--data-root is an empty path; leave it out to use "
                             "$GRAPHVAE_DATA, else ./data")
        root, source = Path(data_root), "--data-root"
    elif os.environ.get("GRAPHVAE_DATA"):
        root, source = Path(os.environ["GRAPHVAE_DATA"]), "GRAPHVAE_DATA"
    else:
        root, source = Path("data"), "the default"
    if root.exists() and not root.is_dir():
        raise ValueError(f"the data root {root} ({source}) is a file, not a folder: it should "
                         f"hold the data sets' folders (Planetoid/, graphgen/, qm9/, mnist/)")
    return root


def require_file(path: str | os.PathLike, missing: str = "no such file") -> Path:
    """``path`` if it is a regular file; else a :class:`~graphvae.errors.DataError` that
    says what it is instead (missing, a folder, or a FIFO / device / socket)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise DataError(path, "is a folder, not a file")
    raise DataError(path, missing if not path.exists() else "not a regular file")


def read_bytes(path: str | os.PathLike, missing: str = "no such file",
               max_bytes: int | None = None, too_big: str | None = None) -> bytes:
    """A regular file's bytes (at most ``max_bytes``, if given; ``too_big`` is the
    refusal's reason, else the two sizes), or a :class:`~graphvae.errors.DataError`
    naming it."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder, not a file")
    if not path.is_file():
        raise DataError(path, missing if not path.exists() else "not a regular file")
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise DataError(path, too_big or f"{path.stat().st_size:,} bytes is more than "
                                             f"the {max_bytes:,} such a file may have")
        return path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot read the file ({describe(err)})") from None


def read_text(path: str | os.PathLike, max_bytes: int | None = None) -> str:
    """A text file's contents: UTF-8, or UTF-8 / UTF-16 / UTF-32 with a byte-order mark.

    :class:`~graphvae.errors.DataError` (naming the file and line) for bytes that are not
    UTF-8 and for NUL characters, which is what UTF-16 without a byte-order mark looks like.
    """
    path = Path(path)
    raw = read_bytes(path, max_bytes=max_bytes)
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise DataError(path, f"not {encoding} text (byte 0x{raw[err.start]:02x}); save the "
                              f"file as UTF-8", line) from None
    if "\0" in text:
        line = text[:text.index("\0")].count("\n") + 1
        raise DataError(path, "contains NUL characters (UTF-16 without a byte-order mark?); "
                              "save the file as UTF-8", line)
    return text.lstrip("\ufeff")


#: The largest JSON file read (a run's metrics.json, a benchmark report): Python's JSON
#: objects take up to about 33 bytes of memory a byte of file (60 MB of ``[{},...]`` took
#: 2 GB), so 0.5 GB at most; a metrics.json of 1,000 epochs is about 0.2 MB.
MAX_JSON_BYTES = 16 << 20
#: The largest config file or run-folder manifest read (they hold a few lines).
MAX_SMALL_JSON_BYTES = 1 << 20


class RepeatedKey(ValueError):
    """A JSON object names one key twice (Python's reader keeps the last silently)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RepeatedKey(key)
        out[key] = value
    return out


def _not_a_number(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON number")


def parse_json(text: str) -> Any:
    """``json.loads`` refusing what is not JSON, though Python reads it: ``NaN`` and
    ``Infinity`` (``ValueError``) and an object naming a key twice (:class:`RepeatedKey`,
    whose argument is the key)."""
    return json.loads(text, object_pairs_hook=_object, parse_constant=_not_a_number)


def read_json(path: str | os.PathLike, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file's value; :class:`~graphvae.errors.DataError` naming the file for a file
    that is missing, not regular, over ``max_bytes``, not UTF-8 or not JSON
    (nesting too deep, integers of thousands of digits, ``NaN`` / ``Infinity`` and a key
    named twice in one object included)."""
    text = read_text(path, max_bytes=max_bytes)
    try:
        return parse_json(text)
    except RepeatedKey as err:
        raise DataError(path, f"not JSON: the key {err.args[0]!r} appears twice in an "
                              f"object") from None
    except RecursionError:
        raise DataError(path, "its arrays or objects are nested deeper than Python's JSON "
                              "reader can follow (no graphvae file nests more than a few "
                              "levels)") from None
    except json.JSONDecodeError as err:   # the place in the file's own terms, not Python's
        why = err.msg.removesuffix(" starting at")      # "Unterminated string starting at"
        raise DataError(path, f"not JSON at column {err.colno}: {why}", err.lineno) from None
    except ValueError as err:
        raise DataError(path, f"not JSON ({describe(err)})") from None


def plain(text: str) -> bool:
    """Whether ``text`` is ASCII without ``_``: then Python's ``int`` and ``float`` read
    only numbers written as digits. Otherwise they also read ``1_0`` as 10 and other
    scripts' digits (``٣``, ``３``) as 3, which a data file means as names or typos."""
    return text.isascii() and "_" not in text


def number(cell: str) -> float:
    """``float(cell)`` for a number written in ASCII digits (``inf`` and ``nan`` included,
    for the readers to name); ``ValueError`` for anything else, ``1_0`` and ``٣`` too."""
    if not plain(cell):
        raise ValueError(f"not a number written in ASCII digits: {cell!r}")
    return float(cell)


def is_number(cell: str) -> bool:
    """Whether a text cell reads as a number written in ASCII digits (:func:`number`; the
    header tests of the CSV readers)."""
    try:
        number(cell)
    except ValueError:
        return False
    return True


def not_plain_hint(cell: str) -> str:
    """Why a cell that Python's ``float`` reads is not a number here, or ``""``."""
    try:
        float(cell)
    except ValueError:
        return ""
    return ("" if plain(cell) else
            " (numbers are read as ASCII text only: no '_' separators, other scripts' "
            "digits or spaces)")


def text_lines(path: str | os.PathLike, max_bytes: int | None = None) -> list[str]:
    """:func:`read_text` (at most ``max_bytes``) split at ``\\n``, ``\\r\\n`` or ``\\r``:
    the file's own lines."""
    lines = read_text(path, max_bytes).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and not lines[-1] else lines  # no line after the last newline


def csv_rows(path: str | os.PathLike, delimiter: str = ","):
    """Yield ``(line_number, cells)`` of a CSV / TSV file read by :func:`text_lines`; a
    malformed line (over-long cell, a quote left open) is a :class:`DataError` naming it."""
    lines = text_lines(path)
    reader = csv.reader(lines, delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            if reader.line_num > start:  # only a quote lets a record span lines
                raise DataError(path, "a quoted cell runs over several lines (unterminated "
                                      "quote?)", start)
            start = reader.line_num + 1
            yield reader.line_num, cells
    except csv.Error as err:
        raise DataError(path, f"not a valid {'CSV' if delimiter == ',' else 'TSV'} line "
                              f"({err})", max(reader.line_num, 1)) from None


#: Names that moved to :mod:`graphvae.run_folder`, still importable from here (loaded on
#: first use: run_folder imports this module).
_MOVED = frozenset({"MANIFEST", "check_output_folder", "check_writable", "clean_leftovers",
                    "file_digest", "foreign_files", "output_folder"})


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from graphvae import run_folder
        return getattr(run_folder, name)
    raise AttributeError(f"module 'graphvae.io' has no attribute {name!r}")
