"""Users' graphs: an edge-list CSV/TSV with an optional node-feature CSV, or GraphML / GML.

Edge list: one edge per line, ``source<sep>target[<sep>anything]``, where the
separator is ``,`` for ``.csv``, a tab for ``.tsv`` and any whitespace otherwise;
blank lines and lines starting with ``#`` are skipped. A first line is a header
when it names the columns (``source,target``, ``src,dst``, ``u,v``, words such as
``node_a,node_b``), or when its ids are words and every later id is an integer.
Node ids are any strings. Feature table: ``id,f1,f2,...`` with an optional header
row (a row of words after its first cell, or one whose first cell is ``id``, ``node``,
``name`` and the like: ``node,0,1``, or one whose first cell is empty, as pandas'
``DataFrame.to_csv`` writes its index column: ``,0,1``), as wide as the rows; every
other cell must be a number within the float32 range, and no row's id may be empty.
The graph is made simple and undirected.

Files are UTF-8, or UTF-8 / UTF-16 / UTF-32 with a byte-order mark. Everything
else (other bytes, NUL characters, unterminated quotes, over-long cells) is a
:class:`~graphvae.errors.DataError` naming the file and line, never a silently
different graph.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import torch

from graphvae.config import FLOAT32_MAX
from graphvae.errors import DataError, describe, quote
from graphvae.graph import check_graph, to_simple_undirected
from graphvae.io import csv_rows, is_number, read_bytes, require_file, text_lines

if TYPE_CHECKING:
    from torch_geometric.data import Data

_HEADER_NAMES = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2",
                 "head", "tail", "i", "j", "id1", "id2"}
#: Words that mark a first row as column names (``node_a,node_b``, ``from_id,to_id``, ...).
_HEADER_WORDS = ("node", "source", "target", "src", "dst", "from", "to", "head", "tail", "id",
                 "vertex")
#: First cells that make a feature table's first row a header, whatever follows them.
_ID_COLUMNS = {"id", "node", "nodes", "node_id", "nodeid", "name", "vertex", "index"}


def _delimiter(path: Path) -> str | None:
    return {".csv": ",", ".tsv": "\t"}.get(path.suffix.lower())


def _rows(path: Path):
    """Yield ``(line_number, cells)`` of the non-empty, non-comment lines."""
    delim = _delimiter(path)
    if delim is None:
        for lineno, line in enumerate(text_lines(path), start=1):
            cells = line.split()
            if cells and not cells[0].startswith("#"):
                yield lineno, cells
        return
    for lineno, cells in csv_rows(path, delim):
        cells = [c.strip() for c in cells]
        if cells and any(cells) and not cells[0].startswith("#"):
            yield lineno, cells


def _order(names: set[str]) -> list[str]:
    """Sort numerically when every id is an integer (keeping each id's spelling), else as
    strings."""
    try:
        return sorted(names, key=lambda s: (int(s), s))
    except ValueError:
        return sorted(names)


def _is_int(cell: str) -> bool:
    try:
        int(cell)
    except ValueError:
        return False
    return True


def _looks_like_header(cells: list[str], rest_numeric: bool) -> bool:
    """A first row names the columns when both cells are known column names, contain a
    column word (``node_a``, ``from_id``), or are words while every later id is an integer."""
    a, b = (c.lower() for c in cells[:2])
    if a in _HEADER_NAMES and b in _HEADER_NAMES:
        return True
    if any(w in a for w in _HEADER_WORDS) and any(w in b for w in _HEADER_WORDS) \
            and not (_is_int(a) or _is_int(b)):
        return True
    return rest_numeric and not _is_int(a) and not _is_int(b)


def _edge_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of each edge line, the header dropped (the exact reader)."""
    rows: list[tuple[int, list[str]]] = []
    for lineno, cells in _rows(path):
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise DataError(path, f"an edge needs two node ids, got {quote(cells)}", lineno)
        rows.append((lineno, cells))
    if rows and _looks_like_header(rows[0][1], len(rows) > 1 and all(
            _is_int(c[0]) and _is_int(c[1]) for _, c in rows[1:])):
        rows = rows[1:]
    if not rows:
        raise DataError(path, "the edge list is empty (no edges)")
    return rows


def read_edge_list(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read ``(source, target)`` name pairs from an edge-list file, line by line (see
    :func:`read_edge_index` for the fast reader that :func:`load_edge_list` uses)."""
    return [(c[0], c[1]) for _, c in _edge_rows(Path(path))]


def _number(cell: str, path: Path, lineno: int, col: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataError(path, f"column {col}: {quote(cell)} is not a number", lineno) from None
    if not math.isfinite(value):
        raise DataError(path, f"column {col}: {quote(cell)} is NaN or infinite", lineno)
    if abs(value) > FLOAT32_MAX:
        raise DataError(path, f"column {col}: {quote(cell)} is beyond the float32 range",
                        lineno)
    return value


def read_features(path: str | os.PathLike) -> tuple[list[str], torch.Tensor]:
    """Read a node-feature table: ``(node ids, (n, d) float tensor)``."""
    path = Path(path)
    names: list[str] = []
    rows: list[list[float]] = []
    width = None
    for k, (lineno, cells) in enumerate(_rows(path)):
        if k == 0 and len(cells) > 1 and (all(not is_number(c) for c in cells[1:])
                                          or cells[0].strip().lower() in _ID_COLUMNS
                                          or not cells[0].strip()):
            width = len(cells)
            continue  # header: words after the id, a named id column (``node,0,1``), or
            #           pandas' unnamed index column (``,0,1`` from ``DataFrame.to_csv``)
        if len(cells) < 2:
            raise DataError(path, "a feature row needs a node id and a value", lineno)
        if not cells[0].strip():
            raise DataError(path, "a feature row has an empty node id", lineno)
        if width is not None and len(cells) != width:
            raise DataError(path, f"{len(cells) - 1} features, expected {width - 1}"
                            + (" (as the header names)" if not names else ""), lineno)
        width = len(cells)
        names.append(cells[0])
        rows.append([_number(c, path, lineno, j + 2) for j, c in enumerate(cells[1:])])
    if not rows:
        raise DataError(path, "the feature table has no rows")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(path, f"node {quote(name)} has more than one feature row")
        seen.add(name)
    return names, torch.tensor(rows, dtype=torch.float)


def _build(pairs: list[tuple[str, str]], names: list[str], x: torch.Tensor | None,
           path: Path) -> Data:
    index = {name: i for i, name in enumerate(names)}
    try:
        ei = torch.tensor([[index[a] for a, _ in pairs], [index[b] for _, b in pairs]],
                          dtype=torch.long)
    except KeyError as err:
        raise DataError(path, f"the edge list names node {quote(err.args[0])}, which has no "
                              f"row in the feature table") from None
    return _graph(ei, names, x)


def _graph(ei: torch.Tensor, names: list[str], x: torch.Tensor | None) -> Data:
    n = len(names)
    edge_index = to_simple_undirected(ei, n)
    check_graph(x, edge_index, n)
    from torch_geometric.data import Data  # at first use: ~2 s to import
    return Data(x=x, edge_index=edge_index, num_nodes=n, node_names=names)


def load_edge_list(edges: str | os.PathLike, features: str | os.PathLike | None = None,
                   num_nodes: int | None = None) -> Data:
    """A user's graph from an edge list and an optional feature table.

    Without a feature table ``x`` is ``None`` (the task then uses identity features).
    With one, its rows define the nodes (isolated nodes included). ``num_nodes``: integer
    ids ``0..num_nodes-1`` are the node indices (see :func:`read_edge_index`).
    """
    names, ei = read_edge_index(edges, num_nodes)
    if features is None:
        return _graph(ei, names, None)
    fnames, x = read_features(features)
    if num_nodes is not None and fnames != names:
        raise DataError(features, f"with --num-nodes the feature table must list the nodes "
                                  f"0..{num_nodes - 1} in order")
    index = {name: i for i, name in enumerate(fnames)}
    lookup = []
    for name in names:
        if name not in index:
            raise DataError(edges, f"the edge list names node {quote(name)}, which has no row "
                                   f"in the feature table")
        lookup.append(index[name])
    return _graph(torch.tensor(lookup, dtype=torch.long)[ei], fnames, x)


def load_graph_file(path: str | os.PathLike, features: str | os.PathLike | None = None,
                    num_nodes: int | None = None) -> Data:
    """Load ``.csv`` / ``.tsv`` / ``.txt`` / ``.edges`` edge lists, or ``.graphml`` / ``.gml``.

    For GraphML / GML, numeric node attributes shared by every node become the
    features (unless a feature table is given); parallel edges are merged.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".graphml", ".gml"):
        return load_edge_list(path, features, num_nodes)
    if num_nodes is not None:
        raise ValueError("--num-nodes is for edge lists, not GraphML / GML files")
    if suffix == ".graphml":
        raw = read_bytes(path)
        if any(mark in raw for mark in _DOCTYPE_MARKS):
            raise DataError(path, "has a document type declaration (<!DOCTYPE ...>), which "
                                  "GraphML never needs and which can define entities that "
                                  "expand without bound or name other files: remove it")
    else:
        require_file(path)
    try:
        g = nx.read_graphml(io.BytesIO(raw)) if suffix == ".graphml" else _read_gml(path)
        g = nx.Graph(g)  # multigraphs (parallel edges) and digraphs become simple graphs
    except Exception as err:  # noqa: BLE001 - the XML / GML parsers raise many types
        raise DataError(path, f"could not read {suffix[1:]} ({describe(err)})") from None
    names = [str(v) for v in g.nodes]
    if len(set(names)) != len(names):
        raise DataError(path, "two nodes have the same id once written as text")
    pairs = [(str(a), str(b)) for a, b in g.edges]
    if not pairs:
        raise DataError(path, "the graph is empty (no edges)")
    if features is not None:
        fnames, x = read_features(features)
        return _build(pairs, fnames, x, path)
    return _build(pairs, names, _node_attributes(g, path), path)


#: ``<!DOCTYPE`` as it reads in UTF-8 (and ASCII) and in UTF-16 of either byte order, the
#: encodings an XML parser reads without a declaration.
_DOCTYPE_MARKS = tuple("<!DOCTYPE".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be"))


def _read_gml(path: Path) -> nx.Graph:
    """Nodes named by their ``label`` (as networkx writes them), else by their ``id``."""
    try:
        return nx.read_gml(path)
    except nx.NetworkXError:
        return nx.read_gml(path, label="id")


def _node_attributes(g: nx.Graph, path: Path) -> torch.Tensor | None:
    attrs = [d for _, d in g.nodes(data=True)]
    keys = sorted(str(k) for k in attrs[0] if all(isinstance(a.get(k), int | float)
                                                  and not isinstance(a.get(k), bool)
                                                  for a in attrs))
    if not keys:
        return None
    rows = []
    for node, a in g.nodes(data=True):
        row = []
        for k in keys:
            try:
                v = float(a[k])
            except OverflowError:
                v = math.inf
            if not math.isfinite(v) or abs(v) > FLOAT32_MAX:
                raise DataError(path, f"node {quote(str(node))}: attribute {quote(k)} = "
                                      f"{quote(a[k])} is not a finite float32 number")
            row.append(v)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float)


# ---------------------------------------------------------------------------- the fast path
#: Longest run of leading comment / blank lines the fast path looks through.
_MAX_LEADING = 10_000


#: The whitespace (UTF-8) that ``str.split()`` and ``str.strip()`` know beyond space, tab
#: and line ends: the line reader splits and trims at it, a one-byte delimiter does not.
_OTHER_WHITESPACE = re.compile(rb"[\x0b\x0c\x1c-\x1f]|\xc2[\x85\xa0]|\xe1\x9a\x80|"
                               rb"\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80")


class _Fallback(Exception):
    """The fast reader met something only the line-by-line reader reads exactly."""


def _leading_skip(raw: bytes, delim: str | None) -> int:
    """Number of leading lines that are blank or comments (the line reader skips them)."""
    skip = pos = 0
    while skip < _MAX_LEADING and pos < len(raw):
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end
        line = raw[pos:end].strip()
        first = line.split(delim.encode())[0].strip() if delim and line else line
        if line and not first.startswith(b"#") and (delim is None or line.strip(
                delim.encode() + b" \t")):
            return skip
        skip, pos = skip + 1, end + 1
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
    pyarrow, for files with no quotes, comments after the first data line, byte-order
    marks, NULs, lone carriage returns, irregular rows or padded cells."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    if any(raw.startswith(bom) for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) \
            or b"\0" in raw or b'"' in raw or raw.count(b"\r") != raw.count(b"\r\n") \
            or _OTHER_WHITESPACE.search(raw):
        raise _Fallback
    delim = _delimiter(path)
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
    if not first[0] or not first[1]:
        raise _Fallback  # an empty cell is an error, never a header (pandas' index column)
    rest = table.slice(1)
    if _looks_like_header(first, rest.num_rows > 0 and _all_int(rest)):
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
    return all(_is_int(s) for s in both.to_pylist())


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
        is_int = np.fromiter((_is_int(s) for s in py_names), bool, len(py_names))
    else:
        is_int = np.ones(len(names), bool)
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
        if all(is_int[used]):
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
    rows = _edge_rows(path)
    if num_nodes is None:
        names = _order({c for _, cells in rows for c in cells[:2]})
        index = {name: i for i, name in enumerate(names)}
        return names, torch.tensor([[index[c[0]] for _, c in rows],
                                    [index[c[1]] for _, c in rows]], dtype=torch.long)
    for lineno, cells in rows:
        for cell in cells[:2]:
            if not _is_int(cell):
                raise DataError(path, f"node id {quote(cell)} is not an integer (--num-nodes "
                                      f"{num_nodes} takes ids 0..{num_nodes - 1})", lineno)
            if not 0 <= int(cell) < num_nodes:
                raise DataError(path, f"node id {int(cell)} is out of range (--num-nodes "
                                      f"{num_nodes} takes ids 0..{num_nodes - 1})", lineno)
    return [str(i) for i in range(num_nodes)], torch.tensor(
        [[int(c[0]) for _, c in rows], [int(c[1]) for _, c in rows]], dtype=torch.long)
