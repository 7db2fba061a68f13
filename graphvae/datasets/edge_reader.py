"""Reading an edge list: its node names and edges as written (:func:`read_edge_index`).

Regular files are read by pyarrow (10⁷ lines in a few seconds), the ids
dictionary-encoded; anything irregular goes through the exact line-by-line reader
(:func:`read_edge_list`), so both give the same graph or the same error. The file format
is described in :mod:`graphvae.datasets.files`, which builds the graph.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from pathlib import Path

import numpy as np
import torch

from graphvae.datasets.edge_lines import (
    EdgeRows,
    data_rows,
    delimiter,
    edge_rows,
    is_data,
    is_int,
    looks_like_header,
    natural_order,
    read_edge_list,
)
from graphvae.errors import DataError, quote
from graphvae.io import read_bytes

__all__ = ["MAX_NUM_NODES", "data_rows", "read_edge_index", "read_edge_list"]

# ---------------------------------------------------------------------------- the fast path
#: Longest run of leading comment / blank lines the fast path looks through.
_MAX_LEADING = 10_000


#: The whitespace (UTF-8) that ``str.split()`` and ``str.strip()`` know beyond space, tab
#: and line ends: the line reader splits and trims at it, a one-byte delimiter does not.
_OTHER_WHITESPACE = re.compile(rb"[\x0b\x0c\x1c-\x1f]|\xc2[\x85\xa0]|\xe1\x9a\x80|"
                               rb"\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80")


class _Fallback(Exception):
    """The fast reader met something only the line-by-line reader reads exactly."""


def _skipped(line: bytes, delim: str | None) -> bool:
    """Whether the line reader skips ``line`` (a line of a file the fast path takes: no
    quotes, UTF-8, no line past the csv module's field limit): not :func:`is_data`, its
    cells split as :func:`data_rows` splits them, at the delimiter before they are trimmed
    (``\t# note`` in a ``.tsv`` is a row with an empty first cell, not a comment)."""
    text = line.decode("utf-8").rstrip("\r")
    cells = text.split() if delim is None else [c.strip() for c in text.split(delim)]
    return not is_data(cells)


def _check_utf8(raw: bytes, block: int = 1 << 24) -> None:
    """:class:`_Fallback` unless ``raw`` is UTF-8 throughout, as the line reader requires
    (pyarrow checks only the two id columns it converts: a byte of Latin-1 in a third
    column, or in a comment, passed). Decoded a block at a time: memory ``O(block)``."""
    if raw.isascii():
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    try:
        for start in range(0, len(raw), block):
            decoder.decode(view[start:start + block])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _Fallback from None


def _check_line_lengths(raw: bytes, limit: int) -> None:
    """:class:`_Fallback` if a line of ``raw`` is longer than ``limit`` bytes: a cell that
    long, in a column pyarrow does not convert, is one the csv module refuses. Every
    window of ``limit + 1`` bytes must hold a line end; each step jumps to the last one
    in the window, so a file takes about ``len(raw) / limit`` steps."""
    pos = 0
    while len(raw) - pos > limit:
        end = raw.rfind(b"\n", pos, pos + limit + 1)
        if end < 0:
            raise _Fallback
        pos = end + 1


def _leading_skip(raw: bytes, delim: str | None) -> int:
    """Number of leading lines that are blank or comments (the line reader skips them)."""
    skip = pos = 0
    while skip < _MAX_LEADING and pos < len(raw):
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end
        if not _skipped(raw[pos:end], delim):
            return skip
        skip, pos = skip + 1, end + 1
    raise _Fallback


def _data_end(raw: bytes, delim: str | None) -> int:
    """The offset just past the last line the line reader reads as data: trailing blank
    and comment lines (``# end of file``) are cut off, not handed to the slow reader."""
    end = len(raw)
    for _ in range(_MAX_LEADING):
        if end == 0:
            return 0
        body = end - 1 if raw[end - 1] == 0x0A else end      # the last line, without its \n
        begin = raw.rfind(b"\n", 0, body) + 1
        if not _skipped(raw[begin:body], delim):
            return end
        end = begin
    raise _Fallback


def _fast_delimiter(raw: bytes, start: int, delim: str | None) -> str:
    """The one-character delimiter of a regular file (whitespace files: a tab or a space)."""
    if delim is not None:
        return delim
    end = raw.find(b"\n", start)
    first = raw[start:end if end >= 0 else len(raw)]
    tabs, spaces = b"\t" in first, b" " in first
    if tabs == spaces or b"  " in raw or b"\t\t" in raw or b"\n " in raw or b" \n" in raw \
            or b"\n\t" in raw or b"\t\n" in raw or (b"\t" in raw and b" " in raw):
        raise _Fallback  # mixed or repeated whitespace: the line reader splits it
    return "\t" if tabs else " "


def _fast_edge_table(path: Path, raw: bytes):
    """``(names, codes (2, m))``: the edge list's id columns dictionary-encoded by
    pyarrow, for files with no quotes, comments between data lines, byte-order marks,
    NULs, lone carriage returns, irregular rows or padded cells (leading and trailing
    comment and blank lines are cut off)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    if any(raw.startswith(bom) for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) \
            or b"\0" in raw or b'"' in raw or raw.count(b"\r") != raw.count(b"\r\n") \
            or _OTHER_WHITESPACE.search(raw):
        raise _Fallback
    _check_utf8(raw)
    delim = delimiter(path)
    if delim is not None:
        _check_line_lengths(raw, csv.field_size_limit())
    end = _data_end(raw, delim)
    if end < len(raw):
        raw = raw[:end]
    skip = _leading_skip(raw, delim)
    start = 0
    for _ in range(skip):
        start = raw.index(b"\n", start) + 1
    if b"\n#" in raw[start:]:
        raise _Fallback
    sep = _fast_delimiter(raw, start, delim)
    bad: list[tuple[int | None, str]] = []

    def invalid(row) -> str:
        bad.append((row.number, row.text))
        return "skip"

    try:
        table = pcsv.read_csv(
            pa.py_buffer(raw),
            read_options=pcsv.ReadOptions(skip_rows=skip, autogenerate_column_names=True,
                                          use_threads=False, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=sep, quote_char=False,
                                            invalid_row_handler=invalid),
            convert_options=pcsv.ConvertOptions(include_columns=["f0", "f1"],
                                                column_types={"f0": pa.string(),
                                                              "f1": pa.string()}))
    except (pa.ArrowInvalid, KeyError):
        raise _Fallback from None  # not UTF-8, one column only, ...
    if bad or table.num_rows == 0:
        raise _Fallback  # the line reader names the first bad line, in file order
    first = [table["f0"][0].as_py(), table["f1"][0].as_py()]
    if any(not c or c != c.strip() for c in first):
        # an empty cell is an error, never a header (pandas' index column), and so is one
        # of whitespace, which the line reader trims to empty; padding is its to judge
        raise _Fallback
    rest = table.slice(1)
    if looks_like_header(first, rest.num_rows > 0 and _all_int(rest)):
        table = rest
        if table.num_rows == 0:
            raise _Fallback
    both = pa.chunked_array(table["f0"].chunks + table["f1"].chunks).dictionary_encode()
    both = both.combine_chunks()
    names = both.dictionary
    if pc.any(pc.equal(names, "")).as_py() or \
            pc.any(pc.not_equal(pc.utf8_trim_whitespace(names), names)).as_py():
        raise _Fallback  # empty or padded cells
    if delim is not None and pc.max(pc.utf8_length(names)).as_py() > csv.field_size_limit():
        raise _Fallback  # the line reader's CSV module refuses such cells
    codes = both.indices.to_numpy().astype(np.int64).reshape(2, -1)
    return names, codes


def _all_int(table) -> bool:
    """Whether every id in the two columns is an integer as Python's ``int`` reads it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        if all(_plain_ints(table[col]) for col in ("f0", "f1")):
            for col in ("f0", "f1"):
                pc.cast(table[col], pa.int64())
            return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    both = pa.chunked_array(table["f0"].chunks + table["f1"].chunks).unique()
    return all(is_int(s) for s in both.to_pylist())


def _plain_ints(arr) -> bool:
    """Whether every string is ASCII digits after its leading minus signs: among what
    pyarrow's int64 cast accepts, what Python's ``int`` reads alike (pyarrow also reads
    ``0x1F`` as 31; ``--5``, which both refuse, is left to the cast). Python also reads
    ``+3``, ``1_0`` and other scripts' digits, which the cast refuses."""
    import pyarrow.compute as pc
    return bool(pc.all(pc.ascii_is_decimal(pc.utf8_ltrim(arr, "-"))).as_py())


def _int_values(names) -> np.ndarray | None:
    """The ids as int64 when every one is a plain decimal integer, else ``None`` (the
    caller then asks Python's ``int``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if not _plain_ints(names):
        return None
    try:
        return pc.cast(names, pa.int64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _fast_read(path: Path, num_nodes: int | None) -> tuple[list[str], torch.Tensor]:
    """The fast path: raises ``_Fallback`` on anything the line reader should decide,
    every error included, so that the two readers give the same error."""
    names, codes = _fast_edge_table(path, read_bytes(path))
    values = _int_values(names)
    if num_nodes is not None:
        if values is None:
            raise _Fallback    # ids Python reads otherwise, or not integers: its error
        ids = values[codes]
        if ((ids < 0) | (ids >= num_nodes)).any():
            raise _Fallback    # the line reader names the first such line
        return [str(i) for i in range(num_nodes)], torch.from_numpy(ids)
    py_names: list[str] | None = None
    if values is None:
        py_names = names.to_pylist()
        int_ids = np.fromiter((is_int(s) for s in py_names), bool, len(py_names))
    else:
        int_ids = np.ones(len(names), bool)
    used = np.flatnonzero(np.bincount(codes.ravel(), minlength=len(names)))
    if values is not None:
        vals = values[used]
        order = np.argsort(vals, kind="stable")
        if not (np.diff(vals[order]) > 0).all():       # numeric, then by spelling ("01" / "1")
            spelled = np.asarray(names.take(used).to_numpy(zero_copy_only=False), dtype=str)
            order = np.lexsort((spelled, vals))
    else:
        assert py_names is not None
        listed = [py_names[i] for i in used]
        if all(int_ids[used]):
            order = np.array(sorted(range(len(listed)), key=lambda k: (int(listed[k]),
                                                                          listed[k])))
        else:
            order = np.argsort(np.asarray(listed, dtype=str), kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[used[order]] = np.arange(len(used))
    final = names.take(used[order]).to_pylist()
    return final, torch.from_numpy(rank[codes])


#: The most nodes ``--num-nodes`` may declare.
MAX_NUM_NODES = 100_000_000


def read_edge_index(path: str | os.PathLike, num_nodes: int | None = None, fast: bool = True
                    ) -> tuple[list[str], torch.Tensor]:
    """An edge list's node names (in node order) and its ``(2, m)`` edges, as written
    (duplicates, both directions and self-loops kept).

    Nodes are the ids that occur, ordered numerically when every id is an integer
    (``"01"`` and ``"1"`` stay two nodes), else as strings. With ``num_nodes``, ids must
    be the integers ``0..num_nodes-1`` and are the node indices themselves (nodes that
    never occur stay, isolated); an id outside is a :class:`DataError` naming its line.

    Regular files (10⁷ lines in a few seconds) are read by pyarrow and the ids
    dictionary-encoded; anything irregular (quotes, comment lines after the data, padded
    or empty cells, rows of other widths, byte-order marks, non-UTF-8 bytes) goes through
    the exact line-by-line reader, so both give the same graph or the same error
    (``fast=False`` uses only the line reader).
    """
    path = Path(path)
    if num_nodes is not None and not 1 <= num_nodes <= MAX_NUM_NODES:
        raise ValueError(f"--num-nodes must be at least 1 and at most {MAX_NUM_NODES:,} (a "
                         f"name and an index a node take gigabytes beyond), got {num_nodes}")
    if fast:
        try:
            return _fast_read(path, num_nodes)
        except _Fallback:
            pass
    rows = edge_rows(path)
    m = len(rows.linenos)
    if num_nodes is None:
        names = natural_order(set(rows.sources) | set(rows.targets))
        index = {name: i for i, name in enumerate(names)}
        return names, _edge_tensor(index, rows, m)
    ids: dict[str, int] = {}
    for lineno, a, b in zip(rows.linenos, rows.sources, rows.targets):
        for cell in (a, b):
            if cell in ids:
                continue
            if not is_int(cell):
                raise DataError(path, f"node id {quote(cell)} is not an integer (--num-nodes "
                                      f"{num_nodes} takes ids 0..{num_nodes - 1})", lineno)
            if not 0 <= int(cell) < num_nodes:
                raise DataError(path, f"node id {int(cell)} is out of range (--num-nodes "
                                      f"{num_nodes} takes ids 0..{num_nodes - 1})", lineno)
            ids[cell] = int(cell)
    return [str(i) for i in range(num_nodes)], _edge_tensor(ids, rows, m)


def _edge_tensor(index: dict[str, int], rows: EdgeRows, m: int) -> torch.Tensor:
    """The ``(2, m)`` long tensor of the rows' ids through ``index``, built without a
    Python list of the numbers."""
    return torch.from_numpy(np.stack([
        np.fromiter((index[a] for a in rows.sources), dtype=np.int64, count=m),
        np.fromiter((index[b] for b in rows.targets), dtype=np.int64, count=m)]))
