"""Reading an edge list line by line: the exact reader (:func:`read_edge_list`), whose
rules decide every file that :mod:`graphvae.datasets.edge_reader`'s fast path hands back
(blank and ``#`` lines skipped, a header row of column names dropped, ids ordered
numerically when every id is an integer). The file format is described in
:mod:`graphvae.datasets.files`.
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass
from pathlib import Path

from graphvae.errors import DataError, quote
from graphvae.io import csv_rows, plain, text_lines

_HEADER_NAMES = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2",
                 "head", "tail", "i", "j", "id1", "id2"}
#: Words that mark a first row as column names (``node_a,node_b``, ``from_id,to_id``, ...).
_HEADER_WORDS = ("node", "source", "target", "src", "dst", "from", "to", "head", "tail", "id",
                 "vertex")


def delimiter(path: Path) -> str | None:
    return {".csv": ",", ".tsv": "\t"}.get(path.suffix.lower())


def is_data(cells: list[str]) -> bool:
    """Whether a line's (trimmed) cells are data: not blank, not a comment (``#`` first).
    The rule of both readers: :func:`data_rows`, and the fast path's cut-off lines."""
    return any(cells) and not cells[0].startswith("#")


def data_rows(path: Path):
    """Yield ``(line_number, cells)`` of the non-empty, non-comment lines."""
    delim = delimiter(path)
    if delim is None:
        for lineno, line in enumerate(text_lines(path), start=1):
            cells = line.split()
            if is_data(cells):
                yield lineno, cells
        return
    for lineno, cells in csv_rows(path, delim):
        cells = [c.strip() for c in cells]
        if is_data(cells):
            yield lineno, cells


def separator_hint(path: Path, cell: str) -> str:
    """Why a line of a ``.csv`` / ``.tsv`` file is one cell: its ids are separated by
    something else (spaces, or tabs in a ``.csv``)."""
    name = {",": "comma", "\t": "tab"}.get(delimiter(path) or "", "")
    by = "tabs" if "\t" in cell else "spaces"
    return (f" (a {path.suffix} file is read {name}-separated, and this line's ids are "
            f"separated by {by}: name the file .txt to split its lines on any whitespace)")


def natural_order(names: set[str]) -> list[str]:
    """Sort numerically when every id is an integer (keeping each id's spelling), else as
    strings."""
    if all(is_int(s) for s in names):
        return sorted(names, key=lambda s: (int(s), s))
    return sorted(names)


def is_int(cell: str) -> bool:
    """Whether ``cell`` is an integer written in ASCII digits (``1_0`` and ``٣``, which
    Python's ``int`` reads as 10 and 3, are names)."""
    if not plain(cell):
        return False
    try:
        int(cell)
    except ValueError:
        return False
    return True


def looks_like_header(cells: list[str], rest_numeric: bool) -> bool:
    """A first row names the columns when both cells are known column names, contain a
    column word (``node_a``, ``from_id``), or are words while every later id is an integer."""
    a, b = (c.lower() for c in cells[:2])
    if a in _HEADER_NAMES and b in _HEADER_NAMES:
        return True
    if any(w in a for w in _HEADER_WORDS) and any(w in b for w in _HEADER_WORDS) \
            and not (is_int(a) or is_int(b)):
        return True
    return rest_numeric and not is_int(a) and not is_int(b)


@dataclass
class EdgeRows:
    """An edge list's edges as the exact reader keeps them: each edge's line number and
    its two ids (one string object per distinct id, shared by its lines). Rows of
    ``(line number, cells)`` took 38 bytes of traced memory a byte of file in all, these
    15 (a file of short ids; the text itself, read whole, is most of the rest)."""

    linenos: array
    sources: list[str]
    targets: list[str]


def edge_rows(path: Path) -> EdgeRows:
    """The edge lines' ids, the header dropped (the exact reader)."""
    rows = EdgeRows(array("q"), [], [])
    first: list[str] | None = None          # the first row's cells: a header?
    same: dict[str, str] = {}
    for lineno, cells in data_rows(path):
        if len(cells) < 2 or not cells[0] or not cells[1]:
            hint = ""
            if first is None and len(cells) > 2 and not cells[0]:
                hint = (" (a first column without a name, as pandas' to_csv and R's "
                        "write.csv write their row index: write the file without it, with "
                        "index=False or row.names=FALSE)")
            elif len(cells) == 1 and len(cells[0].split()) >= 2:
                hint = separator_hint(path, cells[0])
            raise DataError(path, f"an edge needs two node ids, got {quote(cells)}{hint}",
                            lineno)
        if first is None:
            first = cells
        rows.linenos.append(lineno)
        rows.sources.append(same.setdefault(cells[0], cells[0]))
        rows.targets.append(same.setdefault(cells[1], cells[1]))
    n = len(rows.linenos)
    if first is not None and looks_like_header(first, n > 1 and all(
            is_int(a) and is_int(b) for a, b in zip(rows.sources[1:], rows.targets[1:]))):
        del rows.linenos[0], rows.sources[0], rows.targets[0]
    if not rows.linenos:
        raise DataError(path, "the edge list is empty (no edges)")
    return rows


def read_edge_list(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read ``(source, target)`` name pairs from an edge-list file, line by line (see
    :func:`read_edge_index` for the fast reader that
    :func:`~graphvae.datasets.files.load_edge_list` uses)."""
    rows = edge_rows(Path(path))
    return list(zip(rows.sources, rows.targets))
